"""The ``SACConfig`` node of its algorithm: its keys, their declared ranges and its cross-key rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from mbrl_ai.core.ranges import Each, Ge, Gt, In, OneOf, need, need_learning_starts
from mbrl_ai.modules.mlp import ACTIVATIONS


@dataclass
class SACConfig:
    """Soft actor-critic (``algo=sac``, and the policy learner of ``algo=mbpo``). Defaults are
    Stable-Baselines3's; its learning rate is the root ``lr_actor_critic``, its discount ``gamma``.
    Registered by ``algos/sac.py``."""

    key: ClassVar[str] = "sac"

    hidden: Annotated[list[int], Each(Ge(1))] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths of the actor and of each Q-network."""
    activation: Annotated[str, OneOf(ACTIVATIONS)] = "relu"
    """Hidden activation: tanh, relu, elu or silu."""
    batch_size: Annotated[int, Ge(1)] = 256
    """Minibatch of every gradient step."""
    buffer_size: Annotated[int, Ge(1)] = 1_000_000
    """Real transitions kept in the replay."""
    learning_starts: Annotated[int, Ge(0)] = 100
    """Uniformly random actions, and no updates, for this many real steps."""
    tau: Annotated[float, In(0.0, 1.0, "(]")] = 0.005
    """Polyak rate of the target critic."""
    init_alpha: Annotated[float, Gt(0.0)] = 1.0
    """Initial entropy coefficient α."""
    auto_alpha: bool = True
    """Tune α towards ``target_entropy`` (else it stays ``init_alpha``)."""
    target_entropy: float | None = None
    """``null``: −(action dimension)."""
    updates_per_step: Annotated[int, Ge(1)] = 1
    """Gradient steps per real environment step (MBPO's G)."""
    steps_per_iteration: Annotated[int, Ge(1)] = 250
    """Real steps between two log lines (and checkpoint / signal checks; MBPO: model updates)."""

    def check(self, c: Any) -> None:
        need(self.batch_size <= self.buffer_size, "sac.batch_size", self.batch_size,
             f"must be <= sac.buffer_size ({self.buffer_size})")  # fmt: skip
        need_learning_starts("sac.learning_starts", self.learning_starts, c)
