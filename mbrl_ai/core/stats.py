"""Statistics over evaluation curves and seeds: steps to threshold, medians, IQR, the interquartile
mean (IQM) and bootstrap intervals, stratified by task as in Agarwal et al. (2021)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def steps_to_threshold(
    steps: Sequence[int] | np.ndarray,
    mean_returns: Sequence[float] | np.ndarray,
    threshold: float,
    consecutive: int = 3,
) -> int | None:
    """Real steps at the first of ``consecutive`` evaluations in a row whose mean is ≥ ``threshold``.

    That is the point from which the policy counts as solved and stays solved for the next
    ``consecutive − 1`` evaluations; ``None`` when it never happens.
    """
    run = 0
    for i, value in enumerate(mean_returns):
        run = run + 1 if value >= threshold else 0
        if run == consecutive:
            return int(steps[i - consecutive + 1])
    return None


def median_iqr(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, 25th and 75th percentile (NaN for an empty sequence); ``inf`` entries count as worst."""
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    arr = np.sort(np.asarray(values, dtype=float))
    # interpolate on ranks by hand: numpy's lerp gives NaN between two inf neighbours
    pos = np.array([0.25, 0.5, 0.75]) * (len(arr) - 1)
    low, high = arr[np.floor(pos).astype(int)], arr[np.ceil(pos).astype(int)]
    frac = pos - np.floor(pos)
    with np.errstate(invalid="ignore"):  # inf − inf and 0 · inf: the cases np.where replaces
        q = np.where((frac == 0) | (low == high), low, low + frac * (high - low))
    q25, med, q75 = q
    return float(med), float(q25), float(q75)


def bootstrap_ci(
    values: Sequence[float],
    statistic=np.median,  # noqa: ANN001 - any reducer over an array
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (resampling seeds)."""
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    samples = rng.choice(arr, size=(n_resamples, len(arr)), replace=True)
    stats = np.apply_along_axis(statistic, 1, samples)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle half, after cutting ``int(0.25·n)`` values from
    each end (what ``scipy.stats.trim_mean(x, 0.25)`` computes). ``inf`` counts as the largest."""
    x = np.sort(np.asarray(values, dtype=float), axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    middle = np.take(x, np.arange(cut, n - cut), axis=axis)
    return middle.mean(axis=axis)


def stratified_bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    strata: Sequence[str],
    statistic=iqm,  # noqa: ANN001 - reduces the last axis of an array
    n_resamples: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic``, resampling runs with replacement within
    each stratum (task), so every resample keeps each task's number of runs."""
    arr, labels = np.asarray(values, dtype=float), np.asarray(strata)
    rng = np.random.default_rng(seed)
    columns = [
        rng.choice(np.flatnonzero(labels == s), size=(n_resamples, int((labels == s).sum())))
        for s in dict.fromkeys(labels.tolist())
    ]
    samples = arr[np.concatenate(columns, axis=1)]  # [n_resamples, n_runs]
    stats = statistic(samples, axis=-1)
    alpha = (1 - confidence) / 2
    with np.errstate(invalid="ignore"):  # inf (never solved) resamples: the bound is inf
        low, high = np.quantile(stats, [alpha, 1 - alpha], method="linear")
    return float(low), float(high)


def median(values: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """``np.median`` with the (values, axis) signature of :func:`iqm`."""
    return np.median(np.asarray(values, dtype=float), axis=axis)
