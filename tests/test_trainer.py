"""The MB-PPO trainer: sections 2.1–2.8 are called once each per iteration, in order."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import mbrl_ai.fit_model as fit_model
import mbrl_ai.trainer as trainer
from mbrl_ai.logger import RunLogger
from tests.conftest import compose

SECTIONS = [
    ("collect_rollout", "2.1"),
    ("real_intrinsic_rewards", "2.1"),  # ... plus β·r_int
    ("mix_intrinsic", "2.1"),
    ("update_world_model", "2.2"),
    ("plan_imagination", "2.3"),
    ("imagine_rollouts", "2.3"),
    ("imagined_intrinsic_rewards", "2.3"),  # ... plus β·r_int
    ("mix_intrinsic", "2.3"),
    ("advantages_batch", "2.4"),  # real segments and every imagined rollout
    ("ppo_update", "2.5"),
    ("update_curiosity", "2.6"),
    ("adapt_beta", "2.7"),
    ("log_iteration", "2.8"),
]


def test_trainer_calls_its_sections_in_order(
    monkeypatch: pytest.MonkeyPatch, tiny: list[str], tmp_path: Path
) -> None:
    calls: list[str] = []

    def spy(name: str, fn):  # noqa: ANN001, ANN202
        def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            calls.append(name)
            return fn(*args, **kwargs)

        return wrapped

    for name in dict.fromkeys(n for n, _ in SECTIONS if n != "log_iteration"):
        monkeypatch.setattr(trainer, name, spy(name, getattr(trainer, name)))
    monkeypatch.setattr(RunLogger, "log_iteration", spy("log_iteration", RunLogger.log_iteration))

    cfg = compose(*tiny, "algo=mbppo", "world_model.train_steps=5")
    result = trainer.train_mbppo(cfg, tmp_path)
    per_iteration = [n for n, _ in SECTIONS]
    assert calls == per_iteration * 2  # two iterations of 256 real steps
    assert result.env_steps == 512


def test_dyna_rounds_repeat_imagination_and_update(
    monkeypatch: pytest.MonkeyPatch, tiny: list[str], tmp_path: Path
) -> None:
    calls: list[str] = []
    for name in ("imagine_rollouts", "ppo_update"):
        fn = getattr(trainer, name)
        monkeypatch.setattr(
            trainer,
            name,
            lambda *a, _n=name, _f=fn, **k: (calls.append(_n), _f(*a, **k))[1],
        )
    cfg = compose(
        *tiny,
        "total_timesteps=256",
        "imagination.rounds=3",
        "world_model.train_steps=5",
    )
    trainer.train_mbppo(cfg, tmp_path)
    assert calls == ["imagine_rollouts", "ppo_update"] * 3


@pytest.mark.parametrize(
    ("overrides", "depths", "imagined"),
    [
        (["imagination.mode=depth", "imagination.max_horizon=4"], {1, 2, 3, 4}, True),
        (["imagination.mode=both", "imagination.max_horizon=3"], {1, 2, 3}, True),
        # a stop no transition passes: imagination yields nothing, the run learns from real data
        (["imagination.mode=fixed", "imagination.disagreement_stop=1e-9"], {1}, False),
    ],
)
def test_adaptive_depth_and_the_disagreement_stop_run_through_the_trainer(
    overrides: list[str],
    depths: set[int],
    imagined: bool,
    tiny: list[str],
    tmp_path: Path,
) -> None:
    cfg = compose(*tiny, "world_model.train_steps=20", *overrides)
    trainer.train_mbppo(cfg, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["imagined_depth"] in depths
        n, bound = (
            row["imagined_transitions"],
            row["imagined_rollouts"] * row["imagined_depth"],
        )
        assert (0 < n <= bound) if imagined else n == 0


def test_open_loop_confidence_and_steve_depth_run_through_the_trainer(
    tiny: list[str], tmp_path: Path
) -> None:
    cfg = compose(
        *tiny,
        "world_model.train_steps=20",
        "world_model.confidence=open_loop",
        "imagination.mode=steve_breadth",
        "imagination.max_horizon=4",
        "imagination.recent_share=0.5",
    )
    trainer.train_mbppo(cfg, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    # no track record in the first iteration: confidence 0, the fewest rollouts
    assert (
        rows[0]["confidence"] == 0.0 and rows[0]["imagined_rollouts"] == cfg.min_planning_rollouts
    )
    assert "model/open_loop_mse_4" in rows[1]  # measured to the deepest horizon a rollout may go
    want = math.exp(-rows[1]["model/open_loop_mse_4"] / cfg.world_model.confidence_tolerance)
    assert rows[1]["confidence"] == pytest.approx(want)
    for row in rows:
        assert 0.0 < row["model/heldout_confidence"] <= 1.0  # the pseudocode's, still logged
        assert row["value_var"] >= 0.0 and 1.0 <= row["imagined_mean_depth"] <= 4.0


def test_a_jump_of_the_open_loop_error_makes_the_replay_forget(
    monkeypatch: pytest.MonkeyPatch, tiny: list[str], tmp_path: Path
) -> None:
    scripted = iter([0.01, 0.012, 0.011, 0.5, 0.4, 0.3])  # a change of dynamics at iteration 5
    monkeypatch.setattr(
        fit_model, "open_loop_error", lambda *a, **k: {"open_loop_mse_5": next(scripted)}
    )
    sizes: list[int] = []
    fit = fit_model.fit_world_model

    def spy(model, optimizer, replay, *a, **k):  # noqa: ANN001, ANN202
        sizes.append(replay.size)
        return fit(model, optimizer, replay, *a, **k)

    monkeypatch.setattr(fit_model, "fit_world_model", spy)
    cfg = compose(
        *tiny, "total_timesteps=1792", "world_model.train_steps=2", "world_model.forget_factor=10"
    )
    trainer.train_mbppo(cfg, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["model/forgot"] for r in rows] == [0, 0, 0, 0, 1, 0, 0]
    # the replay grows by 256 real steps an iteration and keeps only the newest batch at the jump
    assert sizes == [256, 512, 768, 1024, 256, 512, 768]


def test_the_change_test_needs_three_earlier_errors() -> None:
    from mbrl_ai.fit_model import dynamics_changed

    assert not dynamics_changed([0.01, 0.01], 1.0, 10.0)
    assert dynamics_changed([0.01, 0.02, 0.01], 0.2, 10.0)
    assert not dynamics_changed([0.01, 0.02, 0.01], 0.05, 10.0)
