"""Q_θ(s, ·) for Discrete actions: an MLP from the observation to one value per action."""

from __future__ import annotations

import torch
from torch import nn

from mbrl_ai.modules.mlp import build_mlp


class QNetwork(nn.Module):
    """Action values ``[B, n_actions]``; acting greedily on them is its policy (``mode``)."""

    discrete = True

    def __init__(self, obs_dim: int, n_actions: int, hidden: list[int], activation: str) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.net = build_mlp(obs_dim, hidden, n_actions, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    @torch.no_grad()
    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The greedy action of each state (evaluation)."""
        return self.net(obs).argmax(-1)
