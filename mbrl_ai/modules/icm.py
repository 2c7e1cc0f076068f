"""Intrinsic curiosity module (Pathak et al., 2017): novelty as the error of a forward model in a
feature space that an inverse model shapes.

An encoder φ maps states to features; the inverse model predicts the action from (φ(s), φ(s′)),
which makes φ keep what the agent can influence; the forward model predicts φ(s′) from (φ(s), a).
The intrinsic reward is ½‖f(φ(s), a) − φ(s′)‖² (mean over features). The loss mixes the two
models: (1 − w)·inverse + w·forward, with w = ``forward_weight`` (0.2 in the paper). States are
normalised by running statistics, as for RND.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ai.modules.curiosity import register_curiosity
from mbrl_ai.modules.mlp import build_mlp
from mbrl_ai.modules.normalizer import RunningMeanStd


@register_curiosity("icm")
class ICM(nn.Module):
    """``curiosity=icm``: forward-model error in a learned, action-relevant feature space."""

    @classmethod
    def from_config(cls, c: Any, obs_dim: int, action_space: gym.Space, world_model: Any) -> ICM:
        return cls(
            obs_dim,
            action_space,
            list(c.hidden),
            c.feature_dim,
            c.activation,
            c.forward_weight,
            c.obs_clip,
            c.warmup_steps,
        )

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.Space,
        hidden: list[int],
        feature_dim: int,
        activation: str,
        forward_weight: float,
        obs_clip: float,
        warmup_steps: int,
    ) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if isinstance(action_space, gym.spaces.Discrete):
            self.action_dim = int(action_space.n)
        else:
            assert action_space.shape is not None  # Box: the only other action space supported
            self.action_dim = int(math.prod(action_space.shape))
        self.encoder = build_mlp(obs_dim, hidden, feature_dim, activation, ortho_init=True)
        self.inverse = build_mlp(2 * feature_dim, hidden, self.action_dim, activation, True)
        self.forward_model = build_mlp(
            feature_dim + self.action_dim,
            hidden,
            feature_dim,
            activation,
            ortho_init=True,
        )
        self.forward_weight = forward_weight
        self.obs_rms = RunningMeanStd((obs_dim,), clip=obs_clip)
        self.warmup_steps = warmup_steps

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def ready(self) -> bool:
        """Rewards count once the input normalisation has seen ``warmup_steps`` real states."""
        return float(self.obs_rms.count) >= self.warmup_steps

    @torch.no_grad()
    def observe(self, next_obs: torch.Tensor) -> None:
        self.obs_rms.update(next_obs)

    def _action_input(self, actions: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return F.one_hot(actions.long(), self.action_dim).to(like.dtype)
        return actions.to(like.dtype).reshape(like.shape[0], self.action_dim)

    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.obs_rms.normalize(obs.double()).float())

    def _forward_error(
        self, phi: torch.Tensor, actions: torch.Tensor, phi_next: torch.Tensor
    ) -> torch.Tensor:
        predicted = self.forward_model(torch.cat([phi, self._action_input(actions, phi)], -1))
        return 0.5 * (predicted - phi_next).pow(2).mean(-1)

    @torch.no_grad()
    def intrinsic_reward(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        return self._forward_error(self._features(obs), actions, self._features(next_obs))

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        phi, phi_next = self._features(obs), self._features(next_obs)
        out = self.inverse(torch.cat([phi, phi_next], -1))
        if self.discrete:
            inverse_loss = F.cross_entropy(out, actions.long())
        else:
            inverse_loss = F.mse_loss(out, self._action_input(actions, out))
        # the forward loss trains the forward model only; φ is shaped by the inverse loss
        forward_loss = self._forward_error(phi.detach(), actions, phi_next.detach()).mean()
        return (1.0 - self.forward_weight) * inverse_loss + self.forward_weight * forward_loss
