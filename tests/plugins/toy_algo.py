"""A toy algorithm registered through the registry alone: PPO that also fits the shared world
model every ``toy.model_every`` iterations (so ``visualize`` has a model to show).

Nothing outside this module names it: ``MBRL_AI_PLUGINS=tests.plugins.toy_algo`` imports it, its
spec brings the ``algo=toy`` option and its ``toy`` config node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import gymnasium as gym

from mbrl_ai.agent import build_ppo_agent, check_ppo_batch, load_ppo_policy
from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.collect import collect_rollout
from mbrl_ai.config import Config
from mbrl_ai.core.ranges import Ge
from mbrl_ai.fit_model import (
    build_model_optimizer,
    build_real_replay,
    build_world_model,
    fit_world_model,
)
from mbrl_ai.gae import compute_gae
from mbrl_ai.ppo_update import ppo_update, rollout_to_batch
from mbrl_ai.runtime import Checkpointer, RunResult, start_run


@dataclass
class ToyConfig:
    """The toy's own knobs."""

    key: ClassVar[str] = "toy"
    model_every: Annotated[int, Ge(1)] = 2
    """Fit the world model every this many iterations (the range is checked where it is declared)."""


def train_toy(cfg: Config, out_dir: Path) -> RunResult:
    toy = cfg.node(ToyConfig)
    run = start_run(cfg, out_dir)
    agent = build_ppo_agent(cfg, run.info, run.device)
    info, wm = run.info, cfg.world_model
    model = build_world_model(wm, info, run.device)
    model_optimizer = build_model_optimizer(model, cfg.lr_world_model, wm)
    replay = build_real_replay(info, wm.replay_capacity, wm.holdout_fraction, cfg.seed)
    ckpt = Checkpointer(run)
    ckpt.track(**agent.objects(), world_model=model, model_optimizer=model_optimizer, replay=replay)
    run.evaluate_with(agent.actor, agent.obs_rms)
    with run, ckpt:
        ckpt.begin()
        while run.env_steps < cfg.total_timesteps:
            t0 = time.perf_counter()
            rollout, run.collect = collect_rollout(
                run.envs, agent.actor, agent.critic, run.collect, cfg.n_real_steps // cfg.n_envs,
                cfg.gamma, agent.obs_rms, agent.reward_rms, run.device,
            )  # fmt: skip
            replay.add(rollout.transitions())
            run.env_steps += cfg.n_real_steps
            model_loss = None
            if run.iteration % toy.model_every == 0:
                fit = fit_world_model(model, model_optimizer, replay, wm, run.rng, run.device)
                model_loss = fit["model_loss"]
            advantages, returns = compute_gae(
                rollout.rewards, rollout.values, rollout.next_values, rollout.terminated,
                rollout.truncated, cfg.gamma, cfg.gae_lambda,
            )  # fmt: skip
            batch = rollout_to_batch(rollout, advantages, returns).to(run.device)
            update = ppo_update(agent.actor, agent.critic, agent.optimizer, batch, cfg)
            run.check_update(update)
            run.iteration += 1
            run.maybe_evaluate()
            run.log_iteration({**update, "model_loss": model_loss, "s": time.perf_counter() - t0})
            ckpt.end_iteration()
        ckpt.finish()
    return run.result()


register(
    AlgorithmSpec(
        name="toy",
        train=train_toy,
        load_policy=load_ppo_policy,
        action_spaces=(gym.spaces.Discrete,),
        nodes=(ToyConfig,),
        check=check_ppo_batch,
        world_model=True,
        algo_yaml={"name": "toy"},
    )
)
