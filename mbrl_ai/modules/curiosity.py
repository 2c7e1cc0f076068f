"""Cψ, the curiosity interface, and ``curiosity=none``.

A curiosity module gives an intrinsic reward for a batch of (s, a, s′) and, if it learns, a loss:

    intrinsic_reward(obs, actions, next_obs) -> [B]    novelty, unscaled, no gradient
    loss(obs, actions, next_obs) -> scalar | None      what 2.6 minimises
    observe(next_obs)                                  real states, for input normalisation
    ready() -> bool                                    rewards count (after a warm-up)
    trainable_parameters() -> list                     what 2.6's optimiser steps

The modules are ``rnd.py``, ``icm.py`` and ``disagreement.py``; ``mbrl_ai.curiosity`` builds them.
"""

from __future__ import annotations

import torch
from torch import nn


class NoCuriosity(nn.Module):
    """``curiosity=none``: zero intrinsic reward and nothing to train."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        return []

    def ready(self) -> bool:
        return False  # never gives a reward, so nothing downstream needs computing

    def observe(self, next_obs: torch.Tensor) -> None:
        pass

    def intrinsic_reward(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        return torch.zeros(obs.shape[0], device=obs.device)

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor | None:
        return None
