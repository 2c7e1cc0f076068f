"""2.7 Adapt β, the curiosity weight, to the trend of real extrinsic returns.

A pure function of (state, newly finished episode returns, config): the moving average of the
last ``window`` returns is tracked over ``window`` points and its slope (return per episode) is
fitted by least squares. Once per iteration with newly finished episodes:

    slope <= low_threshold   β ← min(1, β·(1 + rate))   learning stalls or regresses: explore more
                                                        (a flat trend at the threshold counts: a
                                                        return stuck at −200 on MountainCar has
                                                        slope exactly 0 = the default threshold)
    slope >  high_threshold  β ← β·(1 − rate)           learning is under way: exploit more
    otherwise                β unchanged

Being multiplicative, β = 0 stays 0: ``beta_init=0`` switches curiosity off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mbrl_ai.config import BetaConfig


@dataclass(frozen=True)
class BetaState:
    beta: float
    returns: tuple[float, ...] = ()  # the most recent real episode returns (2·window − 1 at most)
    slope: float = 0.0  # last fitted trend of the moving average, return per episode


def least_squares_slope(y: np.ndarray) -> float:
    """Slope of the least-squares line through ``(i, y[i])``; exactly 0 for constant ``y``."""
    if np.ptp(y) == 0.0:  # a flat line: no rounding noise may pass for a trend
        return 0.0
    x = np.arange(len(y)) - (len(y) - 1) / 2.0
    return float(np.dot(x, y - y.mean()) / np.dot(x, x))


def adapt_beta(
    state: BetaState, new_returns: list[float], rate: float, cfg: BetaConfig
) -> BetaState:
    """Fold in the episodes finished this iteration and adapt β once there is a full window."""
    w = cfg.window
    returns = (state.returns + tuple(new_returns))[-(2 * w - 1) :]
    if len(returns) < 2 * w - 1 or not new_returns:
        return BetaState(state.beta, returns, state.slope)
    moving = np.convolve(np.asarray(returns), np.ones(w) / w, mode="valid")  # w points
    slope = least_squares_slope(moving)
    beta = state.beta
    if slope <= cfg.low_threshold:
        beta = min(1.0, beta * (1.0 + rate))
    elif slope > cfg.high_threshold:
        beta = max(0.0, beta * (1.0 - rate))
    return BetaState(beta, returns, slope)
