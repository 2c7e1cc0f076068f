"""``algo=dreamer``: a small Dreamer-style agent. A recurrent state-space world model learns from
sequences of real experience; the actor and the critic learn only in its imagination.

for each iteration of ``dreamer.steps_per_iteration`` real steps until total_timesteps:
    every real step:
        observe: the posterior latent state of each training env from its observation, its last
            latent state and its last action (reset where an episode begins); with
            ``act_context`` K > 0, filtered afresh over the env's last K steps   (policy.DreamerPolicy)
        act: uniformly random before ``learning_starts``, else a ~ π(·|h, z) (or its mode; π the
            Polyak-averaged actor with ``actor_ema``), and
            with probability ``explore_epsilon`` a uniformly random action instead
        store (o, a, r, first, terminal) in each env's stream                 (replay.SequenceReplay)
        gradient steps while fewer than train_ratio × (real steps − learning_starts) were taken:
            replay batch_size chunks of seq_len steps
            world model: posterior states, decoder + reward + continuation + balanced KL loss
                                                                              (world_model.WorldModel)
            actor and critic: imagined trajectories of ``horizon`` steps from ``imagine_starts``
            of the posterior states, λ-returns, normalised returns, slow critic  (behavior)
            critic, with ``replay_critic`` > 0: also λ-returns of the replayed real rewards
    evaluate (greedy action, sampled latents from its own generator; filtered over the last
        ``eval_context`` steps if set, else as it acts), log, checkpoint
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.algos.dreamer.behavior import (
    DreamerAgent,
    behavior_losses,
    polyak,
    replay_critic_loss,
    update_slow_critic,
)
from mbrl_ai.algos.dreamer.config import DreamerConfig
from mbrl_ai.algos.dreamer.policy import DreamerPolicy
from mbrl_ai.algos.dreamer.replay import SequenceReplay
from mbrl_ai.algos.dreamer.world_model import Latent
from mbrl_ai.config import Config, ConfigError
from mbrl_ai.core.optim import Adam, Optimizer, clip_grad_norm
from mbrl_ai.envs import EnvInfo
from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.runtime import Checkpointer, RunContext, RunResult, start_run

# the acting policy's latent samples come from a generator seeded with the run's seed plus this
ACT_SEED_OFFSET = 60_013


def build_agent(d: DreamerConfig, info: EnvInfo) -> DreamerAgent:
    discrete = isinstance(info.action_space, gym.spaces.Discrete)
    return DreamerAgent(d, info.obs_dim, info.action_dim, discrete)


class DreamerOptimizers:
    """Adams of the world model, the actor and the critic, checkpointed as one object."""

    def __init__(self, agent: DreamerAgent, d: DreamerConfig) -> None:
        self.model = Adam(agent.wm.parameters(), lr=d.model_lr)
        self.actor = Adam(agent.actor.parameters(), lr=d.actor_lr)
        self.critic = Adam(agent.critic.parameters(), lr=d.critic_lr)

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).state_dict() for k in ("model", "actor", "critic")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in ("model", "actor", "critic"):
            getattr(self, k).load_state_dict(state[k])


def step(optimizer: Optimizer, loss: torch.Tensor, module: nn.Module, clip: float) -> torch.Tensor:
    """One clipped gradient step; the gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = clip_grad_norm(module.parameters(), clip)
    optimizer.step()
    return norm


def train_step(
    agent: DreamerAgent,
    opts: DreamerOptimizers,
    batch: dict[str, np.ndarray],
    d: DreamerConfig,
    gamma: float,
    estimator: str,
    device: torch.device,
    rng: np.random.Generator,
) -> dict[str, torch.Tensor]:
    """One world-model step on a replayed batch of sequences, and one actor and critic step on
    trajectories imagined from ``dreamer.imagine_starts`` of its posterior states."""
    t = {k: torch.as_tensor(v, device=device) for k, v in batch.items()}
    model_loss, seen, stats = agent.wm.loss(
        t["obs"], t["actions"], t["rewards"], t["is_first"], t["is_terminal"]
    )
    stats["model_grad_norm"] = step(opts.model, model_loss, agent.wm, d.model_grad_clip)
    n = seen.latent.h.shape[0] * seen.latent.h.shape[1]
    pick = torch.arange(n, device=device)
    if 0 < d.imagine_starts < n:
        pick = torch.as_tensor(rng.choice(n, d.imagine_starts, replace=False), device=device)
    start = Latent(seen.latent.h.flatten(0, 1)[pick], seen.latent.z.flatten(0, 1)[pick]).detach()
    start_cont = 1.0 - t["is_terminal"].flatten()[pick].float()
    actor_loss, critic_loss, ac, start_returns = behavior_losses(
        agent, start, start_cont, d, gamma, estimator
    )
    stats.update(ac)
    if d.replay_critic > 0:
        replay_loss = replay_critic_loss(
            agent, seen.latent.feat(), t, pick, start_returns, d, gamma
        )
        critic_loss = critic_loss + d.replay_critic * replay_loss
        stats["replay_critic_loss"] = replay_loss.detach()
    stats["actor_grad_norm"] = step(opts.actor, actor_loss, agent.actor, d.ac_grad_clip)
    stats["critic_grad_norm"] = step(opts.critic, critic_loss, agent.critic, d.ac_grad_clip)
    update_slow_critic(agent, d.slow_critic_tau)
    if agent.averaged_actor is not None:
        polyak(agent.averaged_actor, agent.actor, d.actor_ema)
    return stats


