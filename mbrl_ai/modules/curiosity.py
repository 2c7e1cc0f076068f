"""Cψ, the curiosity interface, and ``curiosity=none``.

A curiosity module gives an intrinsic reward for a batch of (s, a, s′) and, if it learns, a loss:

    intrinsic_reward(obs, actions, next_obs) -> [B]    novelty, unscaled, no gradient
    loss(obs, actions, next_obs) -> scalar | None      what 2.6 minimises
    observe(next_obs)                                  real states, for input normalisation
    ready() -> bool                                    rewards count (after a warm-up)
    trainable_parameters() -> list                     what 2.6's optimiser steps

Each module registers its class under its ``curiosity.name`` (:func:`register_curiosity`) and
builds itself from the ``curiosity`` node (``from_config``); ``mbrl_ai.curiosity`` builds the one
the config names. The modules are ``rnd.py``, ``icm.py`` and ``disagreement.py`` (imported by the
package, so that the registry is full): a new method is one class and one YAML file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import gymnasium as gym
import torch
from torch import nn

# curiosity.name -> the module class it builds, filled by :func:`register_curiosity`
CURIOSITY: dict[str, Any] = {}
C = TypeVar("C")


def register_curiosity(name: str) -> Callable[[type[C]], type[C]]:
    """Class decorator: ``curiosity.name=<name>`` builds this class with
    ``cls.from_config(node, obs_dim, action_space, world_model)``."""

    def add(cls: type[C]) -> type[C]:
        CURIOSITY[name] = cls
        return cls

    return add


class Curiosity(Protocol):
    """What sections 2.1, 2.3 and 2.6 call on a curiosity module."""

    def trainable_parameters(self) -> list[nn.Parameter]: ...

    def ready(self) -> bool: ...

    def observe(self, next_obs: torch.Tensor) -> None: ...

    def intrinsic_reward(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor: ...

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor | None: ...


@register_curiosity("none")
class NoCuriosity(nn.Module):
    """``curiosity=none``: zero intrinsic reward and nothing to train."""

    @classmethod
    def from_config(
        cls, c: Any, obs_dim: int, action_space: gym.Space, world_model: Any
    ) -> NoCuriosity:
        return cls()

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
