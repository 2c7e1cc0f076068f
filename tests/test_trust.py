"""The trust gate (``mbrl_ai.modules.trust``): imagination shuts when fresh real data contradict
the model, comes back as it relearns, and a change makes the replay keep only the newest data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import mbrl_ai.fit_model as fit_model
import mbrl_ai.trainer as trainer
from mbrl_ai.modules.trust import TrustConfig, TrustGate, gate_value
from tests.conftest import compose


def test_the_gate_is_open_below_lo_shut_above_hi_and_log_linear_between() -> None:
    assert gate_value(0.5, 3.0, 30.0) == 1.0
    assert gate_value(3.0, 3.0, 30.0) == 1.0
    assert gate_value(30.0, 3.0, 30.0) == 0.0
    assert gate_value(1e9, 3.0, 30.0) == 0.0
    assert gate_value(math.sqrt(90.0), 3.0, 30.0) == pytest.approx(0.5)  # the geometric middle
    assert gate_value(math.nan, 3.0, 30.0) == 0.0
    assert gate_value(math.inf, 3.0, 30.0) == 0.0


def _iterate(gate: TrustGate, new: float, known: float) -> tuple[float, bool]:
    """One iteration: the error on the unseen batch, then on the batch after fitting."""
    out = gate.observe({1: new / 4, 5: new})
    gate.known({1: known / 4, 5: known})
    return out


def test_the_gate_shuts_on_contradicting_data_and_reopens_as_the_model_relearns() -> None:
    gate = TrustGate(TrustConfig(gate=True))
    assert gate.observe({5: 1.0}) == (1.0, False)  # nothing known yet: open
    gate.known({5: 0.01})
    for _ in range(8):  # a stationary world: unseen data about twice the known error
        assert _iterate(gate, 0.02, 0.01) == (1.0, False)
    # the world changes: the unseen batch is a thousand times worse than usual
    assert _iterate(gate, 20.0, 0.01) == (0.0, True)
    assert gate.surprise == pytest.approx(1000.0)
    # relearning: the gap closes step by step, and the gate opens with it
    gates = [_iterate(gate, new, 0.01)[0] for new in (5.0, 0.3, 0.1, 0.02)]
    assert gates[0] == 0.0 and 0.0 < gates[2] < 1.0 and gates[-1] == 1.0
    assert gates == sorted(gates)


def test_after_a_forget_the_ramp_caps_the_gate_for_its_iterations() -> None:
    gate = TrustGate(TrustConfig(gate=True, ramp=4))
    gate.known({5: 0.01})
    for _ in range(8):
        assert _iterate(gate, 0.02, 0.01) == (1.0, False)  # no forget yet: no cap
    assert _iterate(gate, 20.0, 0.01) == (0.0, True)
    # the restarted model predicts the next batches as well as ever: the gate alone would be 1
    assert [_iterate(gate, 0.02, 0.01)[0] for _ in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_the_deepest_horizon_both_batches_reach_is_compared() -> None:
    gate = TrustGate(TrustConfig(gate=True, warmup=0))
    gate.ratios = [1.0]
    gate.known({1: 0.01, 2: 0.02, 3: 0.04})
    gate.observe({1: 0.01, 2: 2.0})  # short episodes: no 3-step window in the new batch
    assert gate.surprise == pytest.approx(100.0)


def test_a_horizon_caps_the_depth_compared() -> None:
    gate = TrustGate(TrustConfig(gate=True, warmup=0, horizon=2))
    gate.ratios = [1.0]
    gate.known({1: 0.01, 2: 0.02, 3: 0.04})
    gate.observe({1: 0.01, 2: 0.4, 3: 40.0})  # the 3-step error would say 1,000
    assert gate.surprise == pytest.approx(20.0)


@pytest.mark.parametrize(("reference", "surprise"), [("last", 1000.0), ("floor", 1.0)])
def test_a_floored_reference_is_not_fooled_by_a_batch_the_model_predicts_perfectly(
    reference: str, surprise: float
) -> None:
    """A pendulum resting upright: one batch the model predicts a thousand times better than
    usual, then an ordinary batch. Against that batch alone the ordinary one is a change."""
    gate = TrustGate(TrustConfig(gate=True, reference=reference))
    gate.known({5: 0.01})
    for _ in range(6):  # a stationary world: unseen and known errors about equal
        assert _iterate(gate, 0.01, 0.01) == (1.0, False)
    _iterate(gate, 0.00001, 0.00001)
    gate_value_now, forgot = gate.observe({5: 0.01})
    assert gate.surprise == pytest.approx(surprise)
    assert forgot is (reference == "last")
    assert gate_value_now == (0.0 if reference == "last" else 1.0)


def test_a_forget_drops_the_old_models_known_errors_from_the_floor() -> None:
    gate = TrustGate(TrustConfig(gate=True, reference="floor"))
    gate.known({5: 0.01})
    for _ in range(6):
        _iterate(gate, 0.01, 0.01)
    assert _iterate(gate, 20.0, 0.0001) == (0.0, True)  # a change; the restarted model fits
    assert len(gate.known_history) == 1  # only the new model's error on the new batch
    gate.observe({5: 0.0001})
    assert gate.surprise == pytest.approx(1.0)  # against the old model's 0.01 it would be 0.01


def test_the_replay_forgets_once_per_window_and_not_on_a_moderate_surprise() -> None:
    gate = TrustGate(TrustConfig(gate=True, window=4, warmup=0))
    gate.ratios = [1.0]
    gate.known({5: 1.0})
    assert gate.observe({5: 50.0}) == (0.0, False)  # shut, but not a change: keep the data
    gate.known({5: 1.0})
    assert gate.observe({5: 500.0})[1] is True
    assert [gate.observe({5: 500.0})[1] for _ in range(4)] == [False] * 4
    assert gate.observe({5: 500.0})[1] is True  # a window later it may forget again


def test_the_gate_state_round_trips() -> None:
    gate = TrustGate(TrustConfig(gate=True, reference="floor"))
    gate.known({5: 0.01, 3: 0.002})
    for new in (0.02, 0.03, 0.02, 0.02, 5.0):
        _iterate(gate, new, 0.01)
    copy = TrustGate(TrustConfig(gate=True, reference="floor"))
    copy.load_state_dict(json.loads(json.dumps(gate.state_dict())))
    assert copy.state_dict() == gate.state_dict()
    assert copy.observe({5: 0.02, 1: 0.005}) == gate.observe({5: 0.02, 1: 0.005})


def test_the_trainer_imagines_nothing_while_shut_and_keeps_only_the_newest_batch(
    monkeypatch: pytest.MonkeyPatch, tiny: list[str], tmp_path: Path
) -> None:
    """Scripted errors (unseen batch, then known batch per iteration): stationary, a change at
    iteration 6, relearning. Shut: no rollout and one real-data update; the replay forgets."""
    script = iter(
        [0.01]  # the first iteration: only the error on the batch it was fitted on
        + [0.02, 0.01] * 5  # iterations 2-6 (the first has nothing to compare)
        + [30.0, 0.01]  # a change: 1,500 times the usual gap
        + [0.5, 0.01, 0.02, 0.01]  # relearning, then as good as before
    )
    monkeypatch.setattr(
        fit_model, "open_loop_error", lambda *a, **k: {"open_loop_mse_5": next(script)}
    )
    sizes: list[int] = []
    updates: list[int] = []
    fit, update = fit_model.fit_world_model, trainer.ppo_update

    def spy_fit(model, optimizer, replay, *a, **k):  # noqa: ANN001, ANN202
        sizes.append(replay.size)
        return fit(model, optimizer, replay, *a, **k)

    def spy_update(*a, **k):  # noqa: ANN002, ANN003, ANN202
        updates.append(1)
        return update(*a, **k)

    monkeypatch.setattr(fit_model, "fit_world_model", spy_fit)
    monkeypatch.setattr(trainer, "ppo_update", spy_update)
    cfg = compose(
        *tiny, "total_timesteps=2304", "world_model.train_steps=2", "trust.gate=true",
        "imagination.mode=fixed", "imagination.rounds=2", "min_planning_rollouts=0", "max_planning_rollouts=8",
    )  # fmt: skip
    trainer.train_mbppo(cfg, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    gates = [r["trust/gate"] for r in rows]
    assert gates[:6] == [1.0] * 6 and gates[6] == 0.0 and 0.0 < gates[7] < 1.0 and gates[8] == 1.0
    assert [r["imagined_rollouts"] for r in rows][6] == 0
    assert rows[6]["imagined_transitions"] == 0 and rows[5]["imagined_transitions"] > 0
    assert [r["model/forgot"] for r in rows] == [0] * 6 + [1, 0, 0]
    assert sizes == [256, 512, 768, 1024, 1280, 1536, 256, 512, 768]  # the newest batch only
    assert len(updates) == 2 * 9 - 1  # two rounds an iteration, one while shut


def test_the_policy_has_failed_only_at_a_change_with_returns_fallen_by_the_drop() -> None:
    gate = TrustGate(TrustConfig(gate=True, policy_drop=0.5))
    for returns in ([500.0], [480.0, 500.0], [490.0]):
        assert not gate.policy_failed(returns, changed=False)
    assert not gate.policy_failed([9.0, 10.0], changed=False)  # a fall, but no change detected
    gate.returns = [490.0, 500.0, 480.0]
    assert not gate.policy_failed([300.0], changed=True)  # fell by 39%: the old policy still works
    gate.returns = [490.0, 500.0, 480.0]
    assert gate.policy_failed([9.0, 10.0], changed=True)
    pendulum = TrustGate(TrustConfig(gate=True, policy_drop=0.5))
    pendulum.returns = [-150.0, -160.0, -170.0]  # negative returns: a fall of half their size
    assert not pendulum.policy_failed([-200.0], changed=True)
    pendulum.returns = [-150.0, -160.0, -170.0]
    assert pendulum.policy_failed([-900.0], changed=True)
    assert not pendulum.policy_failed([], changed=True)  # no episode ended: nothing to judge


@pytest.mark.parametrize(
    ("reset_on", "fell", "expected"),
    [
        ("change", False, ["world_model"]),
        ("change", True, ["world_model", "actor", "critic"]),
        ("policy_drop", False, []),  # the old policy survived: the old model is refitted
        ("policy_drop", True, ["world_model", "actor", "critic"]),
    ],
)
def test_the_model_starts_over_at_a_change_or_only_with_the_policy(
    monkeypatch: pytest.MonkeyPatch,
    tiny: list[str],
    tmp_path: Path,
    reset_on: str,
    fell: bool,
    expected: list[str],
) -> None:
    """Scripted errors with a change at iteration 6; the policy's returns fell with it or not."""
    script = iter([0.01] + [0.02, 0.01] * 5 + [30.0, 0.01] + [0.02, 0.01])
    monkeypatch.setattr(
        fit_model, "open_loop_error", lambda *a, **k: {"open_loop_mse_5": next(script)}
    )
    monkeypatch.setattr(TrustGate, "policy_failed", lambda self, r, changed: fell and changed)
    started: list[tuple[int, str]] = []
    start_over = TrustGate.start_over

    def spy(self: TrustGate, name: str, module: object) -> None:
        started.append((self.measured, name))
        start_over(self, name, module)  # type: ignore[arg-type]

    monkeypatch.setattr(TrustGate, "start_over", spy)
    cfg = compose(
        *tiny, "total_timesteps=2048", "world_model.train_steps=2", "trust.gate=true",
        f"trust.reset_model_on={reset_on}", "imagination.mode=fixed", "min_planning_rollouts=0",
        "max_planning_rollouts=8",
    )  # fmt: skip
    trainer.train_mbppo(cfg, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["model/forgot"] for r in rows] == [0] * 6 + [1, 0]  # the replay forgets either way
    assert [name for _, name in started] == expected
    assert {measured for measured, _ in started} <= {6}  # at the change, and only there
    assert [r["trust/policy_restarted"] for r in rows][6] == float(fell)
