"""``algo=mpc``: model-predictive control with the learned ensemble (PETS).

    warm-up: ``mpc.warmup_steps`` uniformly random real steps
    for each iteration of ``mpc.refit_every`` real steps until total_timesteps:
        fit the ensemble on the real replay (early stopping on held-out MSE; all members plan)
        with mpc.terminal_value: fit a critic V by TD(0) on the real replay (it values the end of
            every plan: gamma^H V(s_H))
        every real step: the planner searches ``mpc.horizon``-step action sequences, each scored
            by ``mpc.particles`` rollouts through the ensemble (trajectory sampling) with the
            model's own reward and done heads (or the env's known functions); take the first
            action; the plan, shifted by one, warm-starts the next search

Continuous actions are planned in [-1, 1]^d (the replay and the model see them so) and mapped to
the env's bounds when taken. Discrete actions are indices (categorical CEM or exhaustive search).
Evaluation plans the same way, from scratch each step, for every evaluation env at once.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.config import Config, ConfigError, need
from mbrl_ai.core.buffers import ReplayBuffer, Transitions
from mbrl_ai.core.optim import Adam, Optimizer
from mbrl_ai.core.ranges import Each, Ge, Gt, In, OneOf, need_multiple_of_envs
from mbrl_ai.envs import EnvInfo, inspect_env
from mbrl_ai.envs.rewards import KNOWN_REWARD, RewardFn
from mbrl_ai.envs.termination import termination_fn
from mbrl_ai.fit_model import (
    build_model_optimizer,
    build_real_replay,
    build_world_model,
    fit_with_early_stopping,
)
from mbrl_ai.modules import RunningMeanStd
from mbrl_ai.modules.critic import Critic
from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.planners import PLANNERS, Exhaustive, Planner
from mbrl_ai.planners.trajectories import PROPAGATIONS, sequence_returns
from mbrl_ai.runtime import Checkpointer, RunContext, RunResult, start_run


@dataclass
class MPCConfig:
    """Model-predictive control with the learned ensemble, as PETS (``algo=mpc``): every real step
    a planner searches action sequences through the model and the first action is taken. The
    model is ``world_model.*`` (fitted to early stopping every ``refit_every`` real steps; its
    learned reward and done heads score the sequences unless ``reward`` /
    ``world_model.termination`` say ``known``). Registered by ``algos/mpc.py``."""

    key: ClassVar[str] = "mpc"

    planner: Annotated[str, OneOf(PLANNERS)] = "cem"
    """``random`` (random shooting), ``cem``, ``icem``, ``mppi``; discrete actions: ``cem``
    (categorical CEM) or ``exhaustive`` (every sequence; small |A|^horizon only)."""
    horizon: Annotated[int, Ge(1)] = 15
    """Steps of every planned sequence."""
    population: Annotated[int, Ge(1)] = 200
    """Sequences evaluated per planner iteration (iCEM: in its first iteration)."""
    elites: Annotated[int, Ge(1)] = 20
    """Best sequences the distribution is refitted to (CEM, iCEM, categorical CEM)."""
    iterations: Annotated[int, Ge(1)] = 4
    """Refits per real step (random shooting: ignored)."""
    alpha: Annotated[float, In(0.0, 1.0, "[)")] = 0.1
    """Smoothing: the weight of the old mean and std (or probabilities) in each refit."""
    init_std: Annotated[float, Gt(0.0)] = 0.5
    """Initial standard deviation of the sampling Gaussian, in units of half the action range."""
    icem_beta: Annotated[float, Ge(0.0)] = 2.0
    """iCEM: the exponent of the coloured noise's 1/f^beta spectrum (0: white)."""
    icem_decay: Annotated[float, Ge(1.0)] = 1.25
    """iCEM: the population shrinks by this factor every iteration."""
    icem_keep: Annotated[float, In(0.0, 1.0, "[)")] = 0.3
    """iCEM: share of the elites carried into the next iteration's population."""
    mppi_noise_std: Annotated[float, Gt(0.0)] = 0.5
    """MPPI: standard deviation of the perturbations (half-range units)."""
    mppi_temperature: Annotated[float, Gt(0.0)] = 1.0
    """MPPI: λ of the exp(return / λ) weights."""
    categorical_floor: Annotated[float, In(0.0, 0.5, "[)")] = 0.01
    """Categorical CEM: every action keeps at least this probability at every step."""
    particles: Annotated[int, Ge(1)] = 5
    """Model rollouts per sequence; with ``ts_inf`` a multiple of ``world_model.ensemble_size``."""
    propagation: Annotated[str, OneOf(PROPAGATIONS)] = "ts_inf"
    """``ts_inf`` (each particle keeps one member), ``ts1`` (a member per step) or
    ``expectation`` (the members' mean, no sampling)."""
    reward: Annotated[str, OneOf(("learned", "known"))] = "learned"
    """``learned`` (the model's reward head) or ``known`` (the environment's own function, an
    option marked as such in every table; CartPole, continuous CartPole, Pendulum,
    MountainCarContinuous)."""
    soft_done: bool = True
    """With the learned done head: discount the rest of a particle's rewards by (1 − p_done)
    (true), or end the particle once p_done > ``world_model.done_threshold`` (false)."""
    terminal_value: bool = False
    """Add ``gamma^horizon V(s_H)`` to every particle's return, V a critic fitted by TD(0) to the
    real transitions after each model fit (it values the rest of the episode beyond the plan)."""
    value_hidden: Annotated[list[int], Each(Ge(1))] = field(default_factory=lambda: [64, 64])
    """The critic's hidden layers (tanh)."""
    value_lr: Annotated[float, Gt(0.0)] = 1e-3
    """The critic's Adam learning rate."""
    value_steps: Annotated[int, Ge(1)] = 500
    """TD(0) gradient steps after each model fit (minibatches of ``world_model.batch_size``)."""
    value_tau: Annotated[float, In(0.0, 1.0, "(]")] = 0.01
    """Polyak rate of the critic's target network (the TD targets' bootstrap)."""
    warmup_steps: Annotated[int, Ge(0)] = 200
    """Uniformly random actions for this many real steps before planning starts."""
    refit_every: Annotated[int, Ge(1)] = 100
    """Real steps between model fits (one iteration: a log line, checkpoint and signal checks)."""
    model_epochs: Annotated[int, Ge(1)] = 25
    """Each fit stops after this many epochs at the latest ..."""
    model_patience: Annotated[int, Ge(1)] = 5
    """... or once no member's held-out MSE improved by 1% for this many epochs."""

    def check(self, c: Config) -> None:
        need(
            self.elites <= self.population,
            "mpc.elites",
            self.elites,
            f"must be <= mpc.population ({self.population})",
        )
        e = c.world_model.ensemble_size
        need(
            self.propagation != "ts_inf" or self.particles % e == 0,
            "mpc.particles",
            self.particles,
            f"must be a multiple of world_model.ensemble_size ({e}) with mpc.propagation=ts_inf",
        )
        need_multiple_of_envs("mpc.refit_every", self.refit_every, c.n_envs)


