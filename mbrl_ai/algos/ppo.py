"""The model-free PPO baseline: ``trainer.py`` minus 2.2, 2.3, 2.6 and 2.7.

for each iteration until total_timesteps:
    2.1 collect n_real_steps real transitions           (collect.collect_rollout)
    2.4 per-segment GAE on them                         (gae.compute_gae)
    2.5 clipped PPO update                              (ppo_update.ppo_update)
    evaluate every eval_every real steps                (agent.Run.maybe_evaluate)
    2.8 log                                             (logger.RunLogger)
"""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from mbrl_ai.agent import RunResult, start_run
from mbrl_ai.collect import collect_rollout, start_collection
from mbrl_ai.config import Config
from mbrl_ai.gae import compute_gae
from mbrl_ai.ppo_update import ppo_update, rollout_to_batch

SUPPORTED_ACTION_SPACES: tuple[type[gym.Space], ...] = (gym.spaces.Discrete, gym.spaces.Box)


def train_ppo(cfg: Config, out_dir: Path) -> RunResult:
    """Train PPO as configured; write metrics, evaluations and the final checkpoint to ``out_dir``."""
    run = start_run(cfg, out_dir)
    state = start_collection(run.envs, cfg.seed)
    env_steps, iteration = 0, 0
    recent_returns: list[float] = []
    try:
        while env_steps < cfg.total_timesteps:
            run.set_lr(env_steps)
            t0 = time.perf_counter()
            # 2.1 collect real experience
            rollout, state = collect_rollout(
                run.envs,
                run.actor,
                run.critic,
                state,
                cfg.n_real_steps // cfg.n_envs,
                cfg.gamma,
                run.obs_rms,
                run.reward_rms,
                run.device,
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
            batch = rollout_to_batch(rollout, advantages, returns).to(run.device)
            update = ppo_update(run.actor, run.critic, run.optimizer, batch, cfg)
            t2 = time.perf_counter()
            iteration += 1
            run.maybe_evaluate(env_steps)

            # 2.8 logging
            recent_returns = (recent_returns + state.finished_returns)[-100:]
            run.logger.log_iteration(
                env_steps,
                {
                    "iteration": iteration,
                    **update,
                    "mean_real_reward": float(rollout.ext_rewards.mean()),
                    "episode_return": float(np.mean(recent_returns)) if recent_returns else None,
                    "episodes": len(state.finished_returns),
                    "lr": run.optimizer.param_groups[0]["lr"],
                    "collect_s": t1 - t0,
                    "update_s": t2 - t1,
                    "steps_per_s": cfg.n_real_steps / (t2 - t0),
                },
            )
        run.finish(env_steps, iteration)
    finally:
        result = run.close(env_steps)
    return result
