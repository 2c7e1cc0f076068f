"""Soft actor-critic (``algo=sac``): the model-free baseline for continuous control.

for each iteration of ``sac.steps_per_iteration`` real steps until total_timesteps:
    per real step:
        act: uniform random for the first ``sac.learning_starts`` steps, then a ~ π(·|s)
        store (s, a, r, s', terminated) in the replay                  (buffers.ReplayBuffer)
        ``sac.updates_per_step`` SAC steps on replay minibatches       (sac_update.sac_update)
    evaluate every eval_every real steps                               (agent.Run.maybe_evaluate)
    log, checkpoint every checkpoint_every real steps                  (agent.Run)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mbrl_ai.agent import Run, RunResult, start_run
from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.buffers import ReplayBuffer, Transitions
from mbrl_ai.collect import check_env_output
from mbrl_ai.config import Config, SACConfig, need
from mbrl_ai.envs import EnvInfo, final_observations
from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.modules.sac_nets import SquashedGaussianActor
from mbrl_ai.sac_update import SACAgent, SACBatch, sac_update


def build_sac_agent(
    cfg: Config, info: EnvInfo, device: torch.device
) -> tuple[Any, Any, torch.optim.Optimizer, dict[str, Any]]:
    """The SAC agent and its three Adams: (actor, critic, actor optimiser, objects to checkpoint)."""
    s = cfg.node(SACConfig)
    assert isinstance(info.action_space, gym.spaces.Box)  # SAC registers Box actions only
    agent = SACAgent(
        info.obs_dim,
        info.action_space,
        list(s.hidden),
        s.activation,
        s.init_alpha,
        s.target_entropy,
    ).to(device)
    lr = cfg.lr_actor_critic
    actor_opt = torch.optim.Adam(agent.actor.parameters(), lr=lr, fused=True)
    critic_opt = torch.optim.Adam(agent.critic.parameters(), lr=lr, fused=True)
    alpha_opt = torch.optim.Adam([agent.log_alpha], lr=lr, fused=True) if s.auto_alpha else None
    tracked = {
        "sac": agent,
        "actor_optimizer": actor_opt,
        "critic_optimizer": critic_opt,
        "alpha_optimizer": alpha_opt,
    }
    return agent.actor, agent.critic, actor_opt, tracked


def check_sac(cfg: Config) -> None:
    """Every iteration steps all training envs the same number of times."""
    s = cfg.node(SACConfig)
    need(
        s.steps_per_iteration % cfg.n_envs == 0,
        "sac.steps_per_iteration",
        s.steps_per_iteration,
        f"must be a multiple of n_envs ({cfg.n_envs})",
    )


def load_sac_policy(
    cfg: Config, info: EnvInfo, objects: Mapping[str, Any]
) -> tuple[SquashedGaussianActor, RunningMeanStd | None]:
    """SAC's (and MBPO's) squashed Gaussian actor from a checkpoint's objects."""
    actor, _, _, tracked = build_sac_agent(cfg, info, torch.device("cpu"))
    tracked["sac"].load_state_dict(objects["sac"])
    return actor, None


def real_step(run: Run, agent: SACAgent, random_actions: bool) -> Transitions:
    """One step of every training env with normalised actions in [-1, 1] (uniform at random, or
    sampled from the policy); updates the collection state and returns the real transitions."""
    obs = run.collect.obs
    n = len(obs)
    if random_actions:
        actions = run.rng.uniform(-1.0, 1.0, (n, agent.actor.action_dim)).astype(np.float32)
    else:
        with torch.no_grad():
            a, _ = agent.actor.sample(torch.as_tensor(obs, device=run.device))
        actions = a.cpu().numpy()
    env_actions = agent.actor.to_env(torch.as_tensor(actions, device=run.device)).cpu().numpy()
    next_obs, reward, term, trunc, infos = run.envs.step(env_actions)
    next_obs = next_obs.astype(np.float32).reshape(n, -1)
    done = term | trunc
    real_next = final_observations(next_obs, infos, done)
    check_env_output(run.envs, reward, real_next, next_obs if done.any() else None)

    c = run.collect
    c.episode_returns += reward
    c.episode_lengths += 1
    for i in np.flatnonzero(done):
        c.finished_returns.append(float(c.episode_returns[i]))
        c.finished_lengths.append(int(c.episode_lengths[i]))
        c.episode_returns[i], c.episode_lengths[i] = 0.0, 0
    c.obs = next_obs
    return Transitions(obs, actions, reward.astype(np.float32), real_next, term)


def sample_batch(
    replay: ReplayBuffer, size: int, rng: np.random.Generator, device: torch.device
) -> SACBatch:
    """A uniform minibatch of the replay as (obs, actions, rewards, next_obs, terminated)."""
    b = replay.get(rng.integers(0, replay.size, size))

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=device)

    return (
        tensor(b.obs),
        tensor(b.actions),
        tensor(b.rewards),
        tensor(b.next_obs),
        tensor(b.terminated),
    )


def update_stats(stats: list[torch.Tensor]) -> dict[str, float]:
    if not stats:
        return {}
    critic, actor, alpha, entropy = torch.stack(stats).mean(0).tolist()
    return {
        "critic_loss": critic,
        "actor_loss": actor,
        "alpha": alpha,
        "entropy": entropy,
    }


def train_sac(cfg: Config, out_dir: Path) -> RunResult:
    """Train SAC as configured (resuming from ``out_dir``'s newest checkpoint if it has one)."""
    run = start_run(cfg, out_dir, build_sac_agent)
    s, info = cfg.node(SACConfig), run.info
    agent: SACAgent = run.tracked["sac"]
    opts = run.tracked["actor_optimizer"], run.tracked["critic_optimizer"]
    alpha_opt = run.tracked.get("alpha_optimizer")
    replay = ReplayBuffer(s.buffer_size, info.obs_dim, (info.action_dim,), False, 0.0, cfg.seed)
    run.track(replay=replay)
    with run:
        run.begin()
        while run.env_steps < cfg.total_timesteps:
            run.collect = replace(run.collect, finished_returns=[], finished_lengths=[])
            stats: list[torch.Tensor] = []
            for _ in range(s.steps_per_iteration // cfg.n_envs):
                replay.add(real_step(run, agent, run.env_steps < s.learning_starts))
                run.env_steps += cfg.n_envs
                if run.env_steps < s.learning_starts:
                    continue
                for _ in range(s.updates_per_step):
                    batch = sample_batch(replay, s.batch_size, run.rng, run.device)
                    stats.append(sac_update(agent, *opts, alpha_opt, *batch, cfg.gamma, s.tau))
                if run.env_steps >= cfg.total_timesteps:
                    break
            update = update_stats(stats)
            if update:
                run.check_update(
                    {
                        "policy_loss": update["actor_loss"],
                        "value_loss": update["critic_loss"],
                    }
                )
            run.iteration += 1
            run.maybe_evaluate()
            run.log_iteration({**update, "updates": len(stats)})
            run.end_iteration()
        run.finish()
    return run.result()


register(
    AlgorithmSpec(
        name="sac",
        train=train_sac,
        load_policy=load_sac_policy,
        action_spaces=(gym.spaces.Box,),
        nodes=(SACConfig,),
        check=check_sac,
    )
)
