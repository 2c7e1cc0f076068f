"""Every structured config of mbrl_ai, in one place, and its validation.

The root keys carry the pseudocode's section-1 names and defaults (``n_real_steps``,
``planning_horizon``, ``beta_init`` ...), so ``planning_horizon=5`` on the command line means what
a reader of the pseudocode expects. Everything else lives in nested nodes filled by Hydra groups
(``algo/``, ``logger/``, ``experiment/``). Below ``train.py`` only these dataclasses travel, never a
``DictConfig``.

``validate`` turns a composed config into a checked :class:`Config` or raises :class:`ConfigError`
naming the key, the value and what is allowed: the root's ranges, then each node's own ``check``.
Nodes that belong to one algorithm (``SACConfig``, ``MBPOConfig``) are defined here but join the
schema through the registry (``mbrl_ai.algos.config_schema``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from omegaconf import DictConfig, OmegaConf

from mbrl_ai.core.errors import ConfigError
from mbrl_ai.envs.termination import KNOWN_TERMINATION


@dataclass
class AlgoConfig:
    name: str = "mbppo"
    """Which training loop runs: a name in the registry (``mbrl_ai.algos``): ``mbppo``
    (model-based PPO, sections 2.1–2.8), ``ppo``, ``sac``, ``mbpo``, ``mpc``, ``dyna_q``,
    ``dyna_dqn``, ``dreamer`` or a plugin's."""


@dataclass
class PPOConfig:
    """Knobs of the clipped PPO update (section 2.5) beyond the pseudocode's root keys."""

    ent_coef: float = 0.0
    """Entropy bonus weight (the pseudocode's 0.0)."""
    vf_coef: float = 0.5
    """Value loss weight (the pseudocode's 0.5)."""
    clip_range_vf: float | None = None
    """Clip the value prediction to old_value ± this; ``null`` disables value clipping."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    minibatches: str = "per_real"
    """How a batch with imagined samples is cut: ``per_real``, as many minibatches as the real
    samples alone fill (⌈real / batch_size⌉), each enlarged by its share of the imagined ones, so
    imagination costs no extra PPO steps; ``per_sample``, minibatches of ``batch_size`` samples
    (imagined samples add steps; the MB-PPO presets were measured with it). The same for a batch
    of real samples only."""
    anneal_lr: bool = False
    """Anneal the learning rate linearly to 0 over ``total_timesteps``."""
    target_kl: float | None = None
    """Stop the epoch loop early once the approximate KL of a minibatch exceeds
    ``kl_stop_factor`` times this; ``null`` never stops."""
    kl_stop_factor: float = 1.5
    """The multiple of ``target_kl`` at which the KL early stop fires (Stable-Baselines3's 1.5)."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    normalize_obs: bool = False
    """Normalise observations with running statistics (frozen at evaluation)."""
    normalize_reward: bool = False
    """Scale rewards by a running std of the discounted return (as VecNormalize does)."""
    clip_obs: float = 10.0
    """Clip normalised observations to ±this."""
    clip_reward: float = 10.0
    """Clip scaled rewards (``normalize_reward``) to ±this."""

    def check(self, c: Config) -> None:
        for key in ("ent_coef", "vf_coef"):
            need(
                getattr(self, key) >= 0.0,
                f"ppo.{key}",
                getattr(self, key),
                "must be >= 0",
            )
        need_choice("ppo.minibatches", self.minibatches, MINIBATCH_MODES)
        for key in ("clip_range_vf", "target_kl"):
            value = getattr(self, key)
            need(value is None or value > 0.0, f"ppo.{key}", value, "must be > 0 or null")
        for key in ("kl_stop_factor", "adam_eps", "clip_obs", "clip_reward"):
            need(getattr(self, key) > 0.0, f"ppo.{key}", getattr(self, key), "must be > 0")


@dataclass
class NetworkConfig:
    """Actor and critic MLPs (separate networks, no shared encoder)."""

    actor_hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of the actor."""
    critic_hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of the critic."""
    activation: str = "tanh"
    """Hidden activation: tanh, relu, elu or silu."""
    ortho_init: bool = True
    """Orthogonal initialisation (gain sqrt(2) hidden, 0.01 policy head, 1 value head)."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (Box actions)."""

    def check(self, c: Config) -> None:
        widths = {
            "actor_hidden": self.actor_hidden,
            "critic_hidden": self.critic_hidden,
        }
        need_mlp("network", widths, self.activation)


@dataclass
class WorldModelConfig:
    """The ensemble world model ŵφ (section 2.2); its learning rate is the root ``lr_world_model``."""

    ensemble_size: int = 5
    """Members E of the ensemble (one batched module)."""
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    """Hidden layer widths of every member."""
    activation: str = "silu"
    """Hidden activation: tanh, relu, elu or silu."""
    train_steps: int = 200
    """Gradient steps on the real-transition replay per iteration, at most (see ``stop_*``)."""
    batch_size: int = 256
    """Minibatch per member per gradient step (each member draws its own)."""
    holdout_fraction: float = 0.1
    """Share of real transitions kept out of training to score the model (confidence)."""
    replay_capacity: int = 100_000
    """Real transitions kept for fitting (oldest dropped first)."""
    weight_decay: float = 1e-5
    """AdamW weight decay."""
    fused_optimizer: bool = False
    """AdamW as one fused kernel over all parameters (about a tenth cheaper per step on a CPU;
    equal to the per-tensor update up to float rounding, so not bit for bit the runs measured
    with it off)."""
    min_logvar: float = -10.0
    """Initial lower soft bound of the predicted log-variance."""
    max_logvar: float = 0.5
    """Initial upper soft bound of the predicted log-variance."""
    logvar_bound_coef: float = 0.01
    """Weight of the penalty that keeps the log-variance bounds tight."""
    done_pos_weight: float | None = None
    """BCE weight of terminal transitions; ``null`` = (non-terminal / terminal) count in the data."""
    termination: str = "learned"
    """What ends a model rollout (MB-PPO's imagination, MBPO's branches): the ``learned`` done
    head, or the env's ``known`` rule (``mbrl_ai.envs.termination``), the ablation."""
    done_input: str = "state_action"
    """What the learned done probability reads: ``state_action`` (a head of each member, beside
    Δs and r) or ``next_state`` (a separate classifier per member of the next state alone, trained
    on real next states and applied to predicted ones; for tasks whose episodes end on a condition
    of the state, like CartPole's)."""
    done_hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden widths of the next-state done classifier (``done_input=next_state``)."""
    done_threshold: float = 0.5
    """With the learned head: a predicted done probability above this ends the rollout."""
    confidence: str = "heldout"
    """What the confidence of section 2.2 measures: ``heldout`` = exp(−held-out one-step loss)
    (the pseudocode); ``open_loop`` = exp(−e_H / confidence_tolerance), with e_H the model's
    H-step open-loop error on the newest real trajectories before it is fitted on them;
    ``open_loop_skill`` = clip(1 − e_H / e_still, 0, 1), e_still the same error of predicting that
    the state does not change (no tolerance to set)."""
    confidence_tolerance: float = 1e-3
    """With ``confidence=open_loop``: the H-step error (per state dimension, in state variances)
    at which confidence is e^-1."""
    forget_factor: float | None = None
    """When the H-step open-loop error on the newest real data exceeds this multiple of its median
    over the previous ``forget_window`` iterations, the dynamics are taken to have changed and the
    real replay forgets all but the newest batch; ``null`` never forgets."""
    forget_window: int = 5
    """Iterations of open-loop error the change test compares with (at least 3 are needed)."""
    stop_check_every: int = 20
    """Early stop of each fit: every this many of the ``train_steps`` steps, score the model on
    held-out transitions (``stop_check_size``); 0 always takes all ``train_steps``."""
    stop_check_size: int = 512
    """The early-stop check scores at most this many held-out transitions, spread evenly over the
    held-out split."""
    stop_patience: int = 1
    """... and stop once that many checks in a row improved the held-out MSE by less than
    ``stop_min_improvement`` (relative) on the best so far."""
    stop_min_improvement: float = 0.01
    """The relative drop of the held-out MSE that counts as an improvement."""

    def check(self, c: Config) -> None:
        need_choice("world_model.confidence", self.confidence, CONFIDENCES)
        need_choice("world_model.done_input", self.done_input, DONE_INPUTS)
        need(
            self.forget_factor is None or self.forget_factor > 1.0,
            "world_model.forget_factor",
            self.forget_factor,
            "must be > 1 or null",
        )
        need_int(self, "world_model", "forget_window", 3)
        need_int(self, "world_model", "stop_check_every", 0)
        need_int(self, "world_model", "stop_check_size", 1)
        need_int(self, "world_model", "stop_patience", 1)
        need(
            0.0 <= self.stop_min_improvement < 1.0,
            "world_model.stop_min_improvement",
            self.stop_min_improvement,
            "must be in [0, 1)",
        )
        need(
            self.confidence_tolerance > 0.0,
            "world_model.confidence_tolerance",
            self.confidence_tolerance,
            "must be > 0",
        )
        for key in ("ensemble_size", "train_steps", "batch_size", "replay_capacity"):
            need_int(self, "world_model", key, 1)
        need_mlp(
            "world_model", {"hidden": self.hidden, "done_hidden": self.done_hidden}, self.activation
        )
        need(
            0.0 < self.holdout_fraction < 1.0,
            "world_model.holdout_fraction",
            self.holdout_fraction,
            "must be in (0, 1)",
        )
        for key in ("weight_decay", "logvar_bound_coef"):
            need(
                getattr(self, key) >= 0.0,
                f"world_model.{key}",
                getattr(self, key),
                "must be >= 0",
            )
        need(
            self.min_logvar < self.max_logvar,
            "world_model.min_logvar",
            self.min_logvar,
            f"must be < world_model.max_logvar ({self.max_logvar})",
        )
        need(
            self.done_pos_weight is None or self.done_pos_weight > 0.0,
            "world_model.done_pos_weight",
            self.done_pos_weight,
            "must be > 0 or null",
        )
        need_choice("world_model.termination", self.termination, TERMINATIONS)
        need(
            0.0 < self.done_threshold < 1.0,
            "world_model.done_threshold",
            self.done_threshold,
            "must be in (0, 1)",
        )
        need(
            self.termination == "learned" or c.env in KNOWN_TERMINATION,
            "world_model.termination",
            self.termination,
            f"no known termination function for env {c.env!r}; known for: "
            f"{', '.join(sorted(KNOWN_TERMINATION))}",
        )


@dataclass
class ImaginationConfig:
    """How much and how deep to imagine (section 2.3)."""

    mode: str = "breadth"
    """``breadth``: rollout count follows confidence, depth = planning_horizon (the pseudocode);
    ``depth``: depth follows ensemble variance, count = max_planning_rollouts; ``both``; ``fixed``:
    count = max_planning_rollouts and depth = planning_horizon (the ablation); ``steve``: each
    rollout's depth, up to max_horizon, is the one whose target has the least variance (STEVE's
    criterion, ``imagine.py``; count = max_planning_rollouts); ``steve_breadth``: steve depth and
    the breadth count."""
    min_horizon: int = 1
    """H_min of the adaptive depth."""
    max_horizon: int = 10
    """H_max of the adaptive depth."""
    base_horizon: int | None = None
    """H_base of the adaptive depth; ``null`` = max_horizon."""
    sensitivity: float = 10.0
    """k in H = clip(H_min, H_max, H_base·exp(−k·Var)); Var in normalised units."""
    disagreement_stop: float | None = None
    """End a rollout before the first transition whose ensemble disagreement exceeds this (it is
    dropped; the rollout is cut and bootstrapped at the step before); ``null`` never stops early."""
    sample: bool = True
    """Sample next states from the member's Gaussian (else use its mean)."""
    start_window: int = 10_000
    """Start states are drawn from this many most recent real states."""
    recent_share: float = 0.0
    """Share of the start states drawn from the newest real batch only (the rest: start_window)."""
    rounds: int = 1
    """Imagine-and-update rounds per real batch (Dyna-style); the pseudocode does 1."""
    imagined_weight: str = "confidence"
    """Per-sample PPO loss weight of imagined data: ``one`` or ``confidence``."""

    def check(self, c: Config) -> None:
        need_choice("imagination.mode", self.mode, IMAGINATION_MODES)
        for key in ("min_horizon", "max_horizon", "start_window", "rounds"):
            need_int(self, "imagination", key, 1)
        need(
            self.max_horizon >= self.min_horizon,
            "imagination.max_horizon",
            self.max_horizon,
            f"must be >= imagination.min_horizon ({self.min_horizon})",
        )
        need(
            self.base_horizon is None or self.base_horizon >= 1,
            "imagination.base_horizon",
            self.base_horizon,
            "must be >= 1 or null",
        )
        need(
            self.sensitivity >= 0.0,
            "imagination.sensitivity",
            self.sensitivity,
            "must be >= 0",
        )
        need(
            self.disagreement_stop is None or self.disagreement_stop > 0.0,
            "imagination.disagreement_stop",
            self.disagreement_stop,
            "must be > 0 or null",
        )
        need_choice("imagination.imagined_weight", self.imagined_weight, IMAGINED_WEIGHTS)
        need(
            0.0 <= self.recent_share <= 1.0,
            "imagination.recent_share",
            self.recent_share,
            "must be in [0, 1]",
        )


