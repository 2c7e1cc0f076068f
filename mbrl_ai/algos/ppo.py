"""The model-free PPO baseline: the main trainer minus 2.2, 2.3, 2.6 and 2.7.

for each iteration until total_timesteps:
    2.1 collect n_real_steps real transitions           (collect.collect_rollout)
    2.4 per-segment GAE on them                         (gae.compute_gae)
    2.5 clipped PPO update                              (ppo_update.ppo_update)
    evaluate every eval_every real steps                (evaluate.evaluate_policy)
    2.8 log                                             (logger.RunLogger)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from mbrl_ai.checkpoint import load_checkpoint, save_checkpoint
from mbrl_ai.collect import collect_rollout, start_collection
from mbrl_ai.config import Config, config_dict, to_config
from mbrl_ai.envs import EnvInfo, inspect_env, make_vec_env
from mbrl_ai.evaluate import evaluate_policy
from mbrl_ai.gae import compute_gae
from mbrl_ai.logger import RunLogger
from mbrl_ai.modules import Actor, Critic, RunningMeanStd
from mbrl_ai.ppo_update import ppo_update, rollout_to_batch
from mbrl_ai.utils import resolve_device, seed_everything

SUPPORTED_ACTION_SPACES: tuple[type[gym.Space], ...] = (gym.spaces.Discrete, gym.spaces.Box)


@dataclass
class RunResult:
    """What a finished run hands back to its caller (tests, benchmark scripts)."""

    out_dir: Path
    env_steps: int
    train_seconds: float
    evals: list[dict]


def build_actor_critic(cfg: Config, info: EnvInfo) -> tuple[Actor, Critic]:
    n = cfg.network
    actor = Actor(
        info.obs_dim,
        info.action_space,
        list(n.actor_hidden),
        n.activation,
        n.ortho_init,
        n.log_std_init,
    )
    critic = Critic(info.obs_dim, list(n.critic_hidden), n.activation, n.ortho_init)
    return actor, critic


def train_ppo(cfg: Config, out_dir: Path) -> RunResult:
    """Train PPO as configured; write metrics, evaluations and the final checkpoint to ``out_dir``."""
    torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    info = inspect_env(cfg.env)
    threshold = cfg.eval_threshold if cfg.eval_threshold is not None else info.reward_threshold

    envs = make_vec_env(cfg.env, cfg.n_envs, cfg.seed, cfg.vectorization)
    eval_envs = make_vec_env(
        cfg.env, min(cfg.eval_n_envs, cfg.eval_episodes), cfg.seed + 10_000, cfg.vectorization
    )
    actor, critic = (m.to(device) for m in build_actor_critic(cfg, info))
    optimizer = torch.optim.Adam(
        [*actor.parameters(), *critic.parameters()],
        lr=cfg.lr_actor_critic,
        eps=cfg.ppo.adam_eps,
        fused=True,  # one kernel for all parameters: the fastest Adam step on CPU and GPU
    )
    obs_rms = (
        RunningMeanStd((info.obs_dim,), clip=cfg.ppo.clip_obs) if cfg.ppo.normalize_obs else None
    )
    reward_rms = RunningMeanStd(()) if cfg.ppo.normalize_reward else None
    logger = RunLogger(out_dir, cfg, threshold, str(device))

    state = start_collection(envs, cfg.seed)
    n_steps = cfg.n_real_steps // cfg.n_envs
    env_steps, iteration, next_eval = 0, 0, cfg.eval_every
    recent_returns: list[float] = []
    evals: list[dict] = []
    try:
        while env_steps < cfg.total_timesteps:
            if cfg.ppo.anneal_lr:
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr_actor_critic * (1.0 - env_steps / cfg.total_timesteps)
            t0 = time.perf_counter()
            # 2.1 collect real experience
            rollout, state = collect_rollout(
                envs, actor, critic, state, n_steps, cfg.gamma, obs_rms, reward_rms, device
            )
            env_steps += cfg.n_real_steps
            t1 = time.perf_counter()
            # 2.4 advantages and returns (the real rollout is the only segment kind here)
            advantages, returns = compute_gae(
                rollout.rewards,
                rollout.values,
                rollout.next_values,
                rollout.terminated,
                rollout.truncated,
                cfg.gamma,
                cfg.gae_lambda,
            )
            # 2.5 PPO update
            batch = rollout_to_batch(rollout, advantages, returns).to(device)
            update = ppo_update(actor, critic, optimizer, batch, cfg)
            t2 = time.perf_counter()
            iteration += 1

            if env_steps >= next_eval or env_steps >= cfg.total_timesteps:
                evals.append(_evaluate(cfg, actor, eval_envs, obs_rms, device, logger, env_steps))
                next_eval = (env_steps // cfg.eval_every + 1) * cfg.eval_every

            # 2.8 logging
            recent_returns = (recent_returns + state.finished_returns)[-100:]
            logger.log_iteration(
                env_steps,
                {
                    "iteration": iteration,
                    **update,
                    "mean_real_reward": float(rollout.ext_rewards.mean()),
                    "episode_return": float(np.mean(recent_returns)) if recent_returns else None,
                    "episodes": len(state.finished_returns),
                    "lr": optimizer.param_groups[0]["lr"],
                    "collect_s": t1 - t0,
                    "update_s": t2 - t1,
                    "steps_per_s": cfg.n_real_steps / (t2 - t0),
                },
            )
        save_checkpoint(
            Path(out_dir) / "checkpoint.pt",
            {
                "actor": actor.state_dict(),
                "critic": critic.state_dict(),
                "optimizer": optimizer.state_dict(),
                "obs_rms": obs_rms.state_dict() if obs_rms is not None else None,
                "reward_rms": reward_rms.state_dict() if reward_rms is not None else None,
                "env_steps": env_steps,
                "iteration": iteration,
                "config": config_dict(cfg),
            },
        )
    finally:
        envs.close()
        eval_envs.close()
        train_seconds = logger.train_seconds
        logger.close()
    return RunResult(Path(out_dir), env_steps, train_seconds, evals)


def _evaluate(cfg, actor, eval_envs, obs_rms, device, logger, env_steps) -> dict:  # noqa: ANN001
    t = time.perf_counter()
    returns = evaluate_policy(
        actor, eval_envs, cfg.eval_episodes, cfg.seed + 10_000, obs_rms, device
    )
    return logger.log_eval(env_steps, returns, time.perf_counter() - t)


def load_policy(path: Path) -> tuple[Actor, RunningMeanStd | None, Config]:
    """The actor (and observation normaliser) of a PPO checkpoint, with the run's config."""
    from omegaconf import OmegaConf

    ckpt = load_checkpoint(path)
    cfg = to_config(OmegaConf.create(ckpt["config"]))
    info = inspect_env(cfg.env)
    actor, _ = build_actor_critic(cfg, info)
    actor.load_state_dict(ckpt["actor"])
    obs_rms = None
    if ckpt["obs_rms"] is not None:
        obs_rms = RunningMeanStd((info.obs_dim,), clip=cfg.ppo.clip_obs)
        obs_rms.load_state_dict(ckpt["obs_rms"])
    return actor, obs_rms, cfg
