"""``algo=dyna_dqn``: deep Dyna. A DQN whose minibatches mix real and model-imagined transitions.

for each iteration of ``dyna_dqn.train_freq`` real steps until total_timesteps:
    every real step: ε-greedy on Q (uniformly random before learning_starts); store in the real
        replay; every target_update_interval real steps copy Q into the target network
    once the replay holds more than learning_starts transitions:
        with k = imagined_per_step > 0 (Dyna):
            fit the ensemble world model: world_model.train_steps steps, warm-started, stopped
            early on the held-out MSE (MB-PPO's fit)                                  (fit_model)
            imagine k × train_freq transitions: rollouts of imagined_horizon steps from real
            states, a member drawn per row and step, actions uniform (or ε-greedy)    (rollouts)
        gradient_steps DQN updates on minibatches of real_ratio real + the rest imagined
            (all real while nothing is imagined)                                  (dqn_update)
    evaluate (greedy), log, checkpoint

With k = 0 it is our plain DQN (double Q-learning, Huber loss, Stable-Baselines3's rl-zoo
schedule for CartPole-v1 by default), so both arms of a comparison make the same number of
gradient updates per real step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.algos.dyna_dqn.config import DynaDQNConfig
from mbrl_ai.algos.dyna_dqn.update import dqn_update
from mbrl_ai.config import Config
from mbrl_ai.core.buffers import Transitions, sample_mixed
from mbrl_ai.core.optim import Adam
from mbrl_ai.envs import EnvInfo
from mbrl_ai.envs.termination import termination_fn
from mbrl_ai.fit_model import (
    build_model_optimizer,
    build_real_replay,
    build_world_model,
    fit_world_model,
)
from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.modules.q_network import QNetwork
from mbrl_ai.rollouts import model_rollouts
from mbrl_ai.runtime import Checkpointer, RunContext, RunResult, start_run

# the imagined rollouts draw from their own generator, seeded with the run's seed plus this
IMAGINE_SEED_OFFSET = 50_021


def build_q_network(d: DynaDQNConfig, info: EnvInfo) -> QNetwork:
    return QNetwork(info.obs_dim, info.action_dim, list(d.hidden), d.activation)


def epsilon(d: DynaDQNConfig, step: int, total: int) -> float:
    """The linear ε schedule: initial → final over exploration_fraction of the run."""
    progress = min(1.0, step / max(1.0, d.exploration_fraction * total))
    return d.exploration_initial_eps + progress * (
        d.exploration_final_eps - d.exploration_initial_eps
    )


def act(run: RunContext, q_net: QNetwork, eps: float) -> np.ndarray:
    """ε-greedy actions for every training env (uniform with probability ``eps``)."""
    n = len(run.collect.obs)
    with torch.no_grad():
        greedy = q_net(torch.as_tensor(run.collect.obs, device=run.device)).argmax(-1).cpu().numpy()
    explore = run.rng.random(n) < eps
    random = run.rng.integers(0, q_net.n_actions, n)
    return np.where(explore, random, greedy)


@torch.no_grad()
def imagine(
    model: torch.nn.Module,
    q_net: QNetwork,
    starts: torch.Tensor,
    d: DynaDQNConfig,
    eps: float,
    generator: torch.Generator,
    run: RunContext,
) -> Transitions:
    """Rollouts of ``imagined_horizon`` steps through the ensemble from real ``starts``; the valid
    transitions, flat."""
    n_actions = q_net.n_actions

    def choose(state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        uniform = torch.randint(n_actions, (len(state),), device=state.device, generator=generator)
        if d.imagined_actions == "uniform":
            return uniform, torch.zeros(len(state), device=state.device)
        greedy = q_net(state).argmax(-1)
        explore = torch.rand(len(state), device=state.device, generator=generator) < eps
        return torch.where(explore, uniform, greedy), torch.zeros(len(state), device=state.device)

    wm = run.cfg.world_model
    out = model_rollouts(
        model,  # type: ignore[arg-type]
        choose,
        starts,
        d.imagined_horizon,
        members=torch.arange(run.cfg.world_model.ensemble_size, device=starts.device),
        done_fn=termination_fn(run.cfg.env, wm.termination),
        done_threshold=wm.done_threshold,
        generator=generator,
    )
    v = out.valid
    o, a, r, n, t = (
        x[v].cpu().numpy()
        for x in (out.states[:-1], out.actions, out.rewards, out.states[1:], out.terminated)
    )
    return Transitions(o, a.astype(np.int64), r.astype(np.float32), n, t.astype(bool))


def train_dyna_dqn(cfg: Config, out_dir: Path) -> RunResult:
    """Train as configured, resuming from ``out_dir``'s newest checkpoint."""
    run = start_run(cfg, out_dir)
    d, wm, info, device = cfg.node(DynaDQNConfig), cfg.world_model, run.info, run.device
    q_net = build_q_network(d, info).to(device)
    target_net = build_q_network(d, info).to(device)
    target_net.load_state_dict(q_net.state_dict())
    optimizer = Adam(q_net.parameters(), lr=d.lr)
    replay = build_real_replay(info, d.buffer_size, wm.holdout_fraction, cfg.seed)
    dyna = d.imagined_per_step > 0
    model = build_world_model(wm, info, device) if dyna else None
    model_optimizer = build_model_optimizer(model, cfg.lr_world_model, wm) if model else None
    imagined = build_real_replay(info, d.imagined_capacity, 0.0, cfg.seed) if dyna else None
    generator = torch.Generator(device=device).manual_seed(cfg.seed + IMAGINE_SEED_OFFSET)
    ckpt = Checkpointer(run)
    ckpt.track(
        q_net=q_net,
        target_net=target_net,
        optimizer=optimizer,
        replay=replay,
        world_model=model,
        model_optimizer=model_optimizer,
        imagined=imagined,
    )
    run.evaluate_with(q_net)
    with run, ckpt:
        saved = ckpt.begin()
        if saved:
            generator.set_state(saved["generator"].to(torch.uint8))
        while run.env_steps < cfg.total_timesteps:
            run.collect = replace(run.collect, finished_returns=[], finished_lengths=[])
            for _ in range(d.train_freq // cfg.n_envs):
                eps = epsilon(d, run.env_steps, cfg.total_timesteps)
                if run.env_steps < d.learning_starts:
                    actions = run.rng.integers(0, info.action_dim, cfg.n_envs)
                else:
                    actions = act(run, q_net, eps)
                replay.add(run.step_envs(actions, actions))
                before, run.env_steps = run.env_steps, run.env_steps + cfg.n_envs
                if run.env_steps // d.target_update_interval > before // d.target_update_interval:
                    target_net.load_state_dict(q_net.state_dict())
                if run.env_steps >= cfg.total_timesteps:
                    break
            record: dict[str, Any] = {"epsilon": eps}
            if run.env_steps > d.learning_starts:
                if model is not None and imagined is not None and model_optimizer is not None:
                    fit = fit_world_model(model, model_optimizer, replay, wm, run.rng, device)
                    n_starts = d.imagined_per_step * d.train_freq // d.imagined_horizon
                    starts = replay.get(run.rng.integers(0, replay.size, n_starts)).obs
                    new = imagine(model, q_net, torch.as_tensor(starts, device=device), d, eps,
                                  generator, run)  # fmt: skip
                    imagined.add(new)
                    record.update({f"model/{k}": v for k, v in fit.items()})
                    record.update(
                        imagined_transitions=len(new),
                        imagined_size=imagined.size,
                        imagined_terminal_share=float(new.terminated.mean()),
                        real_terminal_share=float(replay.terminated[: replay.size].mean()),
                    )
                stats = [
                    dqn_update(
                        q_net,
                        target_net,
                        optimizer,
                        sample_mixed(
                            replay,
                            imagined,
                            d.batch_size,
                            d.real_ratio,
                            run.rng,
                            device,
                            action_dtype=torch.int64,
                        ),
                        cfg.gamma,
                        d.double,
                        d.max_grad_norm,
                    )  # fmt: skip
                    for _ in range(d.gradient_steps)
                ]
                loss, q_mean = torch.stack(stats).mean(0).tolist()
                record.update(loss=loss, q_mean=q_mean, updates=len(stats))
                run.check_update(record, keys=("loss", "q_mean"))
            run.iteration += 1
            run.maybe_evaluate()
            run.log_iteration(record)
            ckpt.end_iteration(generator=generator.get_state())
        ckpt.finish(generator=generator.get_state())
    return run.result()


def load_dqn_policy(
    cfg: Config, info: EnvInfo, objects: Mapping[str, Any]
) -> tuple[QNetwork, RunningMeanStd | None]:
    q_net = build_q_network(cfg.node(DynaDQNConfig), info)
    q_net.load_state_dict(objects["q_net"])
    return q_net, None


register(
    AlgorithmSpec(
        name="dyna_dqn",
        train=train_dyna_dqn,
        load_policy=load_dqn_policy,
        action_spaces=(gym.spaces.Discrete,),
        reads=("gamma", "lr_world_model", "world_model"),
        nodes=(DynaDQNConfig,),
        world_model=True,
        smoke=(
            "env=CartPole-v1",
            "total_timesteps=768",
            "eval_every=256",
            "eval_episodes=2",
            "eval_n_envs=2",
            "checkpoint_every=256",
            "dyna_dqn.hidden=[32,32]",
            "dyna_dqn.learning_starts=200",
            "dyna_dqn.train_freq=128",
            "dyna_dqn.gradient_steps=16",
            "world_model.ensemble_size=3",
            "world_model.hidden=[32,32]",
            "world_model.train_steps=20",
        ),
    )
)
