"""Learning tests: real training runs (``slow``; ``make test`` runs them, ``make test-fast`` skips them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbrl_ai.stats import steps_to_threshold
from mbrl_ai.train import run
from tests.conftest import compose


@pytest.mark.slow
def test_ppo_solves_cartpole(tmp_path: Path) -> None:
    cfg = compose("experiment=ppo_cartpole", "seed=1", "logger.progress=off")
    result = run(cfg, tmp_path)
    steps = [e["env_steps"] for e in result.evals]
    means = [e["mean_return"] for e in result.evals]
    solved_at = steps_to_threshold(steps, means, 475.0, consecutive=3)
    assert solved_at is not None, f"never solved; eval means {means}"
    assert solved_at <= 40_000, f"solved only at {solved_at} steps"