# the planner's random draws come from a generator seeded with the run's seed plus this
PLANNER_SEED_OFFSET = 30_011


def build_planner(m: MPCConfig, info: EnvInfo, device: torch.device) -> Planner:
    """The planner ``mpc.planner`` names for ``info``'s kind of action space."""
    space = info.action_space
    if isinstance(space, gym.spaces.Discrete):
        return PLANNERS[m.planner]["discrete"].from_config(m, int(space.n), device)
    return PLANNERS[m.planner]["continuous"].from_config(m, info.action_dim, device)


def build_value(m: MPCConfig, info: EnvInfo) -> Critic:
    """The terminal-value critic ``mpc.value_*`` describes."""
    return Critic(info.obs_dim, list(m.value_hidden), "tanh", ortho_init=True)


def fit_value(
    critic: Critic,
    target: Critic,
    optimizer: Optimizer,
    replay: ReplayBuffer,
    m: MPCConfig,
    batch_size: int,
    gamma: float,
    rng: np.random.Generator,
    device: torch.device,
) -> dict[str, float]:
    """``mpc.value_steps`` TD(0) steps on minibatches of every real transition: V(s) towards
    r + gamma (1 - terminated) V_target(s'), the target following by Polyak averaging."""
    losses = []
    for _ in range(m.value_steps):
        b = replay.get(rng.integers(0, replay.size, batch_size))
        obs, next_obs = (torch.as_tensor(x, device=device) for x in (b.obs, b.next_obs))
        rewards = torch.as_tensor(b.rewards, device=device)
        alive = torch.as_tensor(~b.terminated, device=device).float()
        with torch.no_grad():
            td_target = rewards + gamma * alive * target(next_obs)
        loss = (critic(obs) - td_target).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(target.parameters()), list(critic.parameters()), m.value_tau)
        losses.append(loss.detach())
    with torch.no_grad():
        v = critic(torch.as_tensor(replay.get(np.arange(replay.size)).obs, device=device))
    return {"value_loss": float(torch.stack(losses).mean()), "value_mean": float(v.mean())}


