"""SAC's networks: a tanh-squashed Gaussian policy and twin Q-functions.

Actions inside the agent (replay, Q inputs, world model) are normalised to [-1, 1]; the policy's
``mode`` returns environment units for evaluation, and :meth:`SquashedGaussianActor.to_env` maps a
normalised action to them.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn

from mbrl_ai.modules.mlp import build_mlp

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class SquashedGaussianActor(nn.Module):
    """π(a|s) = tanh(N(μ(s), σ(s)²)), rescaled to the action bounds."""

    discrete = False

    scale: torch.Tensor
    center: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.spaces.Box,
        hidden: list[int],
        activation: str,
    ) -> None:
        super().__init__()
        self.action_dim = int(math.prod(action_space.shape))
        self.net = build_mlp(obs_dim, hidden, 2 * self.action_dim, activation)
        low = torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1)
        high = torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1)
        self.register_buffer("scale", (high - low) / 2.0)
        self.register_buffer("center", (high + low) / 2.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised normalised action ``[B, d]`` in (-1, 1) and its log-probability ``[B]``
        (the Gaussian density corrected for the tanh)."""
        mean, log_std = self(obs)
        std = log_std.exp()
        u = mean + std * torch.randn_like(mean)
        action = torch.tanh(u)
        log_prob = (-0.5 * ((u - mean) / std).pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(
            -1
        )
        # log(1 − tanh(u)²), written stably as 2·(log 2 − u − softplus(−2u))
        log_prob -= (2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))).sum(-1)
        return action, log_prob

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The normalised action tanh(μ(s))."""
        return torch.tanh(self(obs)[0])

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        return self.center + self.scale * action

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action, in environment units."""
        return self.to_env(self.deterministic(obs))


class TwinQ(nn.Module):
    """Two independent Q(s, a) MLPs (clipped double-Q)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: list[int], activation: str) -> None:
        super().__init__()
        self.q1 = build_mlp(obs_dim + action_dim, hidden, 1, activation)
        self.q2 = build_mlp(obs_dim + action_dim, hidden, 1, activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)
