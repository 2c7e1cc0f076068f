"""Model-based policy optimisation (Janner et al., 2019) with adaptive rollout lengths (seed 003).

for each iteration of ``sac.steps_per_iteration`` real steps until total_timesteps:
    once the replay holds ``sac.learning_starts`` real transitions:
      refresh_model_data:
        fit the ensemble to early stopping; elites by held-out MSE  (fit_model.fit_with_early_stopping)
        H from the rollout-length rule                               (branched_rollouts.rollout_horizon)
        resize the model buffer to rollout_batch_size × H × retained updates
        branch rollout_batch_size rollouts of ≤ H steps from real states (branched_rollouts)
    real_steps_with_updates, per real step:
        act (uniform random before learning_starts, then a ~ π(·|s)); store in the real replay
        ``sac.updates_per_step`` SAC steps on minibatches of real_ratio real + the rest imagined
    evaluate every eval_every real steps, log, checkpoint     (runtime.RunContext, Checkpointer)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    SACOptimizers,
    build_sac_agent,
    check_sac,
    load_sac_policy,
    real_step,
    sac_objects,
    update_stats,
)
from mbrl_ai.algos.sac.config import SACConfig
from mbrl_ai.algos.sac.update import SACAgent, sac_update
from mbrl_ai.config import Config
from mbrl_ai.core.buffers import ModelBuffer, ReplayBuffer, sample_mixed
from mbrl_ai.core.optim import Optimizer
from mbrl_ai.envs.termination import TerminationFn, termination_fn
from mbrl_ai.fit_model import (
    build_model_optimizer,
    build_real_replay,
    build_world_model,
    fit_with_early_stopping,
)
from mbrl_ai.modules.sac_nets import SquashedGaussianActor
from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.runtime import Checkpointer, RunContext, RunResult, start_run

# the branched rollouts draw from their own generator, seeded with the run's seed plus this
ROLLOUT_SEED_OFFSET = 1


def refresh_model_data(
    model: EnsembleWorldModel,
    model_optimizer: Optimizer,
    replay: ReplayBuffer,
    model_buffer: ModelBuffer,
    actor: SquashedGaussianActor,
    elites: list[int],
    generator: torch.Generator,
    done_fn: TerminationFn | None,
    cfg: Config,
    iteration: int,
    rng: np.random.Generator,
    device: torch.device,
) -> tuple[list[int], int, dict[str, float]]:
    """The model half of an MBPO iteration: fit the ensemble to early stopping (its elites),
    choose the rollout length from its disagreement, and branch ``rollout_batch_size`` rollouts
    from real states into the model buffer. Returns the elites, the rollout length and the
    model's metrics."""
    m, wm = cfg.node(MBPOConfig), cfg.world_model
    fit = fit_with_early_stopping(
        model, model_optimizer, replay, wm, rng, m.elites, m.max_epochs, m.patience,
        m.min_improvement, device=device,
    )  # fmt: skip
    if not fit["update_skipped"]:
        elites = fit["elites"]
    horizon = rollout_horizon(m, iteration + 1, fit["disagreement"])
    model_buffer.set_capacity(m.rollout_batch_size * horizon * m.retain_iterations)
    starts = replay.get(rng.integers(0, replay.size, m.rollout_batch_size)).obs
    imagined, rollout_stats = branched_rollouts(
        model, actor, torch.as_tensor(starts, device=device), horizon, elites, generator, done_fn,
        done_threshold=wm.done_threshold, disagreement_stop=m.disagreement_stop,
    )  # fmt: skip
    model_buffer.add(imagined)
    metrics = {
        **{f"model/{k}": v for k, v in fit.items() if k != "elites"},
        **rollout_stats,
        "imagined_transitions": len(imagined),
    }
    return elites, horizon, metrics


@dataclass
class Iteration:
    """What an MBPO iteration has done so far (a checkpoint taken mid-iteration keeps it)."""

    taken: int = 0  # real steps per env
    stats: list[torch.Tensor] = field(default_factory=list)  # one per SAC update
    horizon: int = 0
    model_metrics: dict[str, float] = field(default_factory=dict)


def real_steps_with_updates(
    run: RunContext,
    agent: SACAgent,
    opts: SACOptimizers,
    replay: ReplayBuffer,
    model_buffer: ModelBuffer,
    it: Iteration,
    cfg: Config,
    stop: Callable[[Iteration], None],
) -> None:
    """The policy half: ``steps_per_iteration`` real steps, each followed by ``updates_per_step``
    SAC updates on minibatches mixed from real and model data (``mbpo.real_ratio``). ``stop`` is
    called after each real step (it checkpoints ``it`` and ends the run on a stop request)."""
    s, m = cfg.node(SACConfig), cfg.node(MBPOConfig)
    while it.taken < s.steps_per_iteration // cfg.n_envs:
        replay.add(real_step(run, agent, run.env_steps < s.learning_starts))
        run.env_steps += cfg.n_envs
        it.taken += 1
        if run.env_steps >= s.learning_starts:
            for _ in range(s.updates_per_step):
                batch = sample_mixed(
                    replay, model_buffer, s.batch_size, m.real_ratio, run.rng, run.device
                )
                it.stats.append(
                    sac_update(agent, opts.actor, opts.critic, opts.alpha, *batch, cfg.gamma, s.tau)
                )
        if run.env_steps >= cfg.total_timesteps:
            break
        stop(it)


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

        def stop(it: Iteration) -> None:
            if ckpt.stop_requested:  # within a real step's updates, not the iteration's
                ckpt.end_iteration(
                    elites=elites, generator=generator.get_state(), partial=dataclasses.asdict(it)
                )

        while run.env_steps < cfg.total_timesteps:
            if partial is not None:
                it, partial = Iteration(**partial), None
                it.stats = list(it.stats)
            else:
                run.collect = replace(run.collect, finished_returns=[], finished_lengths=[])
                it = Iteration()
                if replay.size >= s.learning_starts:
                    elites, it.horizon, it.model_metrics = refresh_model_data(
                        model, model_optimizer, replay, model_buffer, agent.actor, elites,
                        generator, done_fn, cfg, run.iteration, run.rng, device,
                    )  # fmt: skip
            real_steps_with_updates(run, agent, opts, replay, model_buffer, it, cfg, stop)
            update = update_stats(it.stats)
            if update:
                run.check_update(
                    {"policy_loss": update["actor_loss"], "value_loss": update["critic_loss"]}
                )
            run.iteration += 1
            run.maybe_evaluate()
            run.log_iteration(
                {
                    **update,
                    "updates": len(it.stats),
                    "rollout_horizon": it.horizon,
                    "model_buffer_size": model_buffer.size,
                    "model_buffer_capacity": model_buffer.capacity,
                    "real_transitions": s.steps_per_iteration,
                    **it.model_metrics,
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
            "world_model.ensemble_size=3",
            "world_model.hidden=[32,32]",
            "mbpo.elites=2",
            "mbpo.max_epochs=3",
            "mbpo.rollout_batch_size=50",
            "mbpo.max_horizon=4",
        ),
    )
)