@dataclass
class CuriosityConfig:
    """The curiosity module Cψ (sections 2.1, 2.3, 2.6); its learning rate is ``lr_curiosity``."""

    name: str = "rnd"
    """``rnd``, ``icm``, ``disagreement`` (the world model's ensemble; MB-PPO only) or ``none``."""
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of the module's networks."""
    feature_dim: int = 64
    """Output width of RND's target and predictor, and of ICM's features."""
    activation: str = "relu"
    """Hidden activation: tanh, relu, elu or silu."""
    predictor_extra_layers: int = 1
    """RND: hidden layers the predictor has beyond the target."""
    forward_weight: float = 0.2
    """ICM: weight of the forward loss against the inverse loss."""
    obs_clip: float = 5.0
    """Clip of the normalised states the module reads."""
    warmup_steps: int = 1000
    """Intrinsic reward is zero until the state normalisation has seen this many real states."""
    int_gamma: float = 0.99
    """Discount of the intrinsic returns whose running std scales the intrinsic reward."""
    epochs: int = 1
    """Passes over each iteration's transitions in the curiosity update (2.6)."""
    batch_size: int = 256
    """Minibatch size of the curiosity update."""
    train_on_imagined: bool = False
    """Also train the module on imagined transitions (the pseudocode's B.real_and_imagined())."""
    intrinsic_head: bool = False
    """A separate intrinsic value head with its own non-episodic GAE (discount ``int_gamma``), as
    RND does: PPO's advantage is A_ext + β·A_int. Off: one head on the reward r_ext + β·r_int."""

    def check(self, c: Config) -> None:
        need_choice("curiosity.name", self.name, CURIOSITY)
        for key in ("feature_dim", "epochs", "batch_size"):
            need_int(self, "curiosity", key, 1)
        for key in ("predictor_extra_layers", "warmup_steps"):
            need_int(self, "curiosity", key, 0)
        need_mlp("curiosity", {"hidden": self.hidden}, self.activation)
        need(
            0.0 <= self.forward_weight <= 1.0,
            "curiosity.forward_weight",
            self.forward_weight,
            "must be in [0, 1]",
        )
        need(self.obs_clip > 0.0, "curiosity.obs_clip", self.obs_clip, "must be > 0")
        need(
            0.0 <= self.int_gamma < 1.0,
            "curiosity.int_gamma",
            self.int_gamma,
            "must be in [0, 1)",
        )


