"""Model-based policy optimisation (Janner et al., 2019) with adaptive rollout lengths (seed 003).

for each iteration of ``sac.steps_per_iteration`` real steps until total_timesteps:
    once the replay holds ``sac.learning_starts`` real transitions:
        fit the ensemble to early stopping; elites by held-out MSE  (fit_model.fit_with_early_stopping)
        H from the rollout-length rule                               (branched_rollouts.rollout_horizon)
        resize the model buffer to rollout_batch_size × H × retained updates
        branch rollout_batch_size rollouts of ≤ H steps from real states (branched_rollouts)
    per real step:
        act (uniform random before learning_starts, then a ~ π(·|s)); store in the real replay
        ``sac.updates_per_step`` SAC steps on minibatches of real_ratio real + the rest imagined
    evaluate every eval_every real steps, log, checkpoint     (runtime.RunContext, Checkpointer)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.algos.mbpo.branched_rollouts import (
    branched_rollouts,
    max_rollout_horizon,
    rollout_horizon,
)
from mbrl_ai.algos.mbpo.config import MBPOConfig
from mbrl_ai.algos.sac import (
    build_sac_agent,
    check_sac,
    load_sac_policy,
    real_step,
    sac_objects,
    update_stats,
)
from mbrl_ai.algos.sac.config import SACConfig
from mbrl_ai.algos.sac.update import SACBatch, sac_update
from mbrl_ai.config import Config
from mbrl_ai.core.buffers import ModelBuffer, ReplayBuffer
from mbrl_ai.envs.termination import termination_fn
from mbrl_ai.fit_model import (
    build_model_optimizer,
    build_real_replay,
    build_world_model,
    fit_with_early_stopping,
)
from mbrl_ai.runtime import Checkpointer, RunResult, start_run

# the branched rollouts draw from their own generator, seeded with the run's seed plus this
ROLLOUT_SEED_OFFSET = 1


def mixed_batch(
    replay: ReplayBuffer,
    model_buffer: ModelBuffer,
    size: int,
    real_ratio: float,
    rng: np.random.Generator,
    device: torch.device,
) -> SACBatch:
    """A SAC minibatch: ``real_ratio`` of it from the real replay, the rest imagined (all real
    while the model buffer is empty)."""
    n_real = size if model_buffer.size == 0 else int(round(size * real_ratio))
    real = replay.get(rng.integers(0, replay.size, n_real))
    parts = [real]
    if n_real < size:
        parts.append(model_buffer.get(rng.integers(0, model_buffer.size, size - n_real)))

    def tensor(k: str) -> torch.Tensor:
        return torch.as_tensor(
            np.concatenate([getattr(p, k) for p in parts]),
            dtype=torch.float32,
            device=device,
        )

    return (
        tensor("obs"),
        tensor("actions"),
        tensor("rewards"),
        tensor("next_obs"),
        tensor("terminated"),
    )


def train_mbpo(cfg: Config, out_dir: Path) -> RunResult:
    """Train MBPO as configured (resuming from ``out_dir``'s newest checkpoint if it has one)."""
    run = start_run(cfg, out_dir)
    s, m, wm = cfg.node(SACConfig), cfg.node(MBPOConfig), cfg.world_model
    info, device = run.info, run.device
    agent, opts = build_sac_agent(cfg, info, device)
    model = build_world_model(wm, info, device)
    model_optimizer = build_model_optimizer(model, cfg.lr_world_model, wm)
    replay = build_real_replay(info, s.buffer_size, wm.holdout_fraction, cfg.seed)
    model_buffer = ModelBuffer(
        m.rollout_batch_size * max_rollout_horizon(m) * m.retain_iterations,
        info.obs_dim,
        info.action_dim,
    )
    ckpt = Checkpointer(run)
    ckpt.track(
        **sac_objects(agent, opts),
        world_model=model,
        model_optimizer=model_optimizer,
        replay=replay,
        model_buffer=model_buffer,
    )
    done_fn = termination_fn(cfg.env, wm.termination)
    generator = torch.Generator(device=device).manual_seed(cfg.seed + ROLLOUT_SEED_OFFSET)

    run.evaluate_with(agent.actor)
    with run, ckpt:
        saved = ckpt.begin()
        elites: list[int] = saved.get("elites", list(range(m.elites)))
        if saved:
            generator.set_state(saved["generator"].to(torch.uint8))
        partial = saved.get("partial")  # stopped mid-iteration: what it had done
        while run.env_steps < cfg.total_timesteps:
            if partial is not None:
                taken, stats = partial["taken"], list(partial["stats"])
                horizon, model_metrics = partial["horizon"], partial["model_metrics"]
                partial = None
            else:
                run.collect = replace(run.collect, finished_returns=[], finished_lengths=[])
                taken, stats, horizon, model_metrics = 0, [], 0, {}
                if replay.size >= s.learning_starts:
                    fit = fit_with_early_stopping(
                        model, model_optimizer, replay, wm, run.rng, m.elites, m.max_epochs,
                        m.patience, m.min_improvement, device=device,
                    )  # fmt: skip
                    if not fit["update_skipped"]:
                        elites = fit["elites"]
                    horizon = rollout_horizon(m, run.iteration + 1, fit["disagreement"])
                    model_buffer.set_capacity(m.rollout_batch_size * horizon * m.retain_iterations)
                    starts = replay.get(run.rng.integers(0, replay.size, m.rollout_batch_size)).obs
                    imagined, rollout_stats = branched_rollouts(
                        model,
                        agent.actor,
                        torch.as_tensor(starts, device=device),
                        horizon,
                        elites,
                        generator,
                        done_fn,
                        done_threshold=wm.done_threshold,
                        disagreement_stop=m.disagreement_stop,
                    )
                    model_buffer.add(imagined)
                    model_metrics = {
                        **{f"model/{k}": v for k, v in fit.items() if k != "elites"},
                        **rollout_stats,
                        "imagined_transitions": len(imagined),
                    }
            while taken < s.steps_per_iteration // cfg.n_envs:
                replay.add(real_step(run, agent, run.env_steps < s.learning_starts))
                run.env_steps += cfg.n_envs
                taken += 1
                if run.env_steps >= s.learning_starts:
                    for _ in range(s.updates_per_step):
                        batch = mixed_batch(
                            replay,
                            model_buffer,
                            s.batch_size,
                            m.real_ratio,
                            run.rng,
                            device,
                        )
                        stats.append(
                            sac_update(
                                agent, opts.actor, opts.critic, opts.alpha, *batch, cfg.gamma, s.tau
                            )
                        )
                if run.env_steps >= cfg.total_timesteps:
                    break
                if ckpt.stop_requested:  # within a real step's updates, not the iteration's
                    ckpt.end_iteration(
                        elites=elites,
                        generator=generator.get_state(),
                        partial=dict(
                            taken=taken, stats=stats, horizon=horizon, model_metrics=model_metrics
                        ),
                    )
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
            run.log_iteration(
                {
                    **update,
                    "updates": len(stats),
                    "rollout_horizon": horizon,
                    "model_buffer_size": model_buffer.size,
                    "model_buffer_capacity": model_buffer.capacity,
                    "real_transitions": s.steps_per_iteration,
                    **model_metrics,
                    "lr": opts.lr,
                }
            )
            ckpt.end_iteration(elites=elites, generator=generator.get_state())
        ckpt.finish(elites=elites, generator=generator.get_state())
    return run.result()


register(
    AlgorithmSpec(
        name="mbpo",
        train=train_mbpo,
        load_policy=load_sac_policy,
        action_spaces=(gym.spaces.Box,),
        reads=("gamma", "lr_actor_critic", "lr_world_model", "world_model"),
        nodes=(SACConfig, MBPOConfig),
        check=check_sac,
        world_model=True,
    )
)
