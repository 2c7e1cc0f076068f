"""2.7: β adaptation for falling, flat and rising return trends."""

from __future__ import annotations

import pytest

from mbrl_ai.beta import BetaState, adapt_beta
from mbrl_ai.config import BetaConfig

CFG = BetaConfig(window=5, low_threshold=0.0, high_threshold=1.0)


def _after(returns: list[float], beta: float = 0.5) -> BetaState:
    return adapt_beta(BetaState(beta), returns, 0.1, CFG)


def test_falling_trend_raises_beta() -> None:
    assert _after([float(10 - i) for i in range(9)]).beta == pytest.approx(0.55)


def test_rising_trend_lowers_beta() -> None:
    state = _after([float(10 * i) for i in range(9)])
    assert state.beta == pytest.approx(0.45) and state.slope == pytest.approx(10.0)


def test_a_trend_between_the_thresholds_keeps_beta() -> None:
    state = _after([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0])
    assert 0.0 < state.slope <= 1.0 and state.beta == 0.5


def test_too_few_episodes_change_nothing_and_beta_is_clamped() -> None:
    assert _after([1.0, 0.0, -1.0]).beta == 0.5
    assert _after([float(-i) for i in range(9)], beta=0.95).beta == 1.0
    assert _after([float(-i) for i in range(9)], beta=0.0).beta == 0.0  # beta_init=0: off


def test_a_flat_trend_at_the_low_threshold_raises_beta() -> None:
    state = _after([-200.0] * 9)  # MountainCar before the first goal: learning stalls
    assert state.slope == 0.0 and state.beta == pytest.approx(0.55)
    high = adapt_beta(BetaState(0.5), [-200.0] * 9, 0.1, BetaConfig(5, -1.0, 1.0))
    assert high.beta == 0.5  # flat, but above a negative low threshold: unchanged
