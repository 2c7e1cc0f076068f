"""Cψ: curiosity modules. Each gives an intrinsic reward for (s, a, s') and, if it learns, a loss."""

from __future__ import annotations

import torch
from torch import nn


class NoCuriosity(nn.Module):
    """``curiosity=none``: zero intrinsic reward and nothing to train."""

    def intrinsic_reward(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        return torch.zeros(obs.shape[0], device=obs.device)

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor | None:
        return None