class MPCPolicy:
    """Acting by planning: the first action of the planner's sequence for each state."""

    def __init__(
        self,
        cfg: Config,
        info: EnvInfo,
        model: EnsembleWorldModel,
        device: torch.device,
        value: Critic | None = None,
    ) -> None:
        self.m = m = cfg.node(MPCConfig)
        self.model, self.device, self.gamma, self.value = model, device, cfg.gamma, value
        self.discrete = isinstance(info.action_space, gym.spaces.Discrete)
        self.planner = build_planner(m, info, device)
        self.seed = cfg.seed + PLANNER_SEED_OFFSET
        self.generator = torch.Generator(device=device).manual_seed(self.seed)
        self.termination = termination_fn(cfg.env, cfg.world_model.termination)
        self.done_threshold = cfg.world_model.done_threshold
        self.known_reward = KNOWN_REWARD[cfg.env] if m.reward == "known" else None
        if not self.discrete:
            assert isinstance(info.action_space, gym.spaces.Box)
            self.low = torch.as_tensor(info.action_space.low, device=device).reshape(-1)
            self.high = torch.as_tensor(info.action_space.high, device=device).reshape(-1)
        self.evaluations = 0  # model rollout steps (rows × horizon) since the counter was read

    def fork(self) -> MPCPolicy:
        """A planner for one evaluation episode: the same model, a generator of its own started
        at the run's planner seed (so an evaluation draws nothing from the training planner's)."""
        lane = copy.copy(self)
        lane.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        return lane

    def state_dict(self) -> dict[str, Any]:
        """The planner's generator (checkpointed with the tracked objects, so that a resumed run
        plans with the same draws, even where it resumes inside an evaluation)."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"].to(torch.uint8))

    def to_env(self, a: torch.Tensor) -> torch.Tensor:
        """[-1, 1] → the action bounds (discrete indices pass through)."""
        return a if self.discrete else self.low + (a + 1.0) * 0.5 * (self.high - self.low)

    def _reward_fn(self) -> RewardFn | None:
        known = self.known_reward
        if known is None:
            return None
        return lambda s, a, s2: known(s, self.to_env(a), s2)

    def plan(self, obs: torch.Tensor, warm: torch.Tensor | None) -> torch.Tensor:
        """The plan ``[B, H, ...]`` for states ``obs`` ``[B, obs_dim]``."""
        reward_fn = self._reward_fn()

        def evaluate(candidates: torch.Tensor) -> torch.Tensor:
            self.evaluations += candidates.shape[0] * candidates.shape[1] * self.m.particles
            return sequence_returns(
                self.model, obs, candidates, self.m.particles, self.m.propagation, self.gamma,
                self.generator, reward_fn, self.termination, self.done_threshold,
                self.m.soft_done, self.value,
            )  # fmt: skip

        return self.planner.plan(evaluate, obs.shape[0], warm, self.generator)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """Evaluation: plan from scratch for every state; the first action, in env units."""
        return self.to_env(self.plan(obs.to(self.device), None)[:, 0])


def mpc_step(
    run: RunContext, policy: MPCPolicy, warm: torch.Tensor | None
) -> tuple[Transitions, torch.Tensor | None]:
    """One real step of every training env: random during the warm-up, else planned. Returns the
    transitions (actions as the model sees them) and the next step's warm start."""
    obs = run.collect.obs
    n = len(obs)
    m = policy.m
    if run.env_steps < m.warmup_steps:
        if policy.discrete:
            actions = run.rng.integers(0, int(run.info.action_space.n), n)  # type: ignore[attr-defined]
        else:
            actions = run.rng.uniform(-1.0, 1.0, (n, run.info.action_dim)).astype(np.float32)
        next_warm = None
    else:
        plan = policy.plan(torch.as_tensor(obs, device=run.device), warm)
        actions = plan[:, 0].cpu().numpy()
        next_warm = policy.planner.shift(plan)
    env_actions = policy.to_env(torch.as_tensor(actions, device=run.device)).cpu().numpy()
    ends = run.collect.episode_lengths.copy()
    transitions = run.step_envs(actions, env_actions)
    if next_warm is not None and (run.collect.episode_lengths < ends + 1).any():
        next_warm = None  # a new episode: its first search starts afresh (one env: n_envs=1)
    return transitions, next_warm


