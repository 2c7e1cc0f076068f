"""Model-predictive control: optimisers over action sequences.

Every planner answers one question: given a batch of ``B`` start states and a function that scores
action sequences, which sequence should each state follow? The score function (``Evaluate``) takes
candidate sequences ``[B, N, H, ...]`` and returns their estimated returns ``[B, N]``; it hides
the world model, the particles and the reward. Planners evaluate their whole population in one
call per iteration (no Python loop over candidates) and return the plan ``[B, H, ...]``, whose
first step is the action to take; :meth:`Planner.shift` turns a plan into the next step's warm
start.

Continuous actions are searched in ``[-1, 1]^d`` (``Evaluate`` receives them there; the caller
maps them to the action bounds). Discrete actions are indices ``[B, N, H]`` (long).

- :class:`RandomShooting` — uniform sequences, the best one.
- :class:`CEM` — Gaussian refitted to the elites, smoothed; returns the elites' mean.
- :class:`ICEM` — CEM with coloured noise, a shrinking population and elites kept across
  iterations and steps (Pinneri et al., 2020).
- :class:`MPPI` — exponentially weighted average of perturbed sequences (Williams et al., 2017).
- :class:`CategoricalCEM` — per-step categorical distributions refitted to elite frequencies,
  smoothed and floored so that no action's probability reaches zero.
- :class:`Exhaustive` — every sequence of a small discrete problem (|A|^H candidates).

Each registers itself under its ``mpc.planner`` name and action kind (``register_planner``) and
builds itself from the ``mpc`` node (``from_config``): a new planner is one class in this folder.
"""

from mbrl_ai.planners.base import PLANNERS, Evaluate, Planner, register_planner
from mbrl_ai.planners.continuous import CEM, ICEM, MPPI, RandomShooting
from mbrl_ai.planners.discrete import CategoricalCEM, Exhaustive

__all__ = [
    "CEM",
    "ICEM",
    "MPPI",
    "PLANNERS",
    "CategoricalCEM",
    "Evaluate",
    "Exhaustive",
    "Planner",
    "RandomShooting",
    "register_planner",
]
