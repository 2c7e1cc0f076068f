"""Soft actor-critic (``algo=sac``): the model-free baseline for continuous control.

for each iteration of ``sac.steps_per_iteration`` real steps until total_timesteps:
    per real step:
        act: uniform random for the first ``sac.learning_starts`` steps, then a ~ π(·|s)
        store (s, a, r, s', terminated) in the replay                  (buffers.ReplayBuffer)
        ``sac.updates_per_step`` SAC steps on replay minibatches       (sac_update.sac_update)
    evaluate every eval_every real steps                  (runtime.RunContext.maybe_evaluate)
    log, checkpoint every checkpoint_every real steps     (runtime.RunContext, Checkpointer)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.algos.sac.config import SACConfig
from mbrl_ai.algos.sac.update import SACAgent, sac_update
from mbrl_ai.config import Config
from mbrl_ai.core.buffers import ReplayBuffer, Transitions, sample_mixed
from mbrl_ai.core.optim import Adam
from mbrl_ai.core.ranges import need_multiple_of_envs
from mbrl_ai.envs import EnvInfo
from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.modules.sac_nets import SquashedGaussianActor
from mbrl_ai.runtime import Checkpointer, RunContext, RunResult, start_run


@dataclass
class SACOptimizers:
    """SAC's three Adams; ``alpha`` is ``None`` when α is fixed (``sac.auto_alpha=false``)."""

    actor: Adam
    critic: Adam
    alpha: Adam | None

    @property
    def lr(self) -> float:
        return float(self.actor.param_groups[0]["lr"])


def sac_objects(agent: SACAgent, opts: SACOptimizers) -> dict[str, Any]:
    """What a checkpoint keeps of a SAC learner."""
    return {
        "sac": agent,
        "actor_optimizer": opts.actor,
        "critic_optimizer": opts.critic,
        "alpha_optimizer": opts.alpha,
    }


def build_sac_agent(
    cfg: Config, info: EnvInfo, device: torch.device
) -> tuple[SACAgent, SACOptimizers]:
    """The SAC agent (actor, twin critics and their target, log α) and its three Adams."""
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
    actor_opt = Adam(agent.actor.parameters(), lr=lr, fused=True)
    critic_opt = Adam(agent.critic.parameters(), lr=lr, fused=True)
    alpha_opt = Adam([agent.log_alpha], lr=lr, fused=True) if s.auto_alpha else None
    return agent, SACOptimizers(actor_opt, critic_opt, alpha_opt)


def check_sac(cfg: Config) -> None:
    """Every iteration steps all training envs the same number of times."""
    s = cfg.node(SACConfig)
    need_multiple_of_envs("sac.steps_per_iteration", s.steps_per_iteration, cfg.n_envs)


def load_sac_policy(
    cfg: Config, info: EnvInfo, objects: Mapping[str, Any]
) -> tuple[SquashedGaussianActor, RunningMeanStd | None]:
    """SAC's (and MBPO's) squashed Gaussian actor from a checkpoint's objects."""
    agent, _ = build_sac_agent(cfg, info, torch.device("cpu"))
    agent.load_state_dict(objects["sac"])
    return agent.actor, None


def real_step(run: RunContext, agent: SACAgent, random_actions: bool) -> Transitions:
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
    return run.step_envs(actions, env_actions)


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
    run = start_run(cfg, out_dir)
    s, info = cfg.node(SACConfig), run.info
    agent, opts = build_sac_agent(cfg, info, run.device)
    replay = ReplayBuffer(s.buffer_size, info.obs_dim, (info.action_dim,), False, 0.0, cfg.seed)
    ckpt = Checkpointer(run)
    ckpt.track(**sac_objects(agent, opts), replay=replay)
    run.evaluate_with(agent.actor)
    with run, ckpt:
        partial = ckpt.begin().get("partial")  # stopped mid-iteration: what it had done
        while run.env_steps < cfg.total_timesteps:
            if partial is not None:
                taken, stats, partial = partial["taken"], list(partial["stats"]), None
            else:
                run.collect = replace(run.collect, finished_returns=[], finished_lengths=[])
                taken, stats = 0, []
            while taken < s.steps_per_iteration // cfg.n_envs:
                replay.add(real_step(run, agent, run.env_steps < s.learning_starts))
                run.env_steps += cfg.n_envs
                taken += 1
                if run.env_steps >= s.learning_starts:
                    for _ in range(s.updates_per_step):
                        batch = sample_mixed(replay, None, s.batch_size, 1.0, run.rng, run.device)
                        stats.append(
                            sac_update(
                                agent, opts.actor, opts.critic, opts.alpha, *batch, cfg.gamma, s.tau
                            )
                        )
                if run.env_steps >= cfg.total_timesteps:
                    break
                if ckpt.stop_requested:  # within a real step's updates, not the iteration's
                    ckpt.end_iteration(partial=dict(taken=taken, stats=stats))
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
            run.log_iteration({**update, "updates": len(stats), "lr": opts.lr})
            ckpt.end_iteration()
        ckpt.finish()
    return run.result()


register(
    AlgorithmSpec(
        name="sac",
        train=train_sac,
        load_policy=load_sac_policy,
        action_spaces=(gym.spaces.Box,),
        reads=("gamma", "lr_actor_critic"),
        nodes=(SACConfig,),
        check=check_sac,
        smoke=(
            "env=Pendulum-v1",
            "total_timesteps=600",
            "eval_every=300",
            "eval_episodes=1",
            "eval_n_envs=1",
            "eval_max_steps=100",
            "checkpoint_every=300",
            "sac.hidden=[32,32]",
            "sac.learning_starts=150",
            "sac.steps_per_iteration=150",
        ),
    )
)
