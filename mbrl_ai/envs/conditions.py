"""Conditions under which adapting how much to imagine should matter: registered variants of
CartPole-v1 and Pendulum-v1 whose dynamics shift mid-run, are noisy in one region of the state
space, or are observed through noise.

    env=mbrl_ai/CartPoleShift-v1  +env_kwargs.at=20000 +env_kwargs.length=1.0
    env=mbrl_ai/CartPoleShift-v1  +env_kwargs.at=1536 +env_kwargs.length=0.5 +env_kwargs.force_mag=-10
    env=mbrl_ai/CartPoleNoisy-v1  +env_kwargs.scale=0.05
    env=mbrl_ai/CartPoleObsNoise-v1 +env_kwargs.scale=0.05
    env=mbrl_ai/PendulumShift-v1  +env_kwargs.at=5000 +env_kwargs.m=1.5
    env=mbrl_ai/PendulumNoisy-v1 / mbrl_ai/PendulumObsNoise-v1

- **Shift** (:class:`DynamicsShift`): physical constants change once the *run* has taken ``at``
  real steps (the pole's half-length, and optionally the push force, the pole's mass or gravity;
  or the pendulum's mass and gravity), in the spirit of
  Sutton & Barto's blocking maze. The run tells every environment its real-step count
  (``set_run_step``) once per iteration and before each evaluation, so training and evaluation
  envs switch together, and a resumed run is in the same phase.
- **Noisy** (:class:`RegionNoise`): Gaussian noise of std ``scale`` is added to the state after a
  step that ends in one region (the right half of CartPole's track; the upper half-circle of the
  pendulum): the dynamics are heteroscedastic, and a model's error there is irreducible.
- **ObsNoise** (:class:`ObservationNoise`): the agent sees the state plus Gaussian noise of std
  ``scale``; the state itself evolves as in the original.

Every noise draw comes from the environment's own seeded generator, so runs stay reproducible and
resumable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv


def _finite(name: str, value: Any, low: float, low_ok: bool = False) -> float:
    """``value`` as a float, or a ``ValueError`` naming ``name``, the value and what is allowed."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    bound = ">=" if low_ok else ">"
    if not (number and math.isfinite(value) and (value >= low if low_ok else value > low)):
        raise ValueError(f"{name}={value!r}: must be a finite number {bound} {low:g}")
    return float(value)


# the constants a condition may set, and their lowest allowed values (inclusive or not)
CONSTANT_BOUNDS: dict[str, tuple[float, bool]] = {
    "length": (0.0, False), "masspole": (0.0, False), "gravity": (0.0, True),
    "m": (0.0, False), "g": (0.0, True), "force_mag": (-math.inf, False),
}  # fmt: skip


def _cartpole_set(env: Any, name: str, value: float) -> None:
    """Set a CartPole constant and the two that are derived from it."""
    setattr(env, name, value)
    env.total_mass = env.masspole + env.masscart
    env.polemass_length = env.masspole * env.length


def _pendulum_set(env: Any, name: str, value: float) -> None:
    setattr(env, name, value)


def _cartpole_obs(env: Any) -> np.ndarray:
    return np.array(env.state, dtype=np.float32)


def _pendulum_obs(env: Any) -> np.ndarray:
    theta, theta_dot = env.state
    return np.array([np.cos(theta), np.sin(theta), theta_dot], dtype=np.float32)


# per family (by name, so that the wrappers hold plain values and their state checkpoints):
# how to set a constant, which region is noisy, how the observation follows from the state
SETTERS: dict[str, Callable[[Any, str, float], None]] = {
    "cartpole": _cartpole_set,
    "pendulum": _pendulum_set,
}
NOISY_REGIONS: dict[str, Callable[[np.ndarray], bool]] = {
    "cartpole": lambda s: bool(s[0] > 0.0),  # the right half of the track
    "pendulum": lambda s: bool(np.cos(s[0]) > 0.0),  # the upper half-circle
}
OBSERVERS: dict[str, Callable[[Any], np.ndarray]] = {
    "cartpole": _cartpole_obs,
    "pendulum": _pendulum_obs,
}


def _keep_pendulum_speed(env: Any, state: np.ndarray) -> np.ndarray:
    """The pendulum clips its angular speed to ±max_speed; noise must not break that bound."""
    return np.array([state[0], np.clip(state[1], -env.max_speed, env.max_speed)])


BOUNDS: dict[str, Callable[[Any, np.ndarray], np.ndarray]] = {
    "cartpole": lambda env, state: state,
    "pendulum": _keep_pendulum_speed,
}


