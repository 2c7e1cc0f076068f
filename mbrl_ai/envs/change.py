"""A change of the world from the command line: attributes of any environment set to new values at
a real step of the run, the same step for training and evaluation environments.

    python -m mbrl_ai.train env=CartPole-v1 env_change.at=[8192,16384] +env_change.set.force_mag=-10
    python -m mbrl_ai.train env=Pendulum-v1 env_change.at=[20000] +env_change.set.g=15
    python -m mbrl_ai.train env=Acrobot-v1 env_change.at=[10000] +env_change.set.LINK_MASS_1=2

``at`` is one step, or a range ``[lo, hi]`` from which each seed draws its own step (uniformly, from
a generator of the seed alone), so that no setting can be tuned to one moment of change. The run
tells its environments its real-step count once per iteration and before every evaluation
(``set_run_step``): the change takes effect at the first iteration that starts at or after the
drawn step, and a resumed run is in the same phase. Any numeric attribute of the unwrapped
environment may be set (CartPole's ``length``, ``masspole``, ``force_mag``, ``gravity``;
Pendulum's ``g``, ``m``, ``l``; Acrobot's ``LINK_MASS_1``; MountainCar's ``force``); CartPole's
constants derived from them (total mass, pole mass × length) follow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from mbrl_ai.core.errors import ConfigError
from mbrl_ai.core.ranges import Each, Ge, need

# a constant of the change's generator, so that its draw is unrelated to the run's own streams
_DRAW_STREAM = 0x5EED_C4A9


@dataclass
class EnvChangeConfig:
    """A change of the environment's dynamics at a real step (``mbrl_ai.envs.change``)."""

    at: Annotated[list[int], Each(Ge(0))] = field(default_factory=list)
    """``[]``: no change; ``[s]``: at real step s; ``[lo, hi]``: at a step each seed draws
    uniformly from lo..hi."""
    set: dict[str, float] = field(default_factory=dict)
    """Attribute of the unwrapped environment -> its value from the change on:
    ``+env_change.set.force_mag=-10``."""

    def check(self, c: Any) -> None:
        need(
            len(self.at) <= 2,
            "env_change.at",
            self.at,
            "one step [s] or a range [lo, hi]",
        )
        if len(self.at) == 2:
            lo, hi = self.at
            need(
                lo <= hi,
                "env_change.at",
                self.at,
                f"a range [lo, hi] needs lo <= hi ({lo} > {hi})",
            )
        need(bool(self.at) == bool(self.set), "env_change.set" if self.at else "env_change.at",
             dict(self.set) if self.at else [], "env_change needs both a step (at) and values (set)")  # fmt: skip
        for name, value in self.set.items():
            need(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                 f"env_change.set.{name}", value, "a finite number")  # fmt: skip

    def step(self, seed: int) -> int | None:
        """The real step of the change for ``seed`` (None: no change)."""
        if not self.at:
            return None
        if len(self.at) == 1:
            return int(self.at[0])
        rng = np.random.default_rng([_DRAW_STREAM, seed])
        return int(rng.integers(self.at[0], self.at[1] + 1))


def _refresh_cartpole(env: Any) -> None:
    env.total_mass = env.masspole + env.masscart
    env.polemass_length = env.masspole * env.length


# constants some environments derive once in their constructor from the ones a change may set
DERIVED: dict[type, Callable[[Any], None]] = {CartPoleEnv: _refresh_cartpole}


def numeric_attribute(env: gym.Env, name: str) -> bool:
    try:
        value = getattr(env.unwrapped, name)
    except Exception:  # a missing attribute, or a property that cannot be read yet
        return False
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


class AttributeChange(gym.Wrapper):
    """Attributes of the unwrapped environment switch to ``after`` once the run has taken ``at``
    real steps (and back if told an earlier step, as a resumed run's fresh evaluation envs are)."""

    def __init__(self, env: gym.Env, at: int, after: dict[str, float]) -> None:
        super().__init__(env)
        for name in after:
            if not numeric_attribute(env, name):
                raise ValueError(
                    f"{type(env.unwrapped).__name__} has no numeric attribute {name!r}"
                )
        self.at = int(at)
        self.after = {k: float(v) for k, v in after.items()}
        self.before = {k: float(getattr(env.unwrapped, k)) for k in after}
        self.changed = False

    def set_run_step(self, step: int) -> None:
        changed = step >= self.at
        if changed != self.changed:
            unwrapped = self.env.unwrapped
            for name, value in (self.after if changed else self.before).items():
                setattr(unwrapped, name, value)
            refresh = DERIVED.get(type(unwrapped))
            if refresh is not None:
                refresh(unwrapped)
            self.changed = changed


def change_wrapper(change: EnvChangeConfig, seed: int) -> Callable[[gym.Env], gym.Env] | None:
    """What wraps every environment of a run with ``change`` (None: no change)."""
    at = change.step(seed)
    if at is None:
        return None
    after = dict(change.set)
    return lambda env: AttributeChange(env, at, after)


def check_change(change: EnvChangeConfig, env: gym.Env, env_id: str) -> None:
    """Raise :class:`ConfigError` naming the first attribute ``env`` does not have as a number."""
    for name, value in change.set.items():
        if not numeric_attribute(env, name):
            known = sorted(
                k
                for k in dir(env.unwrapped)
                if not k.startswith(("_", "np_random")) and numeric_attribute(env, k)
            )
            raise ConfigError(
                f"env_change.set.{name}",
                value,
                f"{env_id} has no numeric attribute {name!r}; its numeric attributes: "
                + ", ".join(known),
            )
