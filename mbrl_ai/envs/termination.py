"""Known termination functions: the environment's own end-of-episode rule, as a function of s'.

``world_model.termination=known`` makes imagination use these instead of the learned done head,
the ablation that separates model error in the dynamics from error in predicted episode ends
(MBPO does the same for MuJoCo). Each function takes raw next states
``[B, obs_dim]`` and returns a bool ``[B]``; the thresholds are the environments' own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

TerminationFn = Callable[[torch.Tensor], torch.Tensor]


def cartpole(next_obs: torch.Tensor) -> torch.Tensor:
    """CartPole: the cart leaves ±2.4 or the pole tilts past ±12°."""
    x, theta = next_obs[:, 0], next_obs[:, 2]
    return (x.abs() > 2.4) | (theta.abs() > 12 * 2 * math.pi / 360)


def acrobot(next_obs: torch.Tensor) -> torch.Tensor:
    """Acrobot: the tip rises above the bar, −cos θ1 − cos(θ1 + θ2) > 1, from (cos, sin) pairs."""
    c1, s1, c2, s2 = next_obs[:, 0], next_obs[:, 1], next_obs[:, 2], next_obs[:, 3]
    return -c1 - (c1 * c2 - s1 * s2) > 1.0


def mountain_car(next_obs: torch.Tensor) -> torch.Tensor:
    """MountainCar-v0: position ≥ 0.5 with non-negative velocity."""
    return (next_obs[:, 0] >= 0.5) & (next_obs[:, 1] >= 0.0)


def mountain_car_continuous(next_obs: torch.Tensor) -> torch.Tensor:
    """MountainCarContinuous-v0: position ≥ 0.45 with non-negative velocity."""
    return (next_obs[:, 0] >= 0.45) & (next_obs[:, 1] >= 0.0)


def hopper(next_obs: torch.Tensor) -> torch.Tensor:
    """Hopper-v5 falls: height z ≤ 0.7, |torso angle| ≥ 0.2, or any other entry past ±100.
    (The env checks raw velocities, which its observation clips to ±10; those never reach 100.)"""
    z, angle = next_obs[:, 0], next_obs[:, 1]
    in_range = (next_obs[:, 1:].abs() < 100.0).all(dim=1)
    return ~((z > 0.7) & (angle.abs() < 0.2) & in_range)


def walker2d(next_obs: torch.Tensor) -> torch.Tensor:
    """Walker2d-v5 falls: height z outside (0.8, 2.0) or |torso angle| ≥ 1."""
    z, angle = next_obs[:, 0], next_obs[:, 1]
    return ~((z > 0.8) & (z < 2.0) & (angle.abs() < 1.0))


def never(next_obs: torch.Tensor) -> torch.Tensor:
    """Environments that only end by their time limit (Pendulum, HalfCheetah)."""
    return torch.zeros(next_obs.shape[0], dtype=torch.bool, device=next_obs.device)


KNOWN_TERMINATION: dict[str, TerminationFn] = {
    "CartPole-v0": cartpole,
    "CartPole-v1": cartpole,
    "mbrl_ai/CartPoleContinuous-v0": cartpole,
    "Acrobot-v1": acrobot,
    "MountainCar-v0": mountain_car,
    "MountainCarContinuous-v0": mountain_car_continuous,
    "Pendulum-v1": never,
    "HalfCheetah-v5": never,
    "Hopper-v5": hopper,
    "Walker2d-v5": walker2d,
}


def termination_fn(env_id: str, mode: str) -> TerminationFn | None:
    """The known function for ``env_id`` when ``mode`` is ``known``; ``None`` means learned."""
    return KNOWN_TERMINATION[env_id] if mode == "known" else None
