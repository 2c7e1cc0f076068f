"""A change of the world from the command line (``env_change``, ``mbrl_ai.envs.change``): any
numeric attribute of the unwrapped env, at one step or a step drawn per seed; refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mbrl_ai.envs import make_vec_env
from mbrl_ai.envs.change import EnvChangeConfig, change_wrapper
from mbrl_ai.train import run
from tests.conftest import compose, run_cli


def test_the_drawn_step_is_the_seeds_own_and_in_range() -> None:
    change = EnvChangeConfig(at=[1000, 3000], set={"force_mag": -10.0})
    steps = [change.step(seed) for seed in range(50)]
    assert all(1000 <= s <= 3000 for s in steps)
    assert len(set(steps)) > 40  # spread over the range, not one step
    assert steps == [change.step(seed) for seed in range(50)]  # the same on every call
    assert EnvChangeConfig(at=[1234], set={"g": 1.0}).step(7) == 1234
    assert EnvChangeConfig().step(0) is None


@pytest.mark.parametrize(
    ("env_id", "name", "value", "derived"),
    [
        ("CartPole-v1", "length", 1.0, {"polemass_length": 0.1}),
        ("CartPole-v1", "masspole", 0.5, {"total_mass": 1.5, "polemass_length": 0.25}),
        ("Pendulum-v1", "g", 15.0, {}),
        ("Acrobot-v1", "LINK_MASS_1", 2.0, {}),
    ],
)
def test_the_attribute_changes_at_the_step_and_back(
    env_id: str, name: str, value: float, derived: dict[str, float]
) -> None:
    wrap = change_wrapper(EnvChangeConfig(at=[100], set={name: value}), seed=0)
    envs = make_vec_env(env_id, 2, seed=0, wrapper=wrap)
    before = float(getattr(envs.envs[0].unwrapped, name))
    envs.call("set_run_step", 99)
    assert getattr(envs.envs[1].unwrapped, name) == before
    envs.call("set_run_step", 100)
    for env in envs.envs:
        assert getattr(env.unwrapped, name) == value
        for key, expected in derived.items():
            assert getattr(env.unwrapped, key) == pytest.approx(expected)
    envs.call("set_run_step", 0)  # a resumed run's fresh evaluation envs are told an earlier step
    assert getattr(envs.envs[0].unwrapped, name) == before
    envs.close()


def test_a_reversed_push_really_pushes_the_other_way() -> None:
    wrap = change_wrapper(EnvChangeConfig(at=[5], set={"force_mag": -10.0}), seed=0)
    moved = []
    for step in (0, 5):
        envs = make_vec_env("CartPole-v1", 1, seed=0, wrapper=wrap)
        envs.call("set_run_step", step)
        envs.reset(seed=0)
        v0 = float(envs.envs[0].unwrapped.state[1])
        envs.step(np.array([1]))  # push right
        moved.append(float(envs.envs[0].unwrapped.state[1]) - v0)
        envs.close()
    assert moved[0] > 0 > moved[1]


@pytest.mark.integration
def test_a_run_changes_its_world_at_the_drawn_step(tmp_path: Path) -> None:
    """A PPO run at a drawn step: training collapses to the reversed world's short episodes at
    the first iteration at or after the step, the evaluations with it."""
    cfg = compose(
        "experiment=ppo_cartpole_hand", "total_timesteps=6144", "eval_every=512",
        "env_change.at=[2000,4000]", "+env_change.set.force_mag=-10", "logger.progress=off",
    )  # fmt: skip
    at = cfg.env_change.step(cfg.seed)
    assert at is not None and 2000 <= at <= 4000
    run(cfg, tmp_path)
    evals = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    evals = [e for e in evals if "env_steps" in e]
    first_after = -(-at // cfg.n_real_steps) * cfg.n_real_steps
    before = [e["mean_return"] for e in evals if e["env_steps"] < first_after]
    right_after = [
        e["mean_return"] for e in evals if first_after <= e["env_steps"] < first_after + 512
    ]
    assert max(before) > 100  # it had learned to balance
    assert right_after and right_after[0] < 30  # the learned policy now pushes the wrong way


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["env_change.at=[1000]", "+env_change.set.lenght=1"], "no numeric attribute 'lenght'"),
        (["env_change.at=[1000]", "+env_change.set.length=nan"], "a finite number"),
        (["env_change.at=[3000,1000]", "+env_change.set.length=1"], "needs lo <= hi"),
        (["env_change.at=[1,2,3]", "+env_change.set.length=1"], "one step [s] or a range"),
        (["env_change.at=[1000]"], "needs both a step (at) and values (set)"),
        (["+env_change.set.length=1"], "needs both a step (at) and values (set)"),
        (["env_change.at=[-5]", "+env_change.set.length=1"], "env_change.at"),
        (["env_change.at=[1000]", "env_change.set.length=1"], "a new key needs a '+'"),
    ],
)
def test_a_bad_change_is_one_line_before_any_work(
    args: list[str], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = run_cli("algo=ppo", f"hydra.run.dir={out}", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert not (out / "metrics.jsonl").exists()
