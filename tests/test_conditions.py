"""Conditions for adaptive imagination (``mbrl_ai.envs.conditions``): a mid-run dynamics shift that
follows the run's real steps, state noise in one region, observation noise."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from mbrl_ai.core.checkpoint import read_checkpoint
from mbrl_ai.envs import make_env, make_vec_env
from mbrl_ai.train import run
from tests.conftest import compose


def _rollout(env: gym.Env, actions: list, seed: int = 0) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return np.array(out)


def test_the_shift_follows_the_run_step_both_ways() -> None:
    envs = make_vec_env("mbrl_ai/CartPoleShift-v1", 2, seed=0, env_kwargs={"at": 100})
    u = envs.envs[0].unwrapped
    envs.call("set_run_step", 99)
    assert (u.length, u.polemass_length) == (0.5, 0.05)
    envs.call("set_run_step", 100)
    assert (u.length, u.polemass_length, u.total_mass) == (1.0, 0.1, 1.1)
    envs.call("set_run_step", 0)  # a resumed run's fresh evaluation envs are told an earlier step
    assert u.length == 0.5


def test_a_reversed_actuator_pushes_the_other_way() -> None:
    envs = make_vec_env(
        "mbrl_ai/CartPoleShift-v1", 1, seed=0, env_kwargs={"at": 5, "length": 0.5, "force_mag": -10}
    )
    u = envs.envs[0].unwrapped
    envs.call("set_run_step", 5)
    assert (u.length, u.force_mag, u.masspole, u.gravity) == (0.5, -10.0, 0.1, 9.8)
    envs.reset(seed=0)
    x0 = float(u.state[1])
    envs.step(np.array([1]))  # "push right" now accelerates the cart to the left
    assert float(u.state[1]) < x0
    envs.close()


def test_the_shifted_dynamics_really_differ() -> None:
    actions = [0, 1] * 5
    before, after = (make_env("mbrl_ai/PendulumShift-v1", {"at": 10, "m": 2.0}) for _ in range(2))
    after.get_wrapper_attr("set_run_step")(10)
    a = _rollout(before, [np.array([1.0])] * 10)
    b = _rollout(after, [np.array([1.0])] * 10)
    assert np.allclose(a[0], b[0]) and not np.allclose(a[-1], b[-1])
    same = _rollout(make_env("mbrl_ai/CartPoleShift-v1"), actions)
    np.testing.assert_array_equal(same, _rollout(make_env("CartPole-v1"), actions))


def test_a_run_switches_its_envs_at_the_step_and_resumes_in_the_same_phase(
    tiny: list[str], tmp_path: Path
) -> None:
    base = [*tiny, "algo=ppo", "env=mbrl_ai/CartPoleShift-v1", "+env_kwargs.at=512"]
    run(compose(*base, "total_timesteps=1024"), tmp_path / "straight")
    state, _ = read_checkpoint(tmp_path / "straight")
    layers = state["envs"][0]
    shift = next(layer for layer in layers if layer["__type__"] == "DynamicsShift")
    assert shift["shifted"] is True
    # stopped at 512 (before the switch was applied to collection) and resumed to 1024
    run(compose(*base, "total_timesteps=512"), tmp_path / "resumed")
    run(compose(*base, "total_timesteps=1024"), tmp_path / "resumed")

    def rows(d: str) -> list[dict]:
        text = (tmp_path / d / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(r).items() if not k.endswith(("_s", "rss_mb"))}
                for r in text]  # fmt: skip

    assert rows("straight")[1:] == rows("resumed")[1:]


def test_region_noise_perturbs_only_inside_its_region() -> None:
    noisy = make_env("mbrl_ai/PendulumNoisy-v1", {"scale": 0.5})
    clean = make_env("mbrl_ai/PendulumNoisy-v1", {"scale": 0.0})
    for env in (noisy, clean):
        env.reset(seed=0)
        env.unwrapped.state = np.array([np.pi, 0.0])  # hanging down: cos θ < 0, outside
    a, b = noisy.step(np.array([0.0]))[0], clean.step(np.array([0.0]))[0]
    np.testing.assert_allclose(a, b)
    for env in (noisy, clean):
        env.unwrapped.state = np.array([0.0, 0.0])  # upright: inside
    a, b = noisy.step(np.array([0.0]))[0], clean.step(np.array([0.0]))[0]
    assert not np.allclose(a, b)
    # the state itself moved, and the observation follows it
    th, thdot = noisy.unwrapped.state
    np.testing.assert_allclose(a, [np.cos(th), np.sin(th), thdot], rtol=1e-5)


def test_observation_noise_leaves_the_state_alone_and_is_reproducible() -> None:
    env = make_env("mbrl_ai/CartPoleObsNoise-v1", {"scale": 0.1})
    obs = _rollout(env, [0, 1, 0])
    assert not np.allclose(obs[-1], env.unwrapped.state)
    again = _rollout(make_env("mbrl_ai/CartPoleObsNoise-v1", {"scale": 0.1}), [0, 1, 0])
    np.testing.assert_array_equal(obs, again)


@pytest.mark.parametrize(
    "env_id",
    ["mbrl_ai/CartPoleShift-v1", "mbrl_ai/CartPoleNoisy-v1", "mbrl_ai/PendulumObsNoise-v1"],
)
def test_mbppo_trains_on_every_condition(env_id: str, tiny: list[str], tmp_path: Path) -> None:
    result = run(compose(*tiny, f"env={env_id}", "world_model.train_steps=5"), tmp_path)
    assert result.env_steps == 512
