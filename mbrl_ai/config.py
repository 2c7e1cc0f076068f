"""The root config, the nodes of MB-PPO's sections, and the conversion and validation of a
composed config.

The root keys carry the pseudocode's section-1 names and defaults (``n_real_steps``,
``planning_horizon``, ``beta_init`` ...), so ``planning_horizon=5`` on the command line means what
a reader of the pseudocode expects. Everything else lives in nested nodes filled by Hydra groups
(``algo/``, ``logger/``, ``experiment/``). Below ``train.py`` only these dataclasses travel, never a
``DictConfig``.

Every range is declared on its field (``Annotated[int, Ge(1)]``, :mod:`mbrl_ai.core.ranges`); a
node's ``check`` holds only the rules that tie fields together. :func:`validate` raises one
:class:`ConfigError` line naming the key, the value and what is allowed. The nodes that belong to
one algorithm live beside it (``algos/<name>``) and join the schema through the registry
(``mbrl_ai.algos.config_schema``); this file names none of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from omegaconf import DictConfig

from mbrl_ai.core.errors import ConfigError as ConfigError  # the error of bad input, re-exported
from mbrl_ai.core.ranges import Each, Ge, Gt, In, Matches, OneOf, need
from mbrl_ai.core.schema import check_tree, to_dataclass
from mbrl_ai.envs.change import EnvChangeConfig
from mbrl_ai.envs.termination import KNOWN_TERMINATION
from mbrl_ai.modules.curiosity import CURIOSITY
from mbrl_ai.modules.mlp import ACTIVATIONS
from mbrl_ai.modules.trust import TrustConfig


@dataclass
class AlgoConfig:
    name: str = "mbppo"
    """Which training loop runs: a name in the registry (``mbrl_ai.algos``): ``mbppo``
    (model-based PPO, sections 2.1–2.8), ``ppo``, ``sac``, ``mbpo``, ``mpc``, ``dyna_q``,
    ``dyna_dqn``, ``dreamer`` or a plugin's."""