@dataclass
class BetaConfig:
    """Curiosity weight adaptation (section 2.7)."""

    window: int = 10
    """Recent real episode returns in the moving average, and points in the slope fit."""
    low_threshold: float = 0.0
    """β grows when the return trend (per episode) is at or below this."""
    high_threshold: float = 1.0
    """β shrinks when the return trend (per episode) is above this."""

    def check(self, c: Config) -> None:
        need(self.window >= 2, "beta.window", self.window, "must be an integer >= 2")
        need(
            self.high_threshold >= self.low_threshold,
            "beta.high_threshold",
            self.high_threshold,
            f"must be >= beta.low_threshold ({self.low_threshold})",
        )


@dataclass
class SACConfig:
    """Soft actor-critic (``algo=sac``, and the policy learner of ``algo=mbpo``). Defaults are
    Stable-Baselines3's; its learning rate is the root ``lr_actor_critic``, its discount ``gamma``.
    Registered by ``algos/sac.py``."""

    key: ClassVar[str] = "sac"

    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths of the actor and of each Q-network."""
    activation: str = "relu"
    """Hidden activation: tanh, relu, elu or silu."""
    batch_size: int = 256
    """Minibatch of every gradient step."""
    buffer_size: int = 1_000_000
    """Real transitions kept in the replay."""
    learning_starts: int = 100
    """Uniformly random actions, and no updates, for this many real steps."""
    tau: float = 0.005
    """Polyak rate of the target critic."""
    init_alpha: float = 1.0
    """Initial entropy coefficient α."""
    auto_alpha: bool = True
    """Tune α towards ``target_entropy`` (else it stays ``init_alpha``)."""
    target_entropy: float | None = None
    """``null``: −(action dimension)."""
    updates_per_step: int = 1
    """Gradient steps per real environment step (MBPO's G)."""
    steps_per_iteration: int = 250
    """Real steps between two log lines (and checkpoint / signal checks; MBPO: model updates)."""

    def check(self, c: Config) -> None:
        need_mlp("sac", {"hidden": self.hidden}, self.activation)
        for key in (
            "batch_size",
            "buffer_size",
            "updates_per_step",
            "steps_per_iteration",
        ):
            need_int(self, "sac", key, 1)
        need_int(self, "sac", "learning_starts", 0)
        need(0.0 < self.tau <= 1.0, "sac.tau", self.tau, "must be in (0, 1]")
        need(self.init_alpha > 0.0, "sac.init_alpha", self.init_alpha, "must be > 0")


@dataclass
class MBPOConfig:
    """Model-based policy optimisation (``algo=mbpo``): SAC trained mostly on short model rollouts
    branched from real states. The model is ``world_model.*`` (trained to early stopping, elites by
    held-out MSE); SAC is ``sac.*``, with ``sac.updates_per_step`` as MBPO's G. Registered by
    ``algos/mbpo.py``."""

    key: ClassVar[str] = "mbpo"

    rollout_length: str = "adaptive"
    """How long the branched rollouts are: ``fixed`` (``horizon``), ``linear`` (MBPO's schedule,
    ``linear_schedule``), ``adaptive`` (seed 003: H = clip(min_horizon, max_horizon,
    base_horizon·exp(−sensitivity·Var)), Var the elites' held-out disagreement)."""
    horizon: int = 1
    """H of ``rollout_length=fixed``."""
    linear_schedule: list[int] = field(default_factory=lambda: [1, 20, 1, 10])
    """[first iteration, last iteration, H there, H here] of ``rollout_length=linear``: H moves
    linearly between the two, and stays at the ends outside them."""
    min_horizon: int = 1
    """H_min of ``rollout_length=adaptive``."""
    max_horizon: int = 10
    """H_max of ``rollout_length=adaptive``."""
    base_horizon: int | None = None
    """H_base of ``rollout_length=adaptive``; ``null`` = max_horizon."""
    sensitivity: float = 10.0
    """k of ``rollout_length=adaptive``; Var is in normalised units."""
    disagreement_stop: float | None = None
    """Also end each rollout on its own once its members' disagreement passes this."""
    rollout_batch_size: int = 1000
    """Rollouts branched (from uniformly drawn real states) after every model update."""
    retain_iterations: int = 4
    """The model buffer holds this many model updates' rollouts (rebuilt when H changes)."""
    real_ratio: float = 0.05
    """Share of real transitions in every SAC minibatch."""
    elites: int = 5
    """Members used for rollouts: the lowest held-out MSE."""
    max_epochs: int = 50
    """Model training stops after this many epochs at the latest ..."""
    patience: int = 5
    """... or once no member improved its held-out MSE by ``min_improvement`` for this many
    epochs."""
    min_improvement: float = 0.01
    """Relative drop of a member's held-out MSE that counts as an improvement (MBPO's 1%)."""

    def check(self, c: Config) -> None:
        need_choice("mbpo.rollout_length", self.rollout_length, ROLLOUT_LENGTHS)
        for key in (
            "horizon",
            "min_horizon",
            "max_horizon",
            "rollout_batch_size",
            "retain_iterations",
            "elites",
            "max_epochs",
            "patience",
        ):
            need_int(self, "mbpo", key, 1)
        need(
            self.max_horizon >= self.min_horizon,
            "mbpo.max_horizon",
            self.max_horizon,
            f"must be >= mbpo.min_horizon ({self.min_horizon})",
        )
        ls = self.linear_schedule
        need(
            len(ls) == 4 and ls[1] > ls[0] >= 0 and min(ls[2], ls[3]) >= 1,
            "mbpo.linear_schedule",
            ls,
            "must be [first iteration, last iteration > first, H >= 1, H >= 1]",
        )
        need(
            0.0 <= self.real_ratio <= 1.0,
            "mbpo.real_ratio",
            self.real_ratio,
            "must be in [0, 1]",
        )
        need(
            0.0 <= self.min_improvement < 1.0,
            "mbpo.min_improvement",
            self.min_improvement,
            "must be in [0, 1)",
        )
        need(
            self.elites <= c.world_model.ensemble_size,
            "mbpo.elites",
            self.elites,
            f"must be <= world_model.ensemble_size ({c.world_model.ensemble_size})",
        )
        need(
            self.sensitivity >= 0.0,
            "mbpo.sensitivity",
            self.sensitivity,
            "must be >= 0",
        )
        need(
            self.disagreement_stop is None or self.disagreement_stop > 0.0,
            "mbpo.disagreement_stop",
            self.disagreement_stop,
            "must be > 0 or null",
        )


@dataclass
class MPCConfig:
    """Model-predictive control with the learned ensemble, as PETS (``algo=mpc``): every real step
    a planner searches action sequences through the model and the first action is taken. The
    model is ``world_model.*`` (fitted to early stopping every ``refit_every`` real steps; its
    learned reward and done heads score the sequences unless ``reward`` /
    ``world_model.termination`` say ``known``). Registered by ``algos/mpc.py``."""

    key: ClassVar[str] = "mpc"

    planner: str = "cem"
    """``random`` (random shooting), ``cem``, ``icem``, ``mppi``; discrete actions: ``cem``
    (categorical CEM) or ``exhaustive`` (every sequence; small |A|^horizon only)."""
    horizon: int = 15
    """Steps of every planned sequence."""
    population: int = 200
    """Sequences evaluated per planner iteration (iCEM: in its first iteration)."""
    elites: int = 20
    """Best sequences the distribution is refitted to (CEM, iCEM, categorical CEM)."""
    iterations: int = 4
    """Refits per real step (random shooting: ignored)."""
    alpha: float = 0.1
    """Smoothing: the weight of the old mean and std (or probabilities) in each refit."""
    init_std: float = 0.5
    """Initial standard deviation of the sampling Gaussian, in units of half the action range."""
    icem_beta: float = 2.0
    """iCEM: the exponent of the coloured noise's 1/f^beta spectrum (0: white)."""
    icem_decay: float = 1.25
    """iCEM: the population shrinks by this factor every iteration."""
    icem_keep: float = 0.3
    """iCEM: share of the elites carried into the next iteration's population."""
    mppi_noise_std: float = 0.5
    """MPPI: standard deviation of the perturbations (half-range units)."""
    mppi_temperature: float = 1.0
    """MPPI: λ of the exp(return / λ) weights."""
    categorical_floor: float = 0.01
    """Categorical CEM: every action keeps at least this probability at every step."""
    particles: int = 5
    """Model rollouts per sequence; with ``ts_inf`` a multiple of ``world_model.ensemble_size``."""
    propagation: str = "ts_inf"
    """``ts_inf`` (each particle keeps one member), ``ts1`` (a member per step) or
    ``expectation`` (the members' mean, no sampling)."""
    reward: str = "learned"
    """``learned`` (the model's reward head) or ``known`` (the environment's own function, an
    option marked as such in every table; CartPole, continuous CartPole, Pendulum,
    MountainCarContinuous)."""
    soft_done: bool = True
    """With the learned done head: discount the rest of a particle's rewards by (1 − p_done)
    (true), or end the particle once p_done > ``world_model.done_threshold`` (false)."""
    terminal_value: bool = False
    """Add ``gamma^horizon V(s_H)`` to every particle's return, V a critic fitted by TD(0) to the
    real transitions after each model fit (it values the rest of the episode beyond the plan)."""
    value_hidden: list[int] = field(default_factory=lambda: [64, 64])
    """The critic's hidden layers (tanh)."""
    value_lr: float = 1e-3
    """The critic's Adam learning rate."""
    value_steps: int = 500
    """TD(0) gradient steps after each model fit (minibatches of ``world_model.batch_size``)."""
    value_tau: float = 0.01
    """Polyak rate of the critic's target network (the TD targets' bootstrap)."""
    warmup_steps: int = 200
    """Uniformly random actions for this many real steps before planning starts."""
    refit_every: int = 100
    """Real steps between model fits (one iteration: a log line, checkpoint and signal checks)."""
    model_epochs: int = 25
    """Each fit stops after this many epochs at the latest ..."""
    model_patience: int = 5
    """... or once no member's held-out MSE improved by 1% for this many epochs."""

    def check(self, c: Config) -> None:
        need_choice("mpc.planner", self.planner, MPC_PLANNERS)
        need_choice("mpc.propagation", self.propagation, MPC_PROPAGATIONS)
        need_choice("mpc.reward", self.reward, ("learned", "known"))
        for key in ("horizon", "population", "elites", "iterations", "particles", "refit_every"):
            need_int(self, "mpc", key, 1)
        for key in ("warmup_steps",):
            need_int(self, "mpc", key, 0)
        for key in ("model_epochs", "model_patience", "value_steps"):
            need_int(self, "mpc", key, 1)
        need_mlp("mpc", {"value_hidden": self.value_hidden}, "tanh")
        need(self.value_lr > 0, "mpc.value_lr", self.value_lr, "must be > 0")
        need(0.0 < self.value_tau <= 1.0, "mpc.value_tau", self.value_tau, "must be in (0, 1]")
        need(
            self.elites <= self.population,
            "mpc.elites",
            self.elites,
            f"must be <= mpc.population ({self.population})",
        )
        for key in ("alpha", "icem_keep"):
            need(
                0.0 <= getattr(self, key) < 1.0,
                f"mpc.{key}",
                getattr(self, key),
                "must be in [0, 1)",
            )
        for key in ("init_std", "mppi_noise_std", "mppi_temperature"):
            need(getattr(self, key) > 0.0, f"mpc.{key}", getattr(self, key), "must be > 0")
        need(self.icem_decay >= 1.0, "mpc.icem_decay", self.icem_decay, "must be >= 1")
        need(self.icem_beta >= 0.0, "mpc.icem_beta", self.icem_beta, "must be >= 0")
        need(
            0.0 <= self.categorical_floor < 0.5,
            "mpc.categorical_floor",
            self.categorical_floor,
            "must be in [0, 0.5)",
        )
        e = c.world_model.ensemble_size
        need(
            self.propagation != "ts_inf" or self.particles % e == 0,
            "mpc.particles",
            self.particles,
            f"must be a multiple of world_model.ensemble_size ({e}) with mpc.propagation=ts_inf",
        )
        need(
            self.refit_every % c.n_envs == 0,
            "mpc.refit_every",
            self.refit_every,
            f"must be a multiple of n_envs ({c.n_envs})",
        )


@dataclass
class DynaQConfig:
    """Tabular Dyna-Q (``algo=dyna_q``), Sutton & Barto chapter 8: Q-learning on every real step,
    a table model of what each tried (state, action) led to, and ``planning_steps`` simulated
    Q-learning updates from the model after every real step. ``method`` chooses how the
    simulated updates are picked: uniformly among tried pairs (Dyna-Q), the same with an
    exploration bonus for pairs not tried for long (Dyna-Q+), or by priority (prioritized
    sweeping). For Discrete observations and actions. Registered by ``algos/dyna_q.py``."""

    key: ClassVar[str] = "dyna_q"

    method: str = "dyna_q"
    """``dyna_q``, ``dyna_q_plus`` (bonus ``kappa * sqrt(steps since the pair was last tried)``
    in simulated updates; untried actions of a visited state are modelled as staying put with
    reward 0) or ``prioritized_sweeping`` (a queue of pairs by the size of their pending update;
    every update, real ones included, goes through the queue)."""
    planning_steps: int = 5
    """Simulated updates after every real step (n; 0: plain Q-learning)."""
    alpha: float = 0.1
    """Step size of every Q update."""
    epsilon: float = 0.1
    """ε-greedy exploration (ties between greedy actions are broken at random)."""
    model: str = "deterministic"
    """``deterministic`` (a pair's last outcome, as in the book) or ``stochastic`` (counts of
    next states and mean rewards; planning samples a next state by its count)."""
    planning_update: str = "sample"
    """Dyna-Q / Dyna-Q+ planning: ``sample`` (an outcome drawn from the model, the book's
    Dyna-Q) or ``expected`` (the model's expectation over every outcome seen; the same for a
    deterministic model). Prioritized sweeping always uses the expectation."""
    kappa: float = 1e-4
    """Dyna-Q+: weight of the exploration bonus."""
    theta: float = 1e-4
    """Prioritized sweeping: pairs whose update is no larger than this are not queued."""
    q_init: float = 0.0
    """Initial value of every Q entry."""
    log_every: int = 100
    """Real steps per iteration (one log line, checkpoint and signal check)."""
    exact_eval: bool = True
    """Where the env exposes its transition table (toy text, the mazes): every evaluation also
    reports the greedy policy's exact return and the optimum (``exact_return``,
    ``optimal_return`` in ``eval.jsonl``), undiscounted over the env's time limit (or
    ``eval_max_steps``), and its discounted value beside the discounted optimum
    (``discounted_value``, ``optimal_discounted_value``; with ``gamma`` < 1)."""

    def check(self, c: Config) -> None:
        need_choice("dyna_q.method", self.method, DYNA_METHODS)
        need_choice("dyna_q.model", self.model, ("deterministic", "stochastic"))
        need_choice("dyna_q.planning_update", self.planning_update, ("sample", "expected"))
        need_int(self, "dyna_q", "planning_steps", 0)
        need_int(self, "dyna_q", "log_every", 1)
        need(0.0 < self.alpha <= 1.0, "dyna_q.alpha", self.alpha, "must be in (0, 1]")
        need(0.0 <= self.epsilon <= 1.0, "dyna_q.epsilon", self.epsilon, "must be in [0, 1]")
        for key in ("kappa", "theta"):
            need(getattr(self, key) >= 0.0, f"dyna_q.{key}", getattr(self, key), "must be >= 0")
        need(c.n_envs == 1, "n_envs", c.n_envs, "algo=dyna_q steps one env: must be 1")


@dataclass
class DynaDQNConfig:
    """Deep Dyna (``algo=dyna_dqn``): a DQN (double Q-learning, target network, replay) whose
    minibatches mix real transitions with transitions imagined by the ensemble world model
    (``world_model.*``: refitted each iteration for ``world_model.train_steps`` steps, stopped
    early on the held-out MSE) from real states, ``imagined_per_step`` per real step; with 0 it is
    our plain DQN. Defaults: Stable-Baselines3's rl-zoo DQN for CartPole-v1. Discrete actions.
    Registered by ``algos/dyna_dqn.py``."""

    key: ClassVar[str] = "dyna_dqn"

    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Widths of the Q-network's hidden layers."""
    activation: str = "relu"
    """Activation of the Q-network."""
    lr: float = 2.3e-3
    """Adam learning rate of the Q-network."""
    batch_size: int = 64
    """Transitions per gradient step."""
    buffer_size: int = 100_000
    """Real transitions kept in the replay."""
    learning_starts: int = 1000
    """Uniformly random actions, and no updates, for this many real steps."""
    train_freq: int = 256
    """Real steps per iteration; each iteration ends with ``gradient_steps`` updates."""
    gradient_steps: int = 128
    """Gradient steps per iteration (updates per real step: gradient_steps / train_freq)."""
    target_update_interval: int = 10
    """Copy the Q-network into the target network every this many real steps."""
    exploration_fraction: float = 0.16
    """ε falls linearly from ``exploration_initial_eps`` to ``exploration_final_eps`` over this
    share of ``total_timesteps`` ..."""
    exploration_initial_eps: float = 1.0
    """... from this ..."""
    exploration_final_eps: float = 0.04
    """... to this, and stays there."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip of each update."""
    double: bool = True
    """Double Q-learning: the online network picks the next action, the target network values it."""
    imagined_per_step: int = 0
    """k: imagined transitions per real step, generated once per iteration after the model is
    refitted (0: plain DQN, no world model)."""
    imagined_horizon: int = 1
    """Steps of each imagined rollout from a real state."""
    imagined_actions: str = "uniform"
    """Actions of the imagined rollouts: ``uniform`` (every action of a real state gets tried in
    the model) or ``policy`` (ε-greedy on the current Q-network)."""
    imagined_capacity: int = 20_000
    """Imagined transitions kept (the newest)."""
    real_ratio: float = 0.5
    """Share of each minibatch drawn from the real replay once imagined transitions exist."""

    def check(self, c: Config) -> None:
        need_mlp("dyna_dqn", {"hidden": self.hidden}, self.activation)
        for key in ("batch_size", "buffer_size", "train_freq", "gradient_steps",
                    "target_update_interval", "imagined_horizon", "imagined_capacity"):  # fmt: skip
            need_int(self, "dyna_dqn", key, 1)
        for key in ("learning_starts", "imagined_per_step"):
            need_int(self, "dyna_dqn", key, 0)
        need(self.lr > 0, "dyna_dqn.lr", self.lr, "must be > 0")
        need(self.max_grad_norm > 0, "dyna_dqn.max_grad_norm", self.max_grad_norm, "must be > 0")
        for key in ("exploration_fraction", "exploration_initial_eps", "exploration_final_eps"):
            value = getattr(self, key)
            need(0.0 <= value <= 1.0, f"dyna_dqn.{key}", value, "must be in [0, 1]")
        need(
            0.0 < self.real_ratio <= 1.0,
            "dyna_dqn.real_ratio",
            self.real_ratio,
            "must be in (0, 1]",
        )
        need_choice("dyna_dqn.imagined_actions", self.imagined_actions, ("uniform", "policy"))
        need_multiple_of_envs("dyna_dqn.train_freq", self.train_freq, c.n_envs)


@dataclass
class DreamerConfig:
    """A small Dreamer-style agent (``algo=dreamer``): a recurrent state-space world model (GRU
    state + categorical latents) learned from sequences of real experience, and an actor and a
    critic trained only on trajectories imagined in its latent space (λ-returns, percentile return
    normalisation, a slow critic). Discrete and Box actions. Registered by ``algos/dreamer/``."""

    key: ClassVar[str] = "dreamer"

    deter: int = 128
    """Width of the RSSM's deterministic (GRU) state."""
    latents: int = 8
    """Categorical latent variables of the stochastic state ..."""
    classes: int = 8
    """... each with this many classes (the stochastic state is latents × classes one-hots)."""
    hidden: int = 128
    """Width of every hidden layer (encoder, RSSM, decoder, heads, actor, critic)."""
    model_layers: int = 1
    """Hidden layers of the encoder, the decoder and the reward and continuation heads."""
    layers: int = 2
    """Hidden layers of the actor and the critic."""
    unimix: float = 0.01
    """Share of the uniform distribution mixed into every latent and discrete-action distribution
    (keeps log-probabilities and KL finite)."""
    free_bits: float = 1.0
    """KL terms below this many nats are not minimised (per sequence step, summed over latents)."""
    kl_dynamics: float = 0.5
    """Weight of KL(sg(posterior) ‖ prior): trains the prior toward the posterior."""
    kl_representation: float = 0.1
    """Weight of KL(posterior ‖ sg(prior)): keeps the posterior predictable."""
    batch_size: int = 16
    """Sequences per world-model update."""
    seq_len: int = 32
    """Steps per replayed sequence."""
    horizon: int = 15
    """Steps of every imagined trajectory."""
    imagine_starts: int = 256
    """Imagined trajectories per update, each from a posterior state of the replayed batch drawn
    without replacement (0: one from every posterior state, batch_size × seq_len of them)."""
    lambda_: float = 0.95
    """λ of the imagined λ-returns (the discount is the root ``gamma``)."""
    train_ratio: float = 0.25
    """Gradient steps (world model, actor and critic) per real step, once learning starts."""
    learning_starts: int = 1000
    """Uniformly random actions, and no updates, for this many real steps."""
    steps_per_iteration: int = 500
    """Real steps per iteration (evaluation, logging and checkpoints happen between them)."""
    buffer_size: int = 1_000_000
    """Real steps kept in the sequence replay (over all training envs)."""
    model_lr: float = 6e-4
    """Adam learning rate of the world model."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 1e-4
    """Adam learning rate of the critic."""
    model_grad_clip: float = 1000.0
    """Global gradient-norm clip of the world-model update."""
    ac_grad_clip: float = 100.0
    """Global gradient-norm clip of the actor's and the critic's updates."""
    entropy: float = 3e-4
    """Actor entropy bonus η (on normalised returns)."""
    explore: str = "sample"
    """How the training envs act once learning starts: ``sample`` the actor (DreamerV2/V3) or take
    its ``mode``; either way a uniformly random action replaces it with probability
    ``explore_epsilon``."""
    explore_epsilon: float = 0.0
    """Probability of a uniformly random action in a training env's step (DreamerV1's
    ε-greedy exploration, on top of ``explore``)."""
    actor_grad: str = "auto"
    """Actor gradient: ``reinforce`` (score function, with the critic as baseline), ``dynamics``
    (backpropagation through the world model), ``all_actions`` (Discrete actions only: every
    action of every imagined state is scored by one more imagined step, r + γ·c·v_slow of the
    state it reaches, and the actor's probabilities are moved toward the better ones; no action
    is sampled for the gradient) or ``auto`` (reinforce for Discrete, dynamics for Box actions,
    as DreamerV3 does)."""
    return_norm_decay: float = 0.99
    """EMA decay of the 5th–95th percentile range S that returns are divided by (by max(1, S))."""
    slow_critic_tau: float = 0.02
    """Slow critic ← τ·critic + (1 − τ)·slow critic after every update; it gives the λ-return's
    bootstrap values and regularises the critic."""
    slow_critic_reg: float = 1.0
    """Weight of the critic's loss toward the slow critic's values."""
    actor_ema: float = 0.0
    """τ of a Polyak average of the actor's weights (averaged ← τ·actor + (1 − τ)·averaged after
    every update) that acts in the training envs and is evaluated; the actor itself keeps learning
    in imagination. 0: the actor acts itself."""
    act_context: int = 0
    """Steps of real observations the acting (and, unless ``eval_context`` says otherwise, the
    evaluated) policy filters its latent state over: K > 0 re-filters each env's last K steps from
    a blank state at every step, so the actor sees states like those of the replayed
    ``seq_len``-step sequences it learned from; 0 filters the whole episode."""
    eval_context: int | None = None
    """The same for the evaluated policy only (the run's evaluations and ``mbrl_ai.evaluate``):
    the training envs and so the training itself are untouched by it. ``null``: ``act_context``."""
    replay_critic: float = 0.0
    """Weight of the critic's loss on the replayed posterior states, toward λ-returns of the real
    rewards and terminations (DreamerV3's replay value loss, 0.3 there; 0: off)."""
    bins: int = 255
    """Bins of the critic's two-hot distribution over symlog values in [-20, 20]."""

    @property
    def evaluated_context(self) -> int:
        """The evaluated policy's context: ``eval_context``, else ``act_context``."""
        return self.act_context if self.eval_context is None else self.eval_context

    def check(self, c: Config) -> None:
        for key in ("deter", "latents", "classes", "hidden", "batch_size", "horizon", "bins",
                    "steps_per_iteration"):  # fmt: skip
            need_int(self, "dreamer", key, 1)
        need_int(self, "dreamer", "seq_len", 2)
        for key in ("model_layers", "layers", "learning_starts", "imagine_starts", "act_context"):
            need_int(self, "dreamer", key, 0)
        if self.eval_context is not None:
            need_int(self, "dreamer", "eval_context", 0)
        need_int(self, "dreamer", "buffer_size", self.seq_len * c.n_envs)
        need(self.bins >= 2, "dreamer.bins", self.bins, "must be an integer >= 2")
        for key in ("model_lr", "actor_lr", "critic_lr", "model_grad_clip", "ac_grad_clip",
                    "train_ratio"):  # fmt: skip
            need(getattr(self, key) > 0, f"dreamer.{key}", getattr(self, key), "must be > 0")
        for key in ("free_bits", "kl_dynamics", "kl_representation", "entropy",
                    "slow_critic_reg", "replay_critic"):  # fmt: skip
            need(getattr(self, key) >= 0, f"dreamer.{key}", getattr(self, key), "must be >= 0")
        for key in ("lambda_", "return_norm_decay", "explore_epsilon", "actor_ema"):
            value = getattr(self, key)
            need(0.0 <= value <= 1.0, f"dreamer.{key}", value, "must be in [0, 1]")
        need(0.0 <= self.unimix < 1.0, "dreamer.unimix", self.unimix, "must be in [0, 1)")
        need(
            0.0 < self.slow_critic_tau <= 1.0,
            "dreamer.slow_critic_tau",
            self.slow_critic_tau,
            "must be in (0, 1]",
        )
        need_choice(
            "dreamer.actor_grad", self.actor_grad, ("auto", "reinforce", "dynamics", "all_actions")
        )
        need_choice("dreamer.explore", self.explore, ("sample", "mode"))
        need_multiple_of_envs("dreamer.steps_per_iteration", self.steps_per_iteration, c.n_envs)


@dataclass
class LoggerConfig:
    """Where metrics go: JSONL files always; console progress bar; optionally W&B."""

    name: str = "console"
    """``console`` (JSONL + progress bar) or ``wandb`` (the same plus a W&B run)."""
    progress: str = "auto"
    """Progress bar: ``auto`` (only on a terminal), ``on`` or ``off``."""
    project: str = "mbrl_ai"
    """W&B project."""
    entity: str | None = None
    """W&B entity (user or team); ``null`` uses the default."""
    mode: str = "offline"
    """W&B mode: online, offline or disabled."""
    tags: list[str] = field(default_factory=list)
    """W&B tags."""
    group: str | None = None
    """W&B group; ``null``: the command line's overrides without the seed (``planning_horizon:5``,
    the sweep folder's name with ':' for '=') under the CLI, else
    ``<algo>-<env>-<digest of the config without the seed>``."""

    def check(self, c: Config) -> None:
        need_choice("logger.name", self.name, LOGGERS)
        need_choice("logger.mode", self.mode, WANDB_MODES)
        need_choice("logger.progress", self.progress, PROGRESS)


OBJECTIVES = ("steps_to_threshold", "auc", "final_return")
AGGREGATES = ("median", "iqm", "mean")
PRUNERS = ("none", "median", "successive_halving")


@dataclass
class TuneConfig:
    """What a run or a tuning trial is scored by, and the seeds a trial trains.

    The score of one run (:func:`mbrl_ai.tune.objective.score`): ``steps_to_threshold``, the real
    steps at the first of ``consecutive`` evaluations in a row with mean return >= the threshold
    (``eval_threshold`` or the env's), lower is better; a run that never gets there scores
    ``total_timesteps x (1 + unsolved_penalty)``. ``auc``, the mean of every evaluation's mean
    return (the area under the curve per step on the evaluation grid), and ``final_return``, the
    mean of the last ``consecutive`` evaluations: higher is better.
    """

    objective: str = "steps_to_threshold"
    """``steps_to_threshold`` (minimise), ``auc`` or ``final_return`` (maximise)."""
    consecutive: int = 3
    """Evaluations in a row at or above the threshold that count as solved (and the evaluations
    ``final_return`` averages)."""
    unsolved_penalty: float = 1.0
    """``steps_to_threshold`` of a run that is not solved, or that stopped on a non-finite value:
    ``total_timesteps x (1 + unsolved_penalty)``."""
    seeds: list[int] = field(default_factory=list)
    """Train the configuration once per seed, one after the other, into ``<run dir>/seed=<s>``,
    and score it by ``aggregate`` over them (empty: one run with ``seed``)."""
    aggregate: str = "median"
    """Across ``seeds``: ``median``, ``iqm`` (interquartile mean) or ``mean``."""
    stop_when_solved: bool = True
    """With ``steps_to_threshold`` and ``seeds``: end each seed's run at the evaluation that solves
    it (its score cannot change after that)."""
    pruner: str = "median"
    """In an Optuna trial: ``none``, ``median`` (stop a trial whose score at an evaluation is worse
    than the median of earlier trials at the same point) or ``successive_halving``."""
    pruner_startup_trials: int = 4
    """Trials that finish before the pruner stops any."""
    pruner_warmup_evals: int = 3
    """Evaluations of a trial's first seed before the pruner may stop it."""
    trial: int | None = None
    """Set by the Optuna sweeper: the trial number this job runs."""
    storage: str | None = None
    """Set by the Optuna sweeper: the study's storage URL."""
    study: str | None = None
    """Set by the Optuna sweeper: the study's name."""

    def check(self, c: Config) -> None:
        need_choice("tune.objective", self.objective, OBJECTIVES)
        need_choice("tune.aggregate", self.aggregate, AGGREGATES)
        need_choice("tune.pruner", self.pruner, PRUNERS)
        need_int(self, "tune", "consecutive", 1)
        need_int(self, "tune", "pruner_startup_trials", 0)
        need_int(self, "tune", "pruner_warmup_evals", 0)
        need(self.unsolved_penalty >= 0.0, "tune.unsolved_penalty", self.unsolved_penalty,
             "must be >= 0")  # fmt: skip
        for s in self.seeds:
            need(
                isinstance(s, int) and 0 <= s < SEED_LIMIT,
                "tune.seeds",
                list(self.seeds),
                f"every seed must be an integer in [0, {SEED_LIMIT - 1}]",
            )
        need(len(set(self.seeds)) == len(self.seeds), "tune.seeds", list(self.seeds),
             "must not repeat a seed")  # fmt: skip
        need(
            (self.trial is None) == (self.storage is None) == (self.study is None),
            "tune.trial",
            self.trial,
            "tune.trial, tune.storage and tune.study are set together (by the Optuna sweeper)",
        )


@dataclass
class Config:
    # ---- the pseudocode's section-1 hyperparameters (names and defaults as written there) ----
    n_real_steps: int = 2048
    """Real environment steps per outer iteration (summed over ``n_envs``)."""
    planning_horizon: int = 5
    """Steps per imagined rollout."""
    min_planning_rollouts: int = 10
    """Imagined rollouts per iteration at confidence <= confidence_thresh."""
    max_planning_rollouts: int = 100
    """Imagined rollouts per iteration at confidence 1."""
    confidence_thresh: float = 0.05
    """Confidence at and below which imagination runs at its minimum."""
    gamma: float = 0.99
    """Discount factor γ."""
    gae_lambda: float = 0.95
    """GAE λ."""
    clip_range: float = 0.2
    """PPO clip range ε."""
    n_epochs: int = 10
    """Passes over each batch in the PPO update."""
    batch_size: int = 64
    """Minibatch size of the PPO update."""
    beta_init: float = 0.2
    """Initial curiosity weight β (0 disables curiosity)."""
    beta_adapt_rate: float = 0.01
    """Relative step of the β adaptation."""
    max_grad_norm: float = 0.5
    """Gradient norm clip for actor and critic."""
    lr_actor_critic: float = 3e-4
    """Adam learning rate of actor and critic."""
    lr_world_model: float = 1e-3
    """Adam learning rate of the world model."""
    lr_curiosity: float = 3e-4
    """Adam learning rate of the curiosity module."""

    # ---- the run ----
    env: str = "CartPole-v1"
    """Any registered Gymnasium id (``module:Env-v0`` imports ``module`` first)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``gym.make``: ``+env_kwargs.is_slippery=false``; the env refuses
    the ones it does not take (one line, before any work)."""
    seed: int = 0
    """Seed of torch, numpy, python and the environments."""
    total_timesteps: int = 100_000
    """Real environment steps to train for."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""
    n_envs: int = 1
    """Parallel training environments (a Gymnasium vector env, SAME_STEP autoreset)."""
    vectorization: str = "sync"
    """Vector env kind: ``sync`` (one process) or ``async`` (a process per env)."""
    eval_every: int = 10_000
    """Evaluate every this many real steps (and at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation (deterministic actions, separate envs)."""
    eval_n_envs: int = 5
    """Evaluation environments stepped in parallel."""
    eval_max_steps: int = 10_000
    """Evaluation episodes of an env without a time limit of its own are cut after this many
    steps (a deterministic policy may never end one, e.g. on CliffWalking)."""
    eval_threshold: float | None = None
    """Return that counts as solved; ``null`` takes the env spec's ``reward_threshold``."""
    torch_threads: int = 1
    """``torch.set_num_threads``; small MLPs run fastest with few threads."""
    deterministic: bool = False
    """``torch.use_deterministic_algorithms``: bit-reproducible on GPU too (CPU runs already are)."""
    debug: bool = False
    """Autograd anomaly detection: a NaN in the backward pass names the operation (slow)."""

    # ---- checkpoints and resumption ----
    checkpoint_every: int = 20_000
    """Write a checkpoint every this many real steps (always at the end and on SIGINT/SIGTERM);
    0 = only then."""
    keep_checkpoints: int = 2
    """Checkpoints kept in ``<run dir>/checkpoints`` (the newest)."""
    resume: str | None = None
    """Continue the run in this directory from its newest checkpoint, with its saved config. A run
    whose own directory holds a checkpoint resumes without being told."""

    algo: AlgoConfig = field(default_factory=AlgoConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    imagination: ImaginationConfig = field(default_factory=ImaginationConfig)
    curiosity: CuriosityConfig = field(default_factory=CuriosityConfig)
    beta: BetaConfig = field(default_factory=BetaConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    # Algorithm-owned nodes (``sac``, ``mbpo`` ...) are not fields here: each algorithm registers
    # its own with ``mbrl_ai.algos.register``, and ``mbrl_ai.algos.config_schema()`` is this class
    # with those nodes added. Read one, typed, with :meth:`node`.

    def node(self, kind: type[N]) -> N:
        """The algorithm-owned node of type ``kind`` (registered under ``kind.key``)."""
        value = getattr(self, kind.key, None)  # type: ignore[attr-defined]
        if not isinstance(value, kind):
            raise AttributeError(f"this config has no {kind.__name__} node")
        return value

    def check(self) -> None:
        """The root keys' ranges (the nodes check themselves)."""
        for key in (
            "n_real_steps",
            "planning_horizon",
            "n_epochs",
            "batch_size",
            "total_timesteps",
            "n_envs",
            "eval_every",
            "eval_episodes",
            "eval_n_envs",
            "eval_max_steps",
            "torch_threads",
        ):
            need_int(self, "", key, 1)
        need_int(self, "", "checkpoint_every", 0)
        need_int(self, "", "keep_checkpoints", 1)
        need_int(self, "", "seed", 0)
        need(self.seed < SEED_LIMIT, "seed", self.seed, f"must be in [0, {SEED_LIMIT - 1}]")
        need_int(self, "", "min_planning_rollouts", 0)
        need(
            self.max_planning_rollouts >= self.min_planning_rollouts,
            "max_planning_rollouts",
            self.max_planning_rollouts,
            f"must be >= min_planning_rollouts ({self.min_planning_rollouts})",
        )
        need(
            0.0 <= self.confidence_thresh < 1.0,
            "confidence_thresh",
            self.confidence_thresh,
            "must be in [0, 1)",
        )
        for key in ("gamma", "gae_lambda", "beta_init"):
            need(
                0.0 <= getattr(self, key) <= 1.0,
                key,
                getattr(self, key),
                "must be in [0, 1]",
            )
        need(
            0.0 <= self.beta_adapt_rate < 1.0,
            "beta_adapt_rate",
            self.beta_adapt_rate,
            "must be in [0, 1)",
        )
        for key in (
            "clip_range",
            "max_grad_norm",
            "lr_actor_critic",
            "lr_world_model",
            "lr_curiosity",
        ):
            need(getattr(self, key) > 0.0, key, getattr(self, key), "must be > 0")
        need(
            bool(_DEVICE_RE.match(self.device)),
            "device",
            self.device,
            "allowed: auto, cpu, mps, cuda, cuda:N",
        )
        need_choice("vectorization", self.vectorization, VECTORIZATION)
        if not reads_key(self.algo.name, "n_real_steps"):
            return  # an off-policy algorithm: neither rollout size nor PPO minibatch applies
        need(
            self.n_real_steps % self.n_envs == 0,
            "n_real_steps",
            self.n_real_steps,
            f"must be a multiple of n_envs ({self.n_envs})",
        )
        # MB-PPO's batch is the real one plus up to max_planning_rollouts imagined rollouts
        depth = max(self.planning_horizon, self.imagination.max_horizon)
        imagined = self.max_planning_rollouts * depth if self.algo.name == "mbppo" else 0
        need(
            self.batch_size <= self.n_real_steps + imagined,
            "batch_size",
            self.batch_size,
            f"must be <= n_real_steps ({self.n_real_steps})"
            + (f" + max_planning_rollouts x horizon ({imagined})" if imagined else ""),
        )


N = TypeVar("N")

# keys that decide how a run is managed, not what it computes (W&B groups ignore them), and the
# keys a resumed run may change; every other key must stay as the checkpoint saved it
RUN_MANAGEMENT_KEYS = ("checkpoint_every", "keep_checkpoints", "resume", "debug")
RESUME_MAY_CHANGE = ("total_timesteps", *RUN_MANAGEMENT_KEYS, "logger")
# keys that score a run but do not change what it computes: a run directory resumes whatever they say
SCORING_KEYS = ("tune",)
# root keys of every run, whatever the algorithm: the environment, the budget, evaluation,
# hardware, checkpoints and logging
RUN_KEYS = (
    "env",
    "env_kwargs",
    "seed",
    "total_timesteps",
    "device",
    "n_envs",
    "vectorization",
    "eval_every",
    "eval_episodes",
    "eval_n_envs",
    "eval_max_steps",
    "eval_threshold",
    "torch_threads",
    "deterministic",
    "checkpoint_every",
    "keep_checkpoints",
    "resume",
    "debug",
    "algo",
    "logger",
    "tune",
)
# algorithm name -> the other root keys and nodes it reads (``mbrl_ai.algos.register`` fills it);
# an algorithm missing here reads every key
ALGORITHM_KEYS: dict[str, frozenset[str]] = {}


def reads_key(algo: str, key: str) -> bool:
    """Whether ``algo=<algo>`` reads the root key or node ``key`` (the first part of a dotted
    key)."""
    root = key.split(".")[0]
    return root in RUN_KEYS or algo not in ALGORITHM_KEYS or root in ALGORITHM_KEYS[algo]


ROLLOUT_LENGTHS = ("fixed", "linear", "adaptive")
MINIBATCH_MODES = ("per_sample", "per_real")
MPC_PLANNERS = ("random", "cem", "icem", "mppi", "exhaustive")
MPC_PROPAGATIONS = ("ts_inf", "ts1", "expectation")
DYNA_METHODS = ("dyna_q", "dyna_q_plus", "prioritized_sweeping")
IMAGINATION_MODES = ("breadth", "depth", "both", "fixed", "steve", "steve_breadth")
CONFIDENCES = ("heldout", "open_loop", "open_loop_skill")
# seeds stay below 2**31 so that every derived seed (per env, evaluation offset) fits numpy's and
# Gymnasium's 32-bit range
SEED_LIMIT = 2**31
IMAGINED_WEIGHTS = ("one", "confidence")
TERMINATIONS = ("learned", "known")
DONE_INPUTS = ("state_action", "next_state")
CURIOSITY = ("none", "rnd", "icm", "disagreement")
ACTIVATIONS = ("tanh", "relu", "elu", "silu")
LOGGERS = ("console", "wandb")
WANDB_MODES = ("online", "offline", "disabled")
PROGRESS = ("auto", "on", "off")
VECTORIZATION = ("sync", "async")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

# ---------------------------------------------------------------------------------------------
# the checks every node's ``check`` is written with
# ---------------------------------------------------------------------------------------------


def need(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise :class:`ConfigError` for ``key=value`` unless ``ok``."""
    if not ok:
        raise ConfigError(key, value, allowed)


def need_int(node: Any, prefix: str, key: str, low: int) -> None:
    """``node.<key>`` is an integer >= ``low``."""
    value = getattr(node, key)
    full = f"{prefix}.{key}" if prefix else key
    need(value >= low, full, value, f"must be an integer >= {low}")


def need_multiple_of_envs(key: str, value: int, n_envs: int) -> None:
    """``key`` counts real steps that every training env takes equally often."""
    need(value % n_envs == 0, key, value, f"must be a multiple of n_envs ({n_envs})")


def need_choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    need(value in allowed, key, value, f"allowed: {', '.join(allowed)}")


def need_mlp(node: str, widths: dict[str, list[int]], activation: str) -> None:
    """Layer widths >= 1 and a known activation, for a node that builds MLPs."""
    for key, sizes in widths.items():
        need(
            all(s >= 1 for s in sizes),
            f"{node}.{key}",
            sizes,
            "layer widths must be >= 1",
        )
    need_choice(f"{node}.activation", activation, ACTIVATIONS)


# ---------------------------------------------------------------------------------------------
# from a composed DictConfig to a checked Config
# ---------------------------------------------------------------------------------------------


def unknown_key(full_key: str, value: Any, known: list[str]) -> ConfigError:
    """The error for a key the schema lacks, with the closest known key as a hint."""
    parent, _, leaf = full_key.rpartition(".")
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f"did you mean '{parent + '.' if parent else ''}{close[0]}'? " if close else ""
    where = f" under {parent}" if parent else ""
    return ConfigError(full_key, value, f"unknown key; {hint}known keys{where}: {', '.join(known)}")


def nested_nodes(schema: type) -> dict[str, type]:
    """Field name → dataclass of every nested node of ``schema``."""
    hints = typing.get_type_hints(schema)
    return {f.name: hints[f.name] for f in dataclasses.fields(schema) if _is_node(hints[f.name])}


def _is_node(t: Any) -> bool:
    return isinstance(t, type) and dataclasses.is_dataclass(t)


def schema_node(path: str, schema: type = Config) -> type | None:
    """The dataclass at a dotted path of ``schema`` (``""`` is the schema itself), or None."""
    node: type = schema
    for part in filter(None, path.split(".")):
        sub = nested_nodes(node).get(part)
        if sub is None:
            return None
        node = sub
    return node


def schema_type(path: str, schema: type = Config) -> str | None:
    """The annotation (as written, e.g. ``"float | None"``) of a dotted key, or None if unknown."""
    parent, _, leaf = path.rpartition(".")
    node = schema_node(parent, schema)
    if node is None:
        return None
    return {f.name: str(f.type) for f in dataclasses.fields(node)}.get(leaf)


def check_keys(node: DictConfig, schema: type, prefix: str = "") -> None:
    """Refuse keys the schema does not know (``+typo=1`` is accepted silently by Hydra)."""
    fields = [f.name for f in dataclasses.fields(schema)]
    nodes = nested_nodes(schema)
    for key in node:
        full = f"{prefix}{key!s}"
        if key == "hydra" and not prefix:
            continue
        if key not in fields:
            raise unknown_key(full, OmegaConf.select(node, str(key)), fields)
        sub = nodes.get(str(key))
        if sub is not None:
            value = node[key]
            if not isinstance(value, DictConfig):
                raise ConfigError(full, value, f"must be a mapping of {sub.__name__} fields")
            check_keys(value, sub, prefix=f"{full}.")


def to_config(cfg: DictConfig, schema: type[Config] = Config) -> Config:
    """Convert a composed DictConfig into a checked ``schema`` instance (raises
    :class:`ConfigError`). ``mbrl_ai.algos.to_config`` passes the schema with every registered
    algorithm's node and checks the algorithm too."""
    check_keys(cfg, schema)
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    plain.pop("hydra", None)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), plain)
    except Exception as exc:  # omegaconf's ValidationError carries full_key / value
        key = getattr(exc, "full_key", None) or "?"
        msg = str(exc).splitlines()[0]
        raise ConfigError(key, OmegaConf.select(OmegaConf.create(plain), key), msg) from None
    config = OmegaConf.to_object(merged)
    assert isinstance(config, Config)
    validate(config)
    return config


def validate(c: Config) -> None:
    """Every number finite, then the root's checks, then each node's own ``check``."""
    _check_finite(c, "")
    c.check()
    for name in nested_nodes(type(c)):
        node = getattr(c, name)
        if hasattr(node, "check") and reads_key(c.algo.name, name):
            node.check(c)


def _check_finite(node: Any, prefix: str) -> None:
    """No config value is inf or NaN: none of them has a meaning there."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_finite(value, f"{key}.")
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(key, value, "must be a finite number")


def config_dict(c: Config) -> dict[str, Any]:
    """The resolved config as plain Python (for JSON, W&B and checkpoints)."""
    return dataclasses.asdict(c)


def used_config_dict(c: Config) -> dict[str, Any]:
    """:func:`config_dict` without the keys the run's algorithm does not read: what the run's
    ``config.yaml`` and W&B config show (the checkpoint keeps every key)."""
    return {k: v for k, v in config_dict(c).items() if reads_key(c.algo.name, k)}
