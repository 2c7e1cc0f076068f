"""Known reward functions r(s, a, s'), for planning with the environment's reward instead of the
model's reward head (``mpc.reward=known``, an option that every table marks as such). Rows are
batched: states ``[R, obs_dim]``, env-unit actions ``[R, d]`` (or ``[R]`` indices)."""

from __future__ import annotations

from collections.abc import Callable

import torch

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def one_per_step(obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """CartPole (both action kinds): 1 for every step taken, the last one included."""
    return torch.ones(obs.shape[0], device=obs.device)


def pendulum(obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1: −(θ² + 0.1 θ̇² + 0.001 u²) at the state the torque u is applied in, θ from
    (cos θ, sin θ) in (−π, π]."""
    theta = torch.atan2(obs[:, 1], obs[:, 0])
    u = actions.reshape(obs.shape[0], -1)[:, 0].clamp(-2.0, 2.0)
    return -(theta**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * u**2)


def mountain_car_continuous(
    obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """MountainCarContinuous-v0: −0.1 a², plus 100 on reaching the goal (x ≥ 0.45, v ≥ 0)."""
    a = actions.reshape(obs.shape[0], -1)[:, 0].clamp(-1.0, 1.0)
    goal = (next_obs[:, 0] >= 0.45) & (next_obs[:, 1] >= 0.0)
    return -0.1 * a**2 + 100.0 * goal.float()


KNOWN_REWARD: dict[str, RewardFn] = {
    "CartPole-v1": one_per_step,
    "mbrl_ai/CartPoleContinuous-v0": one_per_step,
    "Pendulum-v1": pendulum,
    "MountainCarContinuous-v0": mountain_car_continuous,
}
