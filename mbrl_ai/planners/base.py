"""The planner interface and what planners share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import torch

# candidate sequences [B, N, H, d] (continuous, in [-1, 1]) or [B, N, H] (discrete, long) ->
# estimated returns [B, N]
Evaluate = Callable[[torch.Tensor], torch.Tensor]


class Planner(Protocol):
    """An optimiser over action sequences of length ``horizon`` for a batch of start states."""

    horizon: int

    def plan(
        self, evaluate: Evaluate, batch: int, warm: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """The sequence each of ``batch`` states should follow, ``[B, H, ...]``; ``warm`` is the
        previous step's plan shifted by one (:meth:`shift`), or ``None``."""
        ...

    def shift(self, plan: torch.Tensor) -> torch.Tensor:
        """``plan`` one step later: its tail, then a neutral last step."""
        ...


# planner name -> {"continuous": class, "discrete": class}: what ``mpc.planner=<name>`` builds for
# each kind of action space, filled by :func:`register_planner` where each planner is defined
PLANNERS: dict[str, dict[str, Any]] = {}
P = TypeVar("P")


def register_planner(name: str, kind: str) -> Callable[[type[P]], type[P]]:
    """Class decorator: ``mpc.planner=<name>`` builds this class for ``kind`` (``continuous`` or
    ``discrete``) actions, with ``cls.from_config(node, size, device)``: the ``mpc`` node, the
    action dimension (continuous) or the number of actions (discrete)."""

    def add(cls: type[P]) -> type[P]:
        PLANNERS.setdefault(name, {})[kind] = cls
        return cls

    return add


def top_k(returns: torch.Tensor, candidates: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` best candidates of each state, ``[B, k, ...]`` (best first)."""
    idx = returns.topk(k, dim=1).indices
    shape = (*idx.shape, *([1] * (candidates.dim() - 2)))
    return candidates.gather(1, idx.view(shape).expand(-1, -1, *candidates.shape[2:]))


def shift_continuous(plan: torch.Tensor) -> torch.Tensor:
    """Drop the executed first step; repeat zero (the middle of the action range) at the end."""
    return torch.cat([plan[:, 1:], torch.zeros_like(plan[:, :1])], dim=1)
