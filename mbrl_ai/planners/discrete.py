"""Planners over discrete action sequences: categorical CEM, and exhaustive search."""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F

from mbrl_ai.planners.base import Evaluate, register_planner, top_k


def shift_discrete(plan: torch.Tensor) -> torch.Tensor:
    """Drop the executed first step; repeat the last action at the end."""
    return torch.cat([plan[:, 1:], plan[:, -1:]], dim=1)


@register_planner("cem", "discrete")
class CategoricalCEM:
    """CEM over ``n_actions``-way choices: one categorical distribution per step, sampled for
    ``population`` sequences, refitted to the elites' action frequencies, smoothed with ``alpha``
    (the weight of the old value) and mixed with a ``floor`` so that no action's probability
    ever reaches zero (it can always be tried again). The plan is each step's most likely action.
    A warm start puts half the initial mass on the shifted previous plan."""

    @classmethod
    def from_config(cls, m: Any, size: int, device: torch.device) -> CategoricalCEM:
        return cls(
            m.horizon,
            size,
            m.population,
            m.elites,
            m.iterations,
            m.alpha,
            m.categorical_floor,
            device,
        )

    def __init__(
        self,
        horizon: int,
        n_actions: int,
        population: int,
        elites: int,
        iterations: int,
        alpha: float,
        floor: float,
        device: torch.device,
    ) -> None:
        self.horizon, self.n_actions, self.device = horizon, n_actions, device
        self.population, self.elites, self.iterations = population, elites, iterations
        self.alpha, self.floor = alpha, floor

    def initial(self, batch: int, warm: torch.Tensor | None) -> torch.Tensor:
        uniform = torch.full(
            (batch, self.horizon, self.n_actions), 1.0 / self.n_actions, device=self.device
        )
        if warm is None:
            return uniform
        return 0.5 * uniform + 0.5 * F.one_hot(warm, self.n_actions).float()

    def plan(
        self, evaluate: Evaluate, batch: int, warm: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        probs = self.initial(batch, warm)
        for _ in range(self.iterations):
            candidates = self.sample(probs, generator)
            elites = top_k(evaluate(candidates), candidates, self.elites)
            frequency = F.one_hot(elites, self.n_actions).float().mean(1)
            probs = self.alpha * probs + (1.0 - self.alpha) * frequency
            probs = probs * (1.0 - self.n_actions * self.floor) + self.floor
        return probs.argmax(-1)

    def sample(self, probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``population`` sequences ``[B, N, H]`` from per-step categoricals ``[B, H, A]``
        (Gumbel-max: argmax of log p + Gumbel noise)."""
        shape = (probs.shape[0], self.population, self.horizon, self.n_actions)
        uniform = torch.rand(shape, device=self.device, generator=generator).clamp_min(1e-20)
        gumbel = -torch.log(-torch.log(uniform))
        return (probs.log().unsqueeze(1) + gumbel).argmax(-1)

    def shift(self, plan: torch.Tensor) -> torch.Tensor:
        return shift_discrete(plan)


@register_planner("exhaustive", "discrete")
class Exhaustive:
    """Every one of the ``n_actions ** horizon`` sequences, the best one: the exact answer of a
    small problem (a baseline for the others)."""

    LIMIT = 1 << 16

    @classmethod
    def from_config(cls, m: Any, size: int, device: torch.device) -> Exhaustive:
        return cls(m.horizon, size, device)

    def __init__(self, horizon: int, n_actions: int, device: torch.device) -> None:
        if n_actions**horizon > self.LIMIT:
            raise ValueError(
                f"{n_actions}^{horizon} sequences exceed exhaustive search's limit ({self.LIMIT})"
            )
        self.horizon, self.n_actions = horizon, n_actions
        every = itertools.product(range(n_actions), repeat=horizon)
        self.sequences = torch.tensor(list(every), dtype=torch.long, device=device)

    def plan(
        self, evaluate: Evaluate, batch: int, warm: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        candidates = self.sequences.unsqueeze(0).expand(batch, -1, -1)
        return top_k(evaluate(candidates), candidates, 1)[:, 0]

    def shift(self, plan: torch.Tensor) -> torch.Tensor:
        return shift_discrete(plan)