def fit_model_and_value(
    model: EnsembleWorldModel,
    model_optimizer: Optimizer,
    replay: ReplayBuffer,
    value: Critic | None,
    value_target: Critic | None,
    value_optimizer: Optimizer | None,
    cfg: Config,
    run: RunContext,
) -> dict[str, float]:
    """The iteration's refit of the model (and the terminal value) on all real data so far, once
    there are enough; its metrics."""
    m, wm = cfg.node(MPCConfig), cfg.world_model
    if replay.size < max(m.warmup_steps, 2):
        return {}
    fit = fit_with_early_stopping(
        model, model_optimizer, replay, wm, run.rng, wm.ensemble_size,
        m.model_epochs, m.model_patience, device=run.device,
    )  # fmt: skip
    metrics = {f"model/{k}": v for k, v in fit.items() if k != "elites"}
    if value is not None and value_target is not None and value_optimizer is not None:
        metrics.update(
            fit_value(
                value,
                value_target,
                value_optimizer,
                replay,
                m,
                wm.batch_size,
                cfg.gamma,
                run.rng,
                run.device,
            )  # fmt: skip
        )
    return metrics


def train_mpc(cfg: Config, out_dir: Path) -> RunResult:
    """Train (model-fit and plan) as configured, resuming from ``out_dir``'s newest checkpoint."""
    run = start_run(cfg, out_dir)
    m, wm, info, device = cfg.node(MPCConfig), cfg.world_model, run.info, run.device
    model = build_world_model(wm, info, device)
    model_optimizer = build_model_optimizer(model, cfg.lr_world_model, wm)
    replay = build_real_replay(info, wm.replay_capacity, wm.holdout_fraction, cfg.seed)
    value = value_target = value_optimizer = None
    if m.terminal_value:
        value, value_target = build_value(m, info).to(device), build_value(m, info).to(device)
        value_target.load_state_dict(value.state_dict())
        value_optimizer = Adam(value.parameters(), lr=m.value_lr)
    policy = MPCPolicy(cfg, info, model, device, value)
    ckpt = Checkpointer(run)
    ckpt.track(
        world_model=model,
        model_optimizer=model_optimizer,
        replay=replay,
        value=value,
        value_target=value_target,
        value_optimizer=value_optimizer,
        planner=policy,
    )
    run.evaluate_with(policy)
    with run, ckpt:
        saved = ckpt.begin()
        warm: torch.Tensor | None = saved.get("warm")
        partial = saved.get("partial")  # stopped between real steps: what the iteration had done
        while run.env_steps < cfg.total_timesteps:
            if partial is not None:  # the model was fitted before the stop
                model_metrics, plan_s, planned = (
                    partial["model"],
                    partial["plan_s"],
                    partial["planned"],
                )
                policy.evaluations, left = partial["rollouts"], partial["left"]
                partial = None
            else:
                run.collect = replace(run.collect, finished_returns=[], finished_lengths=[])
                model_metrics = fit_model_and_value(
                    model, model_optimizer, replay, value, value_target, value_optimizer, cfg, run
                )
                plan_s, policy.evaluations, planned = 0.0, 0, 0
                left = m.refit_every // cfg.n_envs
            for step in range(left):
                if ckpt.stop_requested:  # planning is slow: stop between real steps
                    ckpt.end_iteration(warm=warm, partial={
                        "model": model_metrics, "plan_s": plan_s, "planned": planned,
                        "rollouts": policy.evaluations, "left": left - step,
                    })  # fmt: skip
                t = time.perf_counter()
                planning = run.env_steps >= m.warmup_steps
                transitions, warm = mpc_step(run, policy, warm)
                if planning:
                    plan_s += time.perf_counter() - t
                    planned += cfg.n_envs
                replay.add(transitions)
                run.env_steps += cfg.n_envs
                if run.env_steps >= cfg.total_timesteps:
                    break
            rollouts = policy.evaluations  # before evaluation plans too
            run.iteration += 1
            run.maybe_evaluate()
            planning_metrics = (
                {
                    "plan_ms_per_step": 1e3 * plan_s / planned,
                    "model_steps_per_real_step": rollouts * m.horizon / planned,
                }
                if planned
                else {}
            )
            run.log_iteration(
                {**model_metrics, **planning_metrics, "real_transitions": m.refit_every}
            )
            ckpt.end_iteration(warm=warm)
        ckpt.finish(warm=warm)
    return run.result()


