"""Random network distillation (Burda et al., 2018): novelty as the error of predicting a fixed
random embedding of the next state.

The target network is initialised at random and never trained; the predictor is trained to match
it on visited states, so its error stays high on states unlike those seen. Both read the next state
normalised by running statistics (clipped to ±``obs_clip``); until the statistics have seen
``warmup_steps`` states the module is not ``ready`` and gives no reward, so early, badly
normalised inputs do not count.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from torch import nn

from mbrl_ai.modules.curiosity import register_curiosity
from mbrl_ai.modules.mlp import build_mlp
from mbrl_ai.modules.normalizer import RunningMeanStd


@register_curiosity("rnd")
class RND(nn.Module):
    """``curiosity=rnd``: intrinsic reward ‖f̂(s′) − f(s′)‖² with a frozen random f."""

    @classmethod
    def from_config(cls, c: Any, obs_dim: int, action_space: gym.Space, world_model: Any) -> RND:
        return cls(
            obs_dim,
            list(c.hidden),
            c.feature_dim,
            c.activation,
            c.predictor_extra_layers,
            c.obs_clip,
            c.warmup_steps,
        )

    def __init__(
        self,
        obs_dim: int,
        hidden: list[int],
        feature_dim: int,
        activation: str,
        predictor_extra_layers: int,
        obs_clip: float,
        warmup_steps: int,
    ) -> None:
        super().__init__()
        self.target = build_mlp(obs_dim, hidden, feature_dim, activation, ortho_init=True)
        self.target.requires_grad_(False)
        # a deeper predictor than the target, as in the paper, so it can match it
        extra = [hidden[-1]] * predictor_extra_layers if hidden else []
        self.predictor = build_mlp(
            obs_dim, hidden + extra, feature_dim, activation, ortho_init=True
        )
        self.obs_rms = RunningMeanStd((obs_dim,), clip=obs_clip)
        self.warmup_steps = warmup_steps

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.predictor.parameters())

    def ready(self) -> bool:
        """Rewards count once the input normalisation has seen ``warmup_steps`` real states."""
        return float(self.obs_rms.count) >= self.warmup_steps

    @torch.no_grad()
    def observe(self, next_obs: torch.Tensor) -> None:
        """Fold real next states into the input normalisation."""
        self.obs_rms.update(next_obs)

    def _error(self, next_obs: torch.Tensor) -> torch.Tensor:
        x = self.obs_rms.normalize(next_obs.double()).float()
        with torch.no_grad():
            target = self.target(x)
        return (self.predictor(x) - target).pow(2).mean(-1)

    @torch.no_grad()
    def intrinsic_reward(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        return self._error(next_obs)

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        return self._error(next_obs).mean()
