"""``algo=mpc``: short runs on continuous and discrete actions, exact resumption, evaluation from a
checkpoint, and the continuous CartPole task."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbrl_ai.core.checkpoint import read_checkpoint
from mbrl_ai.core.utils import read_jsonl
from tests.conftest import check_exact_resume, compose, run_cli

SHORT = [
    "algo=mpc",
    "total_timesteps=128",
    "eval_every=64",
    "eval_episodes=1",
    "eval_n_envs=1",
    "eval_max_steps=50",
    "checkpoint_every=64",
    "world_model.ensemble_size=2",
    "world_model.hidden=[16,16]",
    "mpc.horizon=4",
    "mpc.population=16",
    "mpc.elites=4",
    "mpc.iterations=2",
    "mpc.particles=2",
    "mpc.warmup_steps=32",
    "mpc.refit_every=32",
    "mpc.model_epochs=2",
    "logger.progress=off",
]
ENVS = {
    "continuous": "env=mbrl_ai/CartPoleContinuous-v0",
    "discrete": "env=CartPole-v1",
    "pendulum_icem": "env=Pendulum-v1",
    "discrete_value": "env=CartPole-v1",  # with the terminal-value critic
}


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(ENVS))
def test_mpc_resumes_exactly_and_its_checkpoint_evaluates(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    extra = {
        "pendulum_icem": ["mpc.planner=icem"],
        "discrete_value": ["mpc.terminal_value=true", "mpc.value_steps=20"],
    }.get(kind, [])
    cfg = compose(*SHORT, ENVS[kind], *extra)
    check_exact_resume(cfg, tmp_path, 96, monkeypatch)
    a, b = read_checkpoint(tmp_path / "straight")[0], read_checkpoint(tmp_path / "resumed")[0]
    for key, value in a["objects"]["world_model"].items():
        assert torch.equal(value, b["objects"]["world_model"][key]), key
    metrics = read_jsonl(tmp_path / "straight" / "metrics.jsonl")
    assert metrics[-1]["plan_ms_per_step"] > 0 and metrics[-1]["model_steps_per_real_step"] > 0
    result = run_cli(f"run={tmp_path / 'straight'}", "episodes=1", module="mbrl_ai.evaluate")
    assert result.returncode == 0, result.stderr
    assert "mean return" in result.stdout


def test_the_continuous_cartpole_follows_cartpoles_physics() -> None:
    """Full push right (a = 1) moves both envs alike: the same state after the same pushes."""
    continuous, discrete = gym.make("mbrl_ai/CartPoleContinuous-v0"), gym.make("CartPole-v1")
    a, _ = continuous.reset(seed=3)
    b, _ = discrete.reset(seed=3)
    np.testing.assert_array_equal(a, b)
    for action in (1, 1, 0, 1, 0, 0):
        a, reward, *_ = continuous.step(np.array([1.0 if action else -1.0], dtype=np.float32))
        b, *_ = discrete.step(action)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        assert reward == 1.0
    assert continuous.spec is not None and continuous.spec.max_episode_steps == 200
