"""The ``MBPOConfig`` node of its algorithm: its keys, their declared ranges and its cross-key rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from mbrl_ai.config import Config, need
from mbrl_ai.core.ranges import Ge, Gt, In, OneOf

# the values of the field below that the algorithm dispatches on
ROLLOUT_LENGTHS = ("fixed", "linear", "adaptive")


@dataclass
class MBPOConfig:
    """Model-based policy optimisation (``algo=mbpo``): SAC trained mostly on short model rollouts
    branched from real states. The model is ``world_model.*`` (trained to early stopping, elites by
    held-out MSE); SAC is ``sac.*``, with ``sac.updates_per_step`` as MBPO's G. Registered by
    ``algos/mbpo.py``."""

    key: ClassVar[str] = "mbpo"

    rollout_length: Annotated[str, OneOf(ROLLOUT_LENGTHS)] = "adaptive"
    """How long the branched rollouts are: ``fixed`` (``horizon``), ``linear`` (MBPO's schedule,
    ``linear_schedule``), ``adaptive`` (seed 003: H = clip(min_horizon, max_horizon,
    base_horizon·exp(−sensitivity·Var)), Var the elites' held-out disagreement)."""
    horizon: Annotated[int, Ge(1)] = 1
    """H of ``rollout_length=fixed``."""
    linear_schedule: list[int] = field(default_factory=lambda: [1, 20, 1, 10])
    """[first iteration, last iteration, H there, H here] of ``rollout_length=linear``: H moves
    linearly between the two, and stays at the ends outside them."""
    min_horizon: Annotated[int, Ge(1)] = 1
    """H_min of ``rollout_length=adaptive``."""
    max_horizon: Annotated[int, Ge(1)] = 10
    """H_max of ``rollout_length=adaptive``."""
    base_horizon: int | None = None
    """H_base of ``rollout_length=adaptive``; ``null`` = max_horizon."""
    sensitivity: Annotated[float, Ge(0.0)] = 10.0
    """k of ``rollout_length=adaptive``; Var is in normalised units."""
    disagreement_stop: Annotated[float | None, Gt(0.0)] = None
    """Also end each rollout on its own once its members' disagreement passes this."""
    rollout_batch_size: Annotated[int, Ge(1)] = 1000
    """Rollouts branched (from uniformly drawn real states) after every model update."""
    retain_iterations: Annotated[int, Ge(1)] = 4
    """The model buffer holds this many model updates' rollouts (rebuilt when H changes)."""
    real_ratio: Annotated[float, In(0.0, 1.0, "[]")] = 0.05
    """Share of real transitions in every SAC minibatch."""
    elites: Annotated[int, Ge(1)] = 5
    """Members used for rollouts: the lowest held-out MSE."""
    max_epochs: Annotated[int, Ge(1)] = 50
    """Model training stops after this many epochs at the latest ..."""
    patience: Annotated[int, Ge(1)] = 5
    """... or once no member improved its held-out MSE by ``min_improvement`` for this many
    epochs."""
    min_improvement: Annotated[float, In(0.0, 1.0, "[)")] = 0.01
    """Relative drop of a member's held-out MSE that counts as an improvement (MBPO's 1%)."""

    def check(self, c: Config) -> None:
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
            self.elites <= c.world_model.ensemble_size,
            "mbpo.elites",
            self.elites,
            f"must be <= world_model.ensemble_size ({c.world_model.ensemble_size})",
        )
