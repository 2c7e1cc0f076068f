"""The score of a run and of a configuration over seeds (``tune.*``, see ``TuneConfig``).

Evaluation rows are ``eval.jsonl``'s: dicts with ``env_steps`` and ``mean_return``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mbrl_ai.config import TuneConfig
from mbrl_ai.core.stats import iqm, steps_to_threshold

# which way is better, per objective
DIRECTIONS = {"steps_to_threshold": "minimize", "auc": "maximize", "final_return": "maximize"}


def direction(objective: str) -> str:
    """``minimize`` or ``maximize`` (Optuna's words)."""
    return DIRECTIONS[objective]


def unsolved_score(tune: TuneConfig, budget: int) -> float:
    """``steps_to_threshold`` of a run that never got there: the budget plus the penalty."""
    return float(budget) * (1.0 + tune.unsolved_penalty)


def diverged_score(tune: TuneConfig, budget: int) -> float:
    """The score of a run that a non-finite value stopped: unsolved for ``steps_to_threshold``;
    ``nan`` for the return objectives, which fails the trial (no return stands for a blow-up)."""
    return unsolved_score(tune, budget) if tune.objective == "steps_to_threshold" else float("nan")


def score(evals: Sequence[dict], tune: TuneConfig, threshold: float | None, budget: int) -> float:
    """The run's score under ``tune.objective`` (see ``TuneConfig``); ``nan`` with no evaluation.

    Part-way through a run it is the score the run would have if it ended there, which is what a
    pruner compares between trials at the same evaluation: for ``steps_to_threshold``, a run not
    solved yet scores as unsolved, so a pruner stops a trial only at a point by which most
    finished trials had solved."""
    if tune.objective == "steps_to_threshold":
        if threshold is None:
            raise ValueError("steps_to_threshold needs a threshold (eval_threshold)")
        steps = [e["env_steps"] for e in evals]
        means = [e["mean_return"] for e in evals]
        hit = steps_to_threshold(steps, means, threshold, tune.consecutive)
        return float(hit) if hit is not None else unsolved_score(tune, budget)
    if not evals:
        return float("nan")
    curve = np.array([e["mean_return"] for e in evals], dtype=float)
    if tune.objective == "auc":
        return float(curve.mean())
    return float(curve[-tune.consecutive :].mean())


def aggregate(scores: Sequence[float], how: str) -> float:
    """Median, interquartile mean or mean over seeds (``tune.aggregate``); ``nan`` if any is."""
    values = np.asarray(scores, dtype=float)
    if values.size == 0 or np.isnan(values).any():
        return float("nan")
    if how == "median":
        return float(np.median(values))
    if how == "iqm":
        return float(iqm(values))
    return float(values.mean())