def load_mpc_policy(
    cfg: Config, info: EnvInfo, objects: Mapping[str, Any]
) -> tuple[MPCPolicy, RunningMeanStd | None]:
    """The planner over the checkpoint's world model (``evaluate``, ``visualize``)."""
    model = build_world_model(cfg.world_model, info, torch.device("cpu"))
    model.load_state_dict(objects["world_model"])
    value = None
    if cfg.node(MPCConfig).terminal_value:
        value = build_value(cfg.node(MPCConfig), info)
        value.load_state_dict(objects["value"])
    return MPCPolicy(cfg, info, model, torch.device("cpu"), value), None


def need_planner_memory(cfg: Config, width: int) -> None:
    """The planner's tensors of one real step fit in half this machine's memory, by a rough
    lower bound: every (sequence, particle, env) row holds its horizon of states and actions and
    the model's widest hidden layer, in float32."""
    m = cfg.node(MPCConfig)
    rows = m.population * m.particles * cfg.n_envs
    need_bytes = rows * (m.horizon * width + 2 * max(cfg.world_model.hidden, default=1)) * 4
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need_bytes > have / 2:
        raise ConfigError(
            "mpc.population", m.population, f"the planner would hold at least "
            f"{need_bytes / 2**30:,.0f} GiB per real step (population x particles x n_envs "
            f"rows), more than half this machine's {have / 2**30:,.0f} GiB",
        )  # fmt: skip


def check_mpc(cfg: Config) -> None:
    m = cfg.node(MPCConfig)
    if m.reward == "known" and cfg.env not in KNOWN_REWARD:
        raise ConfigError(
            "mpc.reward",
            m.reward,
            f"no known reward function for env {cfg.env!r}; known for: "
            f"{', '.join(sorted(KNOWN_REWARD))}",
        )
    info = inspect_env(cfg.env, cfg.env_kwargs)
    discrete = isinstance(info.action_space, gym.spaces.Discrete)
    need_planner_memory(cfg, info.obs_dim + int(np.prod(info.action_space.shape or (1,))))
    kind = "discrete" if discrete else "continuous"
    allowed = [name for name, kinds in PLANNERS.items() if kind in kinds]
    if m.planner not in allowed:
        raise ConfigError(
            "mpc.planner",
            m.planner,
            f"for {kind} actions ({cfg.env}) allowed: {', '.join(allowed)}",
        )
    if m.planner == "exhaustive":
        n = int(inspect_env(cfg.env, cfg.env_kwargs).action_space.n)  # type: ignore[attr-defined]
        if n**m.horizon > Exhaustive.LIMIT:
            raise ConfigError(
                "mpc.horizon",
                m.horizon,
                f"exhaustive search of {n}^{m.horizon} sequences exceeds {Exhaustive.LIMIT}",
            )


register(
    AlgorithmSpec(
        name="mpc",
        train=train_mpc,
        load_policy=load_mpc_policy,
        action_spaces=(gym.spaces.Discrete, gym.spaces.Box),
        reads=("gamma", "lr_world_model", "world_model"),
        nodes=(MPCConfig,),
        check=check_mpc,
        world_model=True,
        smoke=(
            "env=Pendulum-v1",
            "total_timesteps=128",
            "eval_every=64",
            "eval_episodes=1",
            "eval_n_envs=1",
            "eval_max_steps=50",
            "checkpoint_every=64",
            "world_model.ensemble_size=2",
            "world_model.hidden=[16,16]",
            "mpc.horizon=4",
            "mpc.population=16",
            "mpc.elites=4",
            "mpc.iterations=2",
            "mpc.particles=2",
            "mpc.warmup_steps=32",
            "mpc.refit_every=32",
            "mpc.model_epochs=2",
        ),
    )
)
