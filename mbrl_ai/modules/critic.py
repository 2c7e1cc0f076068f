"""Vθ: the state-value network."""

from __future__ import annotations

import torch
from torch import nn

from mbrl_ai.modules.mlp import build_mlp


class Critic(nn.Module):
    """V(s) from an MLP; returns ``[B]``."""

    def __init__(self, obs_dim: int, hidden: list[int], activation: str, ortho_init: bool) -> None:
        super().__init__()
        self.net = build_mlp(obs_dim, hidden, 1, activation, ortho_init, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)