def check_env(cfg: Config, info: EnvInfo) -> None:
    """``dreamer.actor_grad=all_actions`` scores every action: Discrete action spaces only."""
    d = cfg.node(DreamerConfig)
    if d.actor_grad == "all_actions" and not isinstance(info.action_space, gym.spaces.Discrete):
        raise ConfigError(
            "dreamer.actor_grad",
            d.actor_grad,
            f"needs a Discrete action space ({info.env_id} has {info.action_space}); "
            "allowed: auto, reinforce, dynamics",
        )


def actor_estimator(d: DreamerConfig, discrete: bool) -> str:
    """``dreamer.actor_grad`` with ``auto`` resolved: reinforce for Discrete, dynamics for Box."""
    if d.actor_grad == "auto":
        return "reinforce" if discrete else "dynamics"
    return d.actor_grad


def epsilon_greedy(
    policy: DreamerPolicy, action: torch.Tensor, epsilon: float, rng: np.random.Generator
) -> torch.Tensor:
    """``action [n, A]`` with each env's replaced by a uniformly random one with probability
    ``epsilon``."""
    swap = torch.as_tensor(rng.random(len(action)) < epsilon, device=action.device)
    return torch.where(swap.unsqueeze(-1), policy.random_actions(rng), action)


def store_step(
    replay: SequenceReplay,
    policy: DreamerPolicy,
    run: RunContext,
    action: np.ndarray,
    env_action: np.ndarray,
) -> None:
    """Step the training envs; append each env's step (and where an episode ended, the next
    episode's first observation) to its stream; reset the policy's state there."""
    tr = run.step_envs(action, env_action)
    done = run.collect.episode_lengths == 0  # the step ended these envs' episodes
    for e in range(len(done)):
        replay.add(
            e, tr.next_obs[e], action[e], float(tr.rewards[e]), False, bool(tr.terminated[e])
        )
    if done.any():
        replay.start_episodes(run.collect.obs, np.flatnonzero(done))
    policy.reset_state(done)


