"""The model-free PPO baseline: ``trainer.py`` minus 2.2, 2.3, 2.6 and 2.7.

for each iteration until total_timesteps:
    2.1 collect n_real_steps real transitions           (collect.collect_rollout)
    2.4 per-segment GAE on them                         (gae.compute_gae)
    2.5 clipped PPO update                              (ppo_update.ppo_update)
    evaluate every eval_every real steps                (runtime.RunContext.maybe_evaluate)
    2.8 log                                             (runtime.RunContext.log_iteration)
    checkpoint every checkpoint_every real steps        (runtime.Checkpointer.end_iteration)
"""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym

from mbrl_ai.agent import build_ppo_agent, check_ppo_batch, load_ppo_policy
from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.collect import collect_rollout
from mbrl_ai.config import Config
from mbrl_ai.gae import compute_gae
from mbrl_ai.ppo_update import ppo_update, rollout_to_batch
from mbrl_ai.runtime import Checkpointer, RunResult, start_run


def train_ppo(cfg: Config, out_dir: Path) -> RunResult:
    """Train PPO as configured (resuming from ``out_dir``'s newest checkpoint if it has one);
    write metrics, evaluations and checkpoints to ``out_dir``."""
    run = start_run(cfg, out_dir)
    agent = build_ppo_agent(cfg, run.info, run.device)
    ckpt = Checkpointer(run)
    ckpt.track(**agent.objects())
    run.evaluate_with(agent.actor, agent.obs_rms)
    with run, ckpt:
        ckpt.begin()
        while run.env_steps < cfg.total_timesteps:
            agent.anneal_lr(run.env_steps, cfg.total_timesteps)
            t0 = time.perf_counter()
            # 2.1 collect real experience
            rollout, run.collect = collect_rollout(
                run.envs,
                agent.actor,
                agent.critic,
                run.collect,
                cfg.n_real_steps // cfg.n_envs,
                cfg.gamma,
                agent.obs_rms,
                agent.reward_rms,
                run.device,
            )
            run.env_steps += cfg.n_real_steps
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
            update = ppo_update(agent.actor, agent.critic, agent.optimizer, batch, cfg)
            run.check_update(update)
            t2 = time.perf_counter()
            run.iteration += 1
            run.maybe_evaluate()

            # 2.8 logging
            run.log_iteration(
                {
                    **update,
                    "mean_real_reward": float(rollout.ext_rewards.mean()),
                    "collect_s": t1 - t0,
                    "update_s": t2 - t1,
                    "steps_per_s": cfg.n_real_steps / (t2 - t0),
                    "lr": agent.current_lr,
                }
            )
            ckpt.end_iteration()
        ckpt.finish()
    return run.result()


register(
    AlgorithmSpec(
        name="ppo",
        train=train_ppo,
        load_policy=load_ppo_policy,
        action_spaces=(gym.spaces.Discrete, gym.spaces.Box),
        reads=(
            "n_real_steps",
            "gamma",
            "gae_lambda",
            "clip_range",
            "n_epochs",
            "batch_size",
            "max_grad_norm",
            "lr_actor_critic",
            "ppo",
            "network",
        ),
        check=check_ppo_batch,
        smoke=(
            "env=CartPole-v1",
            "total_timesteps=1024",
            "n_envs=2",
            "n_real_steps=256",
            "batch_size=64",
            "n_epochs=2",
            "eval_every=512",
            "eval_episodes=2",
            "checkpoint_every=512",
        ),
    )
)