class DynamicsShift(gym.Wrapper):
    """Physical constants switch to ``after`` once the run has taken ``at`` real steps (and back
    if told an earlier step, as a resumed run's fresh evaluation envs are)."""

    def __init__(self, env: gym.Env, at: int, after: dict[str, float], family: str) -> None:
        super().__init__(env)
        if isinstance(at, bool) or not isinstance(at, int) or at < 0:
            raise ValueError(f"at={at!r}: the real step of the change must be an integer >= 0")
        self.at = int(at)
        self.after = {k: _finite(k, v, *CONSTANT_BOUNDS[k]) for k, v in after.items()}
        self.before = {k: float(getattr(env.unwrapped, k)) for k in after}
        self.shifted = False
        self.family = family

    def set_run_step(self, step: int) -> None:
        shifted = step >= self.at
        if shifted != self.shifted:
            for name, value in (self.after if shifted else self.before).items():
                SETTERS[self.family](self.env.unwrapped, name, value)
            self.shifted = shifted


class RegionNoise(gym.Wrapper):
    """Gaussian process noise of std ``scale`` on the state after a step that ends in a region."""

    def __init__(self, env: gym.Env, scale: float, family: str) -> None:
        super().__init__(env)
        self.scale = _finite("scale", scale, 0.0, low_ok=True)
        self.family = family

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        u: Any = self.env.unwrapped
        state = np.asarray(u.state, dtype=np.float64)
        if not terminated and NOISY_REGIONS[self.family](state):
            noise = self.env.unwrapped.np_random.normal(0.0, self.scale, size=state.shape)
            u.state = BOUNDS[self.family](u, state + noise)
            obs = OBSERVERS[self.family](u)
        return obs, reward, terminated, truncated, info


class ObservationNoise(gym.ObservationWrapper):
    """The agent sees the observation plus Gaussian noise of std ``scale``."""

    def __init__(self, env: gym.Env, scale: float) -> None:
        super().__init__(env)
        self.scale = _finite("scale", scale, 0.0, low_ok=True)
        shape = env.observation_space.shape
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape, dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float32)
        noise = self.env.unwrapped.np_random.normal(0.0, self.scale, size=obs.shape)
        return (obs + noise).astype(np.float32)


def cartpole_shift(
    at: int = 20_000,
    length: float = 1.0,
    force_mag: float | None = None,
    masspole: float | None = None,
    gravity: float | None = None,
    **kwargs: Any,
) -> gym.Env:
    """CartPole whose pole half-length becomes ``length`` (0.5 before) at real step ``at``, and,
    when given, the push force ``force_mag`` (10.0 before; negative: the actuator is reversed),
    the pole's mass ``masspole`` (0.1) and ``gravity`` (9.8)."""
    after = {"length": length}
    for name, value in (("force_mag", force_mag), ("masspole", masspole), ("gravity", gravity)):
        if value is not None:
            after[name] = value
    return DynamicsShift(CartPoleEnv(**kwargs), at, after, "cartpole")


def cartpole_noisy(scale: float = 0.05, **kwargs: Any) -> gym.Env:
    """CartPole with process noise on the right half of the track (x > 0)."""
    return RegionNoise(CartPoleEnv(**kwargs), scale, "cartpole")


def cartpole_obs_noise(scale: float = 0.05, **kwargs: Any) -> gym.Env:
    return ObservationNoise(CartPoleEnv(**kwargs), scale)


def pendulum_shift(at: int = 5_000, m: float = 1.5, g: float = 10.0, **kwargs: Any) -> gym.Env:
    """Pendulum whose mass becomes ``m`` and gravity ``g`` (1.0 and 10.0 before) at step ``at``."""
    return DynamicsShift(PendulumEnv(**kwargs), at, {"m": m, "g": g}, "pendulum")


def pendulum_noisy(scale: float = 0.05, **kwargs: Any) -> gym.Env:
    """Pendulum with process noise in the upper half-circle (cos θ > 0)."""
    return RegionNoise(PendulumEnv(**kwargs), scale, "pendulum")


def pendulum_obs_noise(scale: float = 0.05, **kwargs: Any) -> gym.Env:
    return ObservationNoise(PendulumEnv(**kwargs), scale)


def register_conditions() -> None:
    """Register the ``mbrl_ai/...`` ids (time limits and thresholds of the originals)."""
    for name, factory, limit, threshold in (
        ("CartPoleShift-v1", cartpole_shift, 500, 475.0),
        ("CartPoleNoisy-v1", cartpole_noisy, 500, 475.0),
        ("CartPoleObsNoise-v1", cartpole_obs_noise, 500, 475.0),
        ("PendulumShift-v1", pendulum_shift, 200, None),
        ("PendulumNoisy-v1", pendulum_noisy, 200, None),
        ("PendulumObsNoise-v1", pendulum_obs_noise, 200, None),
    ):
        env_id = f"mbrl_ai/{name}"
        if env_id not in gym.registry:
            gym.register(
                env_id,
                entry_point=factory,
                max_episode_steps=limit,
                reward_threshold=threshold,
            )


register_conditions()