def train_dreamer(cfg: Config, out_dir: Path) -> RunResult:
    """Train as configured, resuming from ``out_dir``'s newest checkpoint."""
    run = start_run(cfg, out_dir)
    d, info, device = cfg.node(DreamerConfig), run.info, run.device
    discrete = isinstance(info.action_space, gym.spaces.Discrete)
    estimator = actor_estimator(d, discrete)
    agent = build_agent(d, info).to(device)
    opts = DreamerOptimizers(agent, d)
    replay = SequenceReplay(d.buffer_size // cfg.n_envs, cfg.n_envs, info.obs_dim, info.action_dim)
    acting = DreamerPolicy(agent, info, cfg.seed + ACT_SEED_OFFSET, d.act_context)
    ckpt = Checkpointer(run)
    ckpt.track(agent=agent, optimizers=opts, replay=replay, acting=acting)
    run.evaluate_with(DreamerPolicy(agent, info, cfg.seed, d.evaluated_context))
    with run, ckpt:
        saved = ckpt.begin()
        updates = int(saved.get("updates", 0))
        partial = saved.get("partial")  # stopped mid-iteration: the steps left, the stats so far
        if int(replay.size.sum()) == 0:  # a fresh run: the envs' first observations
            replay.start_episodes(run.collect.obs)
            acting.reset_state(np.ones(cfg.n_envs, dtype=bool))
        while run.env_steps < cfg.total_timesteps:
            stats: list[dict[str, torch.Tensor]] = []
            left = d.steps_per_iteration // cfg.n_envs
            if partial is not None:
                left = int(partial["left"])
                stats = [{k: torch.tensor(v) for k, v in row.items()} for row in partial["stats"]]
                partial = None
            else:
                run.collect = replace(run.collect, finished_returns=[], finished_lengths=[])
            for step in range(left):
                if ckpt.stop_requested:  # stop between real steps, not at the iteration's end
                    ckpt.end_iteration(updates=updates, partial={
                        "left": left - step,
                        "stats": [{k: float(v) for k, v in row.items()} for row in stats],
                    })  # fmt: skip
                obs = torch.as_tensor(run.collect.obs, device=device)
                action = acting.act(obs, explore=d.explore == "sample")
                if run.env_steps < d.learning_starts:
                    action = acting.random_actions(run.rng)
                elif d.explore_epsilon > 0.0:
                    action = epsilon_greedy(acting, action, d.explore_epsilon, run.rng)
                acting.commit(action)
                action_np = action.cpu().numpy()
                store_step(replay, acting, run, action_np, acting.env_actions(action).cpu().numpy())
                run.env_steps += cfg.n_envs
                due = int(max(0, run.env_steps - d.learning_starts) * d.train_ratio)
                while updates < due and replay.can_sample(d.seq_len):
                    batch = replay.sample(d.batch_size, d.seq_len, run.rng)
                    stats.append(
                        train_step(agent, opts, batch, d, cfg.gamma, estimator, device, run.rng)
                    )
                    updates += 1
                if run.env_steps >= cfg.total_timesteps:
                    break
            record: dict[str, Any] = {"updates": len(stats)}
            if stats:
                record.update(
                    {k: float(torch.stack([s[k] for s in stats]).float().mean()) for k in stats[0]}
                )
                run.check_update(record, keys=("model_loss", "actor_loss", "critic_loss"))
            run.iteration += 1
            run.maybe_evaluate()
            run.log_iteration(record)
            ckpt.end_iteration(updates=updates)
        ckpt.finish(updates=updates)
    return run.result()


def load_dreamer_policy(
    cfg: Config, info: EnvInfo, objects: Mapping[str, Any]
) -> tuple[DreamerPolicy, RunningMeanStd | None]:
    d = cfg.node(DreamerConfig)
    agent = build_agent(d, info)
    agent.load_state_dict(objects["agent"])
    return DreamerPolicy(agent, info, cfg.seed, d.evaluated_context), None


@torch.no_grad()
def open_loop(
    cfg: Config,
    info: EnvInfo,
    objects: Mapping[str, Any],
    states: np.ndarray,
    actions: np.ndarray,
    starts: list[int],
    horizon: int,
    samples: int = 8,
) -> dict[int, np.ndarray]:
    """Real vs imagined, decoded: ``samples`` posterior paths filter the real episode up to each
    start; from there the prior alone rolls on with the episode's actions, and every state is
    decoded into an observation. ``{start: [samples, k + 1, obs_dim]}``."""
    agent = build_agent(cfg.node(DreamerConfig), info)
    agent.load_state_dict(objects["agent"])
    wm, policy = agent.wm, DreamerPolicy(agent, info, cfg.seed)
    torch.manual_seed(cfg.seed)
    a = policy.normalised_actions(torch.as_tensor(actions))  # [T, A]
    obs = torch.as_tensor(states, dtype=torch.float32)
    state, posts = wm.rssm.initial(samples, obs.device), []
    first = torch.ones(samples, dtype=torch.bool)
    for t in range(len(actions) + 1):  # posterior states of every real step
        prev = a[t - 1].expand(samples, -1) if t > 0 else torch.zeros(samples, a.shape[1])
        state, _ = wm.rssm.obs_step(state, prev, wm.embed(obs[t]).expand(samples, -1), first)
        first = torch.zeros_like(first)
        posts.append(state)
    out = {}
    for start in starts:
        state = posts[start]
        path = [wm.decode(state.feat())]
        for t in range(start, min(start + horizon, len(actions))):
            state = wm.rssm.img_step(state, a[t].expand(samples, -1))
            path.append(wm.decode(state.feat()))
        out[start] = torch.stack(path, 1).numpy()
    return out


register(
    AlgorithmSpec(
        name="dreamer",
        train=train_dreamer,
        load_policy=load_dreamer_policy,
        action_spaces=(gym.spaces.Discrete, gym.spaces.Box),
        reads=("gamma",),
        nodes=(DreamerConfig,),
        check_env=check_env,
        world_model=True,
        open_loop=open_loop,
        smoke=(
            "env=CartPole-v1",
            "total_timesteps=600",
            "eval_every=200",
            "eval_episodes=2",
            "eval_n_envs=2",
            "checkpoint_every=200",
            "dreamer.deter=16",
            "dreamer.latents=4",
            "dreamer.classes=4",
            "dreamer.hidden=16",
            "dreamer.bins=15",
            "dreamer.batch_size=4",
            "dreamer.seq_len=8",
            "dreamer.horizon=5",
            "dreamer.imagine_starts=8",
            "dreamer.learning_starts=200",
            "dreamer.steps_per_iteration=100",
            "dreamer.train_ratio=0.05",
        ),
    )
)
