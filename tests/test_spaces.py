"""Any observation space Gymnasium can flatten: one-hot Discrete, flattened Dict/Tuple/images,
``env_kwargs`` through the CLI, and PPO / MB-PPO runs on the tabular classics."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from mbrl_ai.algos import check_spaces
from mbrl_ai.config import ConfigError
from mbrl_ai.envs import (
    FlatObservation,
    get_env_state,
    inspect_env,
    make_env,
    make_vec_env,
)
from mbrl_ai.train import run
from tests.conftest import compose, run_cli

FROZEN_8X8 = [
    "env=FrozenLake-v1",
    "+env_kwargs.is_slippery=false",
    "+env_kwargs.map_name=8x8",
]


def test_discrete_observations_are_one_hot_and_env_kwargs_reach_the_env() -> None:
    info = inspect_env("FrozenLake-v1", {"map_name": "8x8", "is_slippery": False})
    assert info.obs_shape == (64,) and info.observation_space == gym.spaces.Discrete(64)
    env = make_env("FrozenLake-v1", {"map_name": "8x8", "is_slippery": False})
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (64,) and obs[0] == 1.0 and obs.sum() == 1.0
    obs, *_ = env.step(2)  # right: deterministic without slipping
    assert obs[1] == 1.0 and obs.sum() == 1.0


def test_dict_observations_are_flattened_and_a_flat_box_is_left_alone() -> None:
    env = make_env("tests.fake_envs:DictObs-v0")
    assert isinstance(env, FlatObservation) and env.observation_space.shape == (2 + 3 + 4,)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (9,)
    assert not isinstance(make_env("CartPole-v1"), FlatObservation)


def test_flattened_envs_keep_exact_resumption() -> None:
    envs = make_vec_env("FrozenLake-v1", 2, seed=0, env_kwargs={"is_slippery": True})
    envs.reset(seed=0)
    assert get_env_state(envs) is not None
    envs.close()


@pytest.mark.integration
def test_bad_env_kwargs_and_unreadable_spaces_are_one_line(tmp_path: Path) -> None:
    bad = run_cli("env=FrozenLake-v1", "+env_kwargs.size=3", f"hydra.run.dir={tmp_path}")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("error: invalid config: env_kwargs=\\'size=3\\'") or (
        "FrozenLake-v1 does not take them" in bad.stderr
    )
    plus = run_cli("env=FrozenLake-v1", "env_kwargs.map_name=8x8", f"hydra.run.dir={tmp_path}")
    assert plus.returncode == 2 and "a new key needs a '+': +env_kwargs.map_name=8x8" in plus.stderr
    assert not any(tmp_path.iterdir())
    text = gym.spaces.Text(5)
    info = inspect_env("CartPole-v1")
    with pytest.raises(ConfigError, match="does not support observation space Text"):
        check_spaces(type(info)(**{**info.__dict__, "observation_space": text}), "ppo")


@pytest.mark.parametrize(
    "env",
    [
        FROZEN_8X8,
        ["env=Taxi-v4"],
        ["env=CliffWalking-v1"],
        ["env=tests.fake_envs:DictObs-v0"],
    ],
)
@pytest.mark.parametrize("algo", ["ppo", "mbppo"])
def test_ppo_and_mbppo_train_on_non_box_observations(
    algo: str, env: list[str], tiny: list[str], tmp_path: Path
) -> None:
    cfg = compose(*tiny, *env, f"algo={algo}", "world_model.train_steps=10")
    result = run(cfg, tmp_path)
    assert result.env_steps == 512 and len(result.evals) == 2
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["policy_loss"]) for r in rows[1:])
