"""Ensemble disagreement (Pathak et al., 2019; Sekar et al., 2020): novelty as the variance of the
world model's members about the next state.

No network of its own: it reads the MB-PPO world model ŵφ, which 2.2 trains. Members agree where
data is plentiful and disagree where it is not, so the variance of their predicted Δs (normalised
units, averaged over state dimensions) is high on unfamiliar (s, a).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

from mbrl_ai.modules.curiosity import register_curiosity
from mbrl_ai.modules.world_model import EnsembleWorldModel


@register_curiosity("disagreement")
class EnsembleDisagreement:
    """``curiosity=disagreement``: needs the world model, so MB-PPO only; nothing to train."""

    @classmethod
    def from_config(
        cls, c: Any, obs_dim: int, action_space: gym.Space, world_model: EnsembleWorldModel | None
    ) -> EnsembleDisagreement:
        if world_model is None:
            raise ValueError("curiosity=disagreement needs a world model")
        return cls(world_model)

    def __init__(self, model: EnsembleWorldModel) -> None:
        self.model = model  # shared, not owned: it is trained and checkpointed as the world model

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return []

    def ready(self) -> bool:
        return True

    def observe(self, next_obs: torch.Tensor) -> None:
        pass

    @torch.no_grad()
    def intrinsic_reward(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        mean, _, _ = self.model(obs, actions)
        return mean[..., : self.model.obs_dim].var(0, unbiased=False).mean(-1)

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> None:
        return None