@dataclass
class PPOConfig:
    """Knobs of the clipped PPO update (section 2.5) beyond the pseudocode's root keys."""

    ent_coef: Annotated[float, Ge(0.0)] = 0.0
    """Entropy bonus weight (the pseudocode's 0.0)."""
    vf_coef: Annotated[float, Ge(0.0)] = 0.5
    """Value loss weight (the pseudocode's 0.5)."""
    clip_range_vf: Annotated[float | None, Gt(0.0)] = None
    """Clip the value prediction to old_value ± this; ``null`` disables value clipping."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    minibatches: Annotated[str, OneOf(("per_sample", "per_real"))] = "per_real"
    """How a batch with imagined samples is cut: ``per_real``, as many minibatches as the real
    samples alone fill (⌈real / batch_size⌉), each enlarged by its share of the imagined ones, so
    imagination costs no extra PPO steps; ``per_sample``, minibatches of ``batch_size`` samples
    (imagined samples add steps; the MB-PPO presets were measured with it). The same for a batch
    of real samples only."""
    anneal_lr: bool = False
    """Anneal the learning rate linearly to 0 over ``total_timesteps``."""
    target_kl: Annotated[float | None, Gt(0.0)] = None
    """Stop the epoch loop early once the approximate KL of a minibatch exceeds
    ``kl_stop_factor`` times this; ``null`` never stops."""
    kl_stop_factor: Annotated[float, Gt(0.0)] = 1.5
    """The multiple of ``target_kl`` at which the KL early stop fires (Stable-Baselines3's 1.5)."""
    adam_eps: Annotated[float, Gt(0.0)] = 1e-5
    """Adam epsilon."""
    normalize_obs: bool = False
    """Normalise observations with running statistics (frozen at evaluation)."""
    normalize_reward: bool = False
    """Scale rewards by a running std of the discounted return (as VecNormalize does)."""
    clip_obs: Annotated[float, Gt(0.0)] = 10.0
    """Clip normalised observations to ±this."""
    clip_reward: Annotated[float, Gt(0.0)] = 10.0
    """Clip scaled rewards (``normalize_reward``) to ±this."""


@dataclass
class NetworkConfig:
    """Actor and critic MLPs (separate networks, no shared encoder)."""

    actor_hidden: Annotated[list[int], Each(Ge(1))] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of the actor."""
    critic_hidden: Annotated[list[int], Each(Ge(1))] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of the critic."""
    activation: Annotated[str, OneOf(ACTIVATIONS)] = "tanh"
    """Hidden activation: tanh, relu, elu or silu."""
    ortho_init: bool = True
    """Orthogonal initialisation (gain sqrt(2) hidden, 0.01 policy head, 1 value head)."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (Box actions)."""


@dataclass
class WorldModelConfig:
    """The ensemble world model ŵφ (section 2.2); its learning rate is the root ``lr_world_model``."""

    ensemble_size: Annotated[int, Ge(1)] = 5
    """Members E of the ensemble (one batched module)."""
    hidden: Annotated[list[int], Each(Ge(1))] = field(default_factory=lambda: [128, 128])
    """Hidden layer widths of every member."""
    activation: Annotated[str, OneOf(ACTIVATIONS)] = "silu"
    """Hidden activation: tanh, relu, elu or silu."""
    train_steps: Annotated[int, Ge(1)] = 200
    """Gradient steps on the real-transition replay per iteration, at most (see ``stop_*``)."""
    batch_size: Annotated[int, Ge(1)] = 256
    """Minibatch per member per gradient step (each member draws its own)."""
    holdout_fraction: Annotated[float, In(0.0, 1.0, "()")] = 0.1
    """Share of real transitions kept out of training to score the model (confidence)."""
    replay_capacity: Annotated[int, Ge(1)] = 100_000
    """Real transitions kept for fitting (oldest dropped first)."""
    weight_decay: Annotated[float, Ge(0.0)] = 1e-5
    """AdamW weight decay."""
    fused_optimizer: bool = False
    """AdamW as one fused kernel over all parameters (about a tenth cheaper per step on a CPU;
    equal to the per-tensor update up to float rounding, so not bit for bit the runs measured
    with it off)."""
    min_logvar: float = -10.0
    """Initial lower soft bound of the predicted log-variance."""
    max_logvar: float = 0.5
    """Initial upper soft bound of the predicted log-variance."""
    logvar_bound_coef: Annotated[float, Ge(0.0)] = 0.01
    """Weight of the penalty that keeps the log-variance bounds tight."""
    done_pos_weight: Annotated[float | None, Gt(0.0)] = None
    """BCE weight of terminal transitions; ``null`` = (non-terminal / terminal) count in the data."""
    termination: Annotated[str, OneOf(("learned", "known"))] = "learned"
    """What ends a model rollout (MB-PPO's imagination, MBPO's branches): the ``learned`` done
    head, or the env's ``known`` rule (``mbrl_ai.envs.termination``), the ablation."""
    done_input: Annotated[str, OneOf(("state_action", "next_state"))] = "state_action"
    """What the learned done probability reads: ``state_action`` (a head of each member, beside
    Δs and r) or ``next_state`` (a separate classifier per member of the next state alone, trained
    on real next states and applied to predicted ones; for tasks whose episodes end on a condition
    of the state, like CartPole's)."""
    done_hidden: Annotated[list[int], Each(Ge(1))] = field(default_factory=lambda: [64, 64])
    """Hidden widths of the next-state done classifier (``done_input=next_state``)."""
    done_threshold: Annotated[float, In(0.0, 1.0, "()")] = 0.5
    """With the learned head: a predicted done probability above this ends the rollout."""
    confidence: Annotated[str, OneOf(("heldout", "open_loop", "open_loop_skill"))] = "heldout"
    """What the confidence of section 2.2 measures: ``heldout`` = exp(−held-out one-step loss)
    (the pseudocode); ``open_loop`` = exp(−e_H / confidence_tolerance), with e_H the model's
    H-step open-loop error on the newest real trajectories before it is fitted on them;
    ``open_loop_skill`` = clip(1 − e_H / e_still, 0, 1), e_still the same error of predicting that
    the state does not change (no tolerance to set)."""
    confidence_tolerance: Annotated[float, Gt(0.0)] = 1e-3
    """With ``confidence=open_loop``: the H-step error (per state dimension, in state variances)
    at which confidence is e^-1."""
    forget_factor: Annotated[float | None, Gt(1.0)] = None
    """When the H-step open-loop error on the newest real data exceeds this multiple of its median
    over the previous ``forget_window`` iterations, the dynamics are taken to have changed and the
    real replay forgets all but the newest batch; ``null`` never forgets."""
    forget_window: Annotated[int, Ge(3)] = 5
    """Iterations of open-loop error the change test compares with (at least 3 are needed)."""
    stop_check_every: Annotated[int, Ge(0)] = 20
    """Early stop of each fit: every this many of the ``train_steps`` steps, score the model on
    held-out transitions (``stop_check_size``); 0 always takes all ``train_steps``."""
    stop_check_size: Annotated[int, Ge(1)] = 512
    """The early-stop check scores at most this many held-out transitions, spread evenly over the
    held-out split."""
    stop_patience: Annotated[int, Ge(1)] = 1
    """... and stop once that many checks in a row improved the held-out MSE by less than
    ``stop_min_improvement`` (relative) on the best so far."""
    stop_min_improvement: Annotated[float, In(0.0, 1.0, "[)")] = 0.01
    """The relative drop of the held-out MSE that counts as an improvement."""

    def check(self, c: Config) -> None:
        need(self.min_logvar < self.max_logvar, "world_model.min_logvar", self.min_logvar,
             f"must be < world_model.max_logvar ({self.max_logvar})")  # fmt: skip
        known = ", ".join(sorted(KNOWN_TERMINATION))
        need(self.termination == "learned" or c.env in KNOWN_TERMINATION, "world_model.termination",
             self.termination, f"no known termination function for env {c.env!r}; known for: {known}")  # fmt: skip


@dataclass
class ImaginationConfig:
    """How much and how deep to imagine (section 2.3)."""

    mode: Annotated[str, OneOf(("breadth", "depth", "both", "fixed", "steve", "steve_breadth"))] = (
        "breadth"
    )
    """``breadth``: rollout count follows confidence, depth = planning_horizon (the pseudocode);
    ``depth``: depth follows ensemble variance, count = max_planning_rollouts; ``both``; ``fixed``:
    count = max_planning_rollouts and depth = planning_horizon (the ablation); ``steve``: each
    rollout's depth, up to max_horizon, is the one whose target has the least variance (STEVE's
    criterion, ``imagine.py``; count = max_planning_rollouts); ``steve_breadth``: steve depth and
    the breadth count."""
    min_horizon: Annotated[int, Ge(1)] = 1
    """H_min of the adaptive depth."""
    max_horizon: Annotated[int, Ge(1)] = 10
    """H_max of the adaptive depth."""
    base_horizon: Annotated[int | None, Ge(1.0)] = None
    """H_base of the adaptive depth; ``null`` = max_horizon."""
    sensitivity: Annotated[float, Ge(0.0)] = 10.0
    """k in H = clip(H_min, H_max, H_base·exp(−k·Var)); Var in normalised units."""
    disagreement_stop: Annotated[float | None, Gt(0.0)] = None
    """End a rollout before the first transition whose ensemble disagreement exceeds this (it is
    dropped; the rollout is cut and bootstrapped at the step before); ``null`` never stops early."""
    sample: bool = True
    """Sample next states from the member's Gaussian (else use its mean)."""
    start_window: Annotated[int, Ge(1)] = 10_000
    """Start states are drawn from this many most recent real states."""
    recent_share: Annotated[float, In(0.0, 1.0, "[]")] = 0.0
    """Share of the start states drawn from the newest real batch only (the rest: start_window)."""
    rounds: Annotated[int, Ge(1)] = 1
    """Imagine-and-update rounds per real batch (Dyna-style); the pseudocode does 1."""
    imagined_weight: Annotated[str, OneOf(("one", "confidence"))] = "confidence"
    """Per-sample PPO loss weight of imagined data: ``one`` or ``confidence``."""

    def check(self, c: Config) -> None:
        need(self.max_horizon >= self.min_horizon, "imagination.max_horizon", self.max_horizon,
             f"must be >= imagination.min_horizon ({self.min_horizon})")  # fmt: skip


@dataclass
class CuriosityConfig:
    """The curiosity module Cψ (sections 2.1, 2.3, 2.6); its learning rate is ``lr_curiosity``."""

    name: Annotated[str, OneOf(CURIOSITY)] = "rnd"
    """``rnd``, ``icm``, ``disagreement`` (the world model's ensemble; MB-PPO only) or ``none``."""
    hidden: Annotated[list[int], Each(Ge(1))] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of the module's networks."""
    feature_dim: Annotated[int, Ge(1)] = 64
    """Output width of RND's target and predictor, and of ICM's features."""
    activation: Annotated[str, OneOf(ACTIVATIONS)] = "relu"
    """Hidden activation: tanh, relu, elu or silu."""
    predictor_extra_layers: Annotated[int, Ge(0)] = 1
    """RND: hidden layers the predictor has beyond the target."""
    forward_weight: Annotated[float, In(0.0, 1.0, "[]")] = 0.2
    """ICM: weight of the forward loss against the inverse loss."""
    obs_clip: Annotated[float, Gt(0.0)] = 5.0
    """Clip of the normalised states the module reads."""
    warmup_steps: Annotated[int, Ge(0)] = 1000
    """Intrinsic reward is zero until the state normalisation has seen this many real states."""
    int_gamma: Annotated[float, In(0.0, 1.0, "[)")] = 0.99
    """Discount of the intrinsic returns whose running std scales the intrinsic reward."""
    epochs: Annotated[int, Ge(1)] = 1
    """Passes over each iteration's transitions in the curiosity update (2.6)."""
    batch_size: Annotated[int, Ge(1)] = 256
    """Minibatch size of the curiosity update."""
    train_on_imagined: bool = False
    """Also train the module on imagined transitions (the pseudocode's B.real_and_imagined())."""
    intrinsic_head: bool = False
    """A separate intrinsic value head with its own non-episodic GAE (discount ``int_gamma``), as
    RND does: PPO's advantage is A_ext + β·A_int. Off: one head on the reward r_ext + β·r_int."""


@dataclass
class BetaConfig:
    """Curiosity weight adaptation (section 2.7)."""

    window: Annotated[int, Ge(2)] = 10
    """Recent real episode returns in the moving average, and points in the slope fit."""
    low_threshold: float = 0.0
    """β grows when the return trend (per episode) is at or below this."""
    high_threshold: float = 1.0
    """β shrinks when the return trend (per episode) is above this."""

    def check(self, c: Config) -> None:
        need(self.high_threshold >= self.low_threshold, "beta.high_threshold", self.high_threshold,
             f"must be >= beta.low_threshold ({self.low_threshold})")  # fmt: skip


@dataclass
class LoggerConfig:
    """Where metrics go: JSONL files always; console progress bar; optionally W&B."""

    name: Annotated[str, OneOf(("console", "wandb"))] = "console"
    """``console`` (JSONL + progress bar) or ``wandb`` (the same plus a W&B run)."""
    progress: Annotated[str, OneOf(("auto", "on", "off"))] = "auto"
    """Progress bar: ``auto`` (only on a terminal), ``on`` or ``off``."""
    project: str = "mbrl_ai"
    """W&B project."""
    entity: str | None = None
    """W&B entity (user or team); ``null`` uses the default."""
    mode: Annotated[str, OneOf(("online", "offline", "disabled"))] = "offline"
    """W&B mode: online, offline or disabled."""
    tags: list[str] = field(default_factory=list)
    """W&B tags."""
    group: str | None = None
    """W&B group; ``null``: the command line's overrides without the seed (``planning_horizon:5``,
    the sweep folder's name with ':' for '=') under the CLI, else
    ``<algo>-<env>-<digest of the config without the seed>``."""


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

    objective: Annotated[str, OneOf(("steps_to_threshold", "auc", "final_return"))] = "steps_to_threshold"  # fmt: skip
    """``steps_to_threshold`` (minimise), ``auc`` or ``final_return`` (maximise)."""
    consecutive: Annotated[int, Ge(1)] = 3
    """Evaluations in a row at or above the threshold that count as solved (and the evaluations
    ``final_return`` averages)."""
    unsolved_penalty: Annotated[float, Ge(0.0)] = 1.0
    """``steps_to_threshold`` of a run that is not solved, or that stopped on a non-finite value:
    ``total_timesteps x (1 + unsolved_penalty)``."""
    seeds: list[int] = field(default_factory=list)
    """Train the configuration once per seed, one after the other, into ``<run dir>/seed=<s>``,
    and score it by ``aggregate`` over them (empty: one run with ``seed``)."""
    aggregate: Annotated[str, OneOf(("median", "iqm", "mean"))] = "median"
    """Across ``seeds``: ``median``, ``iqm`` (interquartile mean) or ``mean``."""
    stop_when_solved: bool = True
    """With ``steps_to_threshold`` and ``seeds``: end each seed's run at the evaluation that solves
    it (its score cannot change after that)."""
    pruner: Annotated[str, OneOf(("none", "median", "successive_halving"))] = "median"
    """In an Optuna trial: ``none``, ``median`` (stop a trial whose score at an evaluation is worse
    than the median of earlier trials at the same point) or ``successive_halving``."""
    pruner_startup_trials: Annotated[int, Ge(0)] = 4
    """Trials that finish before the pruner stops any."""
    pruner_warmup_evals: Annotated[int, Ge(0)] = 3
    """Evaluations of a trial's first seed before the pruner may stop it."""
    trial: int | None = None
    """Set by the Optuna sweeper: the trial number this job runs."""
    storage: str | None = None
    """Set by the Optuna sweeper: the study's storage URL."""
    study: str | None = None
    """Set by the Optuna sweeper: the study's name."""

    def check(self, c: Config) -> None:
        for s in self.seeds:
            need(isinstance(s, int) and 0 <= s < SEED_LIMIT, "tune.seeds", list(self.seeds),
                 f"every seed must be an integer in [0, {SEED_LIMIT - 1}]")  # fmt: skip
        need(len(set(self.seeds)) == len(self.seeds), "tune.seeds", list(self.seeds),
             "must not repeat a seed")  # fmt: skip
        together = (self.trial is None) == (self.storage is None) == (self.study is None)
        need(together, "tune.trial", self.trial,
             "tune.trial, tune.storage and tune.study are set together (by the Optuna sweeper)")  # fmt: skip


@dataclass
class Config:
    # ---- the pseudocode's section-1 hyperparameters (names and defaults as written there) ----
    n_real_steps: Annotated[int, Ge(1)] = 2048
    """Real environment steps per outer iteration (summed over ``n_envs``)."""
    planning_horizon: Annotated[int, Ge(1)] = 5
    """Steps per imagined rollout."""
    min_planning_rollouts: Annotated[int, Ge(0)] = 10
    """Imagined rollouts per iteration at confidence <= confidence_thresh."""
    max_planning_rollouts: int = 100
    """Imagined rollouts per iteration at confidence 1."""
    confidence_thresh: Annotated[float, In(0.0, 1.0, "[)")] = 0.05
    """Confidence at and below which imagination runs at its minimum."""
    gamma: Annotated[float, In(0.0, 1.0, "[]")] = 0.99
    """Discount factor γ."""
    gae_lambda: Annotated[float, In(0.0, 1.0, "[]")] = 0.95
    """GAE λ."""
    clip_range: Annotated[float, Gt(0.0)] = 0.2
    """PPO clip range ε."""
    n_epochs: Annotated[int, Ge(1)] = 10
    """Passes over each batch in the PPO update."""
    batch_size: Annotated[int, Ge(1)] = 64
    """Minibatch size of the PPO update."""
    beta_init: Annotated[float, In(0.0, 1.0, "[]")] = 0.2
    """Initial curiosity weight β (0 disables curiosity)."""
    beta_adapt_rate: Annotated[float, In(0.0, 1.0, "[)")] = 0.01
    """Relative step of the β adaptation."""
    max_grad_norm: Annotated[float, Gt(0.0)] = 0.5
    """Gradient norm clip for actor and critic."""
    lr_actor_critic: Annotated[float, Gt(0.0)] = 3e-4
    """Adam learning rate of actor and critic."""
    lr_world_model: Annotated[float, Gt(0.0)] = 1e-3
    """Adam learning rate of the world model."""
    lr_curiosity: Annotated[float, Gt(0.0)] = 3e-4
    """Adam learning rate of the curiosity module."""

    # ---- the run ----
    env: str = "CartPole-v1"
    """Any registered Gymnasium id (``module:Env-v0`` imports ``module`` first)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``gym.make``: ``+env_kwargs.is_slippery=false``; the env refuses
    the ones it does not take (one line, before any work)."""
    env_change: EnvChangeConfig = field(default_factory=EnvChangeConfig)
    """A change of the world at a real step: ``env_change.at=[lo,hi] +env_change.set.length=1``."""
    seed: Annotated[int, In(0, SEED_LIMIT - 1)] = 0
    """Seed of torch, numpy, python and the environments."""
    total_timesteps: Annotated[int, Ge(1)] = 100_000
    """Real environment steps to train for."""
    device: Annotated[str, Matches(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, mps, cuda, cuda:N")] = "auto"  # fmt: skip
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""
    n_envs: Annotated[int, Ge(1)] = 1
    """Parallel training environments (a Gymnasium vector env, SAME_STEP autoreset)."""
    vectorization: Annotated[str, OneOf(("sync", "async"))] = "sync"
    """Vector env kind: ``sync`` (one process) or ``async`` (a process per env)."""
    eval_every: Annotated[int, Ge(1)] = 10_000
    """Evaluate every this many real steps (and at the end)."""
    eval_episodes: Annotated[int, Ge(1)] = 10
    """Episodes per evaluation (deterministic actions, separate envs)."""
    eval_n_envs: Annotated[int, Ge(1)] = 5
    """Evaluation environments stepped in parallel."""
    eval_max_steps: Annotated[int, Ge(1)] = 10_000
    """Evaluation episodes of an env without a time limit of its own are cut after this many
    steps (a deterministic policy may never end one, e.g. on CliffWalking)."""
    eval_threshold: float | None = None
    """Return that counts as solved; ``null`` takes the env spec's ``reward_threshold``."""
    torch_threads: Annotated[int, Ge(1)] = 1
    """``torch.set_num_threads``; small MLPs run fastest with few threads."""
    deterministic: bool = False
    """``torch.use_deterministic_algorithms``: bit-reproducible on GPU too (CPU runs already are)."""
    debug: bool = False
    """Autograd anomaly detection: a NaN in the backward pass names the operation (slow)."""

    # ---- checkpoints and resumption ----
    checkpoint_every: Annotated[int, Ge(0)] = 20_000
    """Write a checkpoint every this many real steps (always at the end and on SIGINT/SIGTERM);
    0 = only then."""
    keep_checkpoints: Annotated[int, Ge(1)] = 2
    """Checkpoints kept in ``<run dir>/checkpoints`` (the newest)."""
    resume: str | None = None
    """Continue the run in this directory from its newest checkpoint, with its saved config. A run
    whose own directory holds a checkpoint resumes without being told."""

    algo: AlgoConfig = field(default_factory=AlgoConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    imagination: ImaginationConfig = field(default_factory=ImaginationConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
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
        """The rules between root keys (their ranges are declared on them); the on-policy batch
        rules belong to the algorithms that read ``n_real_steps`` (``algos/ppo.py``)."""
        low, high = self.min_planning_rollouts, self.max_planning_rollouts
        need(
            high >= low, "max_planning_rollouts", high, f"must be >= min_planning_rollouts ({low})"
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
RUN_KEYS = ("env", "env_kwargs", "env_change", "seed", "total_timesteps", "device", "n_envs", "vectorization",
            "eval_every", "eval_episodes", "eval_n_envs", "eval_max_steps", "eval_threshold",
            "torch_threads", "deterministic", "checkpoint_every", "keep_checkpoints", "resume",
            "debug", "algo", "logger", "tune")  # fmt: skip
# algorithm name -> the other root keys and nodes it reads (``mbrl_ai.algos.register`` fills it);
# an algorithm missing here reads every key
ALGORITHM_KEYS: dict[str, frozenset[str]] = {}


def reads_key(algo: str, key: str) -> bool:
    """Whether ``algo=<algo>`` reads the root key or node ``key`` (the first part of a dotted
    key)."""
    root = key.split(".")[0]
    return root in RUN_KEYS or algo not in ALGORITHM_KEYS or root in ALGORITHM_KEYS[algo]


# seeds stay below 2**31 so that every derived seed (per env, evaluation offset) fits numpy's and
# Gymnasium's 32-bit range
SEED_LIMIT = 2**31


def to_config(cfg: DictConfig, schema: type[Config] = Config) -> Config:
    """Convert a composed DictConfig into a checked ``schema`` instance (raises
    :class:`ConfigError`): numbers finite, the root's declared ranges and rules, then each node
    the run's algorithm reads. ``mbrl_ai.algos.to_config`` passes the schema with every
    registered algorithm's node and checks the algorithm too."""
    config = to_dataclass(cfg, schema)
    check_tree(config, lambda node: reads_key(config.algo.name, node))
    return config


def config_dict(c: Config) -> dict[str, Any]:
    """The resolved config as plain Python (for JSON, W&B and checkpoints)."""
    return dataclasses.asdict(c)


def used_config_dict(c: Config) -> dict[str, Any]:
    """:func:`config_dict` without the keys the run's algorithm does not read: what the run's
    ``config.yaml`` and W&B config show (the checkpoint keeps every key)."""
    return {k: v for k, v in config_dict(c).items() if reads_key(c.algo.name, k)}
