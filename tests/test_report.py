"""Report statistics against reference computations, and the report on run directories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats

from mbrl_ai.analysis.report import RunData, find_runs, group_runs, write_report
from mbrl_ai.core.stats import iqm, median, median_iqr, stratified_bootstrap_ci


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 10, 13])
def test_iqm_is_scipys_25_percent_trimmed_mean(n: int) -> None:
    x = np.random.default_rng(n).normal(size=n).round(1)  # ties included
    assert iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25))
    batch = np.random.default_rng(0).normal(size=(4, n))
    np.testing.assert_allclose(iqm(batch, axis=-1), scipy.stats.trim_mean(batch, 0.25, axis=-1))


@pytest.mark.filterwarnings("error")
def test_median_iqr_is_numpys_percentile_and_counts_unsolved_runs_as_worst() -> None:
    for n in range(1, 12):
        x = np.random.default_rng(n).normal(size=n)
        assert median_iqr(x) == pytest.approx(tuple(np.percentile(x, [50, 25, 75])))
    inf = np.inf  # steps-to-solve of runs that never solved: half unsolved → median ∞, not NaN
    assert median_iqr([1, 2, inf, inf]) == (inf, 1.75, inf)
    assert median_iqr([1, 2, 3, inf]) == (2.5, 1.75, inf)
    assert median_iqr([inf, inf]) == (inf, inf, inf)


def test_single_stratum_bootstrap_agrees_with_scipy() -> None:
    x = np.array([12.0, 15.0, 9.0, 30.0, 22.0, 18.0, 11.0, 25.0, 14.0, 19.0])
    for ours, theirs in (
        (median, np.median),
        (iqm, lambda v, axis: scipy.stats.trim_mean(v, 0.25, axis=axis)),
    ):
        low, high = stratified_bootstrap_ci(x, ["env"] * len(x), ours, n_resamples=20_000)
        ref = scipy.stats.bootstrap(
            (x,), theirs, n_resamples=20_000, method="percentile", random_state=1
        ).confidence_interval
        assert low == pytest.approx(ref.low, abs=0.6)
        assert high == pytest.approx(ref.high, abs=0.6)


def _reference_stratified(values, strata, statistic, n_resamples, seed):
    """Agarwal et al.'s procedure, written out with loops: per resample, per task, draw that
    task's runs with replacement; the statistic of the union; percentile interval."""
    rng = np.random.default_rng(seed)
    by_task = {}
    for v, s in zip(values, strata, strict=True):
        by_task.setdefault(s, []).append(v)
    stats = []
    for _ in range(n_resamples):
        sample = []
        for runs in by_task.values():
            sample += [runs[rng.integers(len(runs))] for _ in runs]
        stats.append(statistic(np.array(sample)))
    return np.percentile(stats, [2.5, 97.5])


def test_stratified_bootstrap_agrees_with_a_loop_reference() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    strata = ["a"] * 4 + ["b"] * 5  # two tasks of different scales
    ours = stratified_bootstrap_ci(values, strata, iqm, n_resamples=20_000, seed=3)
    ref = _reference_stratified(values, strata, lambda v: iqm(v), 20_000, seed=4)
    np.testing.assert_allclose(ours, ref, atol=1.5)
    # every resample keeps each task's share: the IQM can never fall below task a's upper runs
    assert ours[0] > 3.0


def _fake_run(root: Path, name: str, horizon: int, seed: int, returns: list[float]) -> None:
    d = root / name / f"seed={seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(
        f"env: CartPole-v1\nseed: {seed}\nplanning_horizon: {horizon}\ntotal_timesteps: 4096\n"
        "algo:\n  name: mbppo\nlogger:\n  name: console\n"
    )
    meta = {"meta": True, "threshold": 475.0, "env_id": "CartPole-v1"}
    rows = [meta] + [
        {"env_steps": 1024 * (i + 1), "mean_return": r, "train_wall_s": 10.0 * (i + 1)}
        for i, r in enumerate(returns)
    ]
    (d / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = [
        {
            "env_steps": 1024 * (i + 1),
            "real_transitions": 1024,
            "imagined_transitions": 512 * horizon,
            "confidence": 0.5 + 0.1 * i,
            "imagined_rollouts": 10 + i,
            "imagined_depth": horizon,
            "beta": 0.2,
        }
        for i in range(len(returns))
    ]
    (d / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))


def test_report_groups_by_config_without_seed_and_computes_the_table(
    tmp_path: Path,
) -> None:
    solved = [100.0, 480.0, 490.0, 500.0]  # threshold 475 first held 3 times from 2,048
    late = [100.0, 200.0, 480.0, 500.0]  # only 2 in a row: never
    _fake_run(tmp_path, "h1", 1, 0, solved)
    _fake_run(tmp_path, "h1", 1, 1, solved[:1] + [476.0, 477.0, 478.0])
    _fake_run(tmp_path, "h1", 1, 2, late)
    _fake_run(tmp_path, "h5", 5, 0, late)
    _fake_run(tmp_path, "h5", 5, 1, late)

    groups = group_runs(find_runs([tmp_path]))
    assert list(groups) == ["planning_horizon=1", "planning_horizon=5"]
    assert [len(g) for g in groups.values()] == [3, 2]

    out = write_report([tmp_path], tmp_path / "report", title="fake")
    report = json.loads((out.parent / "report.json").read_text())["groups"]
    h1, h5 = report["planning_horizon=1"], report["planning_horizon=5"]
    assert h1["steps_to_threshold"] == [2048.0, 2048.0, None]
    assert h1["steps_median"] == 2048.0 and h1["solved_fraction"] == pytest.approx(2 / 3)
    assert h5["steps_median"] is None and h5["solved_fraction"] == 0.0
    assert h1["final_median"] == 500.0 and h1["final_iqm"] == pytest.approx(iqm([500, 478, 500]))
    assert h1["imagined_per_real"] == pytest.approx(0.5) and h5["imagined_per_real"] == 2.5
    assert h1["wall_s_median"] == 40.0

    text = out.read_text()
    assert "| `planning_horizon=5` | 2 |" in text and "never [never, never]" in text
    for png in ("learning_curves.png", "adaptive.png", "samples.png"):
        assert (out.parent / png).read_bytes()[:4] == b"\x89PNG"
        assert f"({png})" in text


def _run(config: dict[str, Any], seed: int = 0) -> RunData:
    """A run read from disk, as :func:`find_runs` gives it: ``config`` flattened."""
    flat = {"env": "CartPole-v1", "seed": seed, "total_timesteps": 4096, **config}
    return RunData(Path(f"run{seed}"), flat, {}, [{"env_steps": 1024, "mean_return": 9.0}])


def test_a_key_only_some_configs_have_is_no_difference_by_itself() -> None:
    # a config holds the keys its algorithm reads: PPO's has no planning horizon or world model
    ppo = {"algo.name": "ppo", "algo.clip_range": 0.2}
    mbppo = {"algo.name": "mbppo", "world_model.ensemble_size": 5, "imagination.mode": "adaptive"}
    runs = [
        _run(ppo, seed=0),
        _run({**mbppo, "planning_horizon": 10}),
        _run(ppo, seed=1),
        _run({**mbppo, "planning_horizon": 5}),
    ]
    groups = group_runs(runs)
    assert list(groups) == [
        "algo.name=mbppo,planning_horizon=5",
        "algo.name=mbppo,planning_horizon=10",
        "algo.name=ppo",
    ]
    assert [len(g) for g in groups.values()] == [1, 1, 2]
    # a config without any of the varying keys is named by them, each missing
    groups = group_runs([_run({"planning_horizon": 5}), _run({}), _run({"planning_horizon": 1})])
    assert list(groups) == ["planning_horizon=-", "planning_horizon=1", "planning_horizon=5"]


def test_groups_that_would_share_a_name_keep_distinct_names_and_all_their_runs() -> None:
    full = {"algo.name": "mbppo", "planning_horizon": 5, "world_model.ensemble_size": 5}
    pruned = {"algo.name": "mbppo", "planning_horizon": 5}  # the same, saved without a key
    runs = [_run(full), _run(pruned), _run(pruned, seed=1), _run({"algo.name": "ppo"})]
    groups = group_runs(runs)
    assert list(groups) == [
        "algo.name=mbppo,world_model.ensemble_size=-",
        "algo.name=mbppo,world_model.ensemble_size=5",
        "algo.name=ppo",
    ]
    assert [len(g) for g in groups.values()] == [2, 1, 1]
    # no key varies at all: the keys only some have name them
    groups = group_runs([_run({"algo.name": "ppo", "a": 1}), _run({"algo.name": "ppo"})])
    assert list(groups) == ["a=-", "a=1"]
    # values that print alike are written out exactly
    groups = group_runs([_run({"lr": 0.001}), _run({"lr": 0.0010000001}), _run({"lr": "0.001"})])
    assert list(groups) == ["lr=0.001", "lr=0.0010000001", 'lr="0.001"']
    # one configuration: the algorithm and the environment
    assert list(group_runs([_run({"algo.name": "ppo"}), _run({"algo.name": "ppo"}, 1)])) == [
        "ppo CartPole-v1"
    ]


def test_a_report_of_one_run_with_one_evaluation_says_so_in_the_singular(tmp_path: Path) -> None:
    _fake_run(tmp_path, "h1", 1, 0, [123.0])
    out = write_report([tmp_path], tmp_path / "report", consecutive=1)
    text = out.read_text()
    assert "1 run in 1 group (CartPole-v1); threshold 475 for 1 evaluation in a row." in text
    assert "| `mbppo CartPole-v1` | 1 |" in text
    for png in ("learning_curves.png", "adaptive.png", "samples.png"):
        assert (out.parent / png).read_bytes()[:4] == b"\x89PNG"


def test_report_cli_refuses_an_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mbrl_ai.analysis.report import main

    assert main([str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: no run directories (config.yaml + eval.jsonl) below {tmp_path}"]


def test_a_report_folder_that_cannot_be_written_is_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mbrl_ai.analysis.report import main

    _fake_run(tmp_path / "runs", "h1", 1, 0, [123.0])
    (tmp_path / "taken").write_text("a file where the report folder should be")
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "taken" / "report")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: cannot write into {tmp_path / 'taken' / 'report'}: ")
    assert lines[0].endswith("is not a writable directory (choose another folder with --out)")


def _one_run(tmp_path: Path) -> Path:
    from mbrl_ai.train import run
    from tests.conftest import compose

    out = tmp_path / "run"
    run(compose("algo=ppo", "curiosity=none", "total_timesteps=512", "n_real_steps=256",
                "batch_size=64", "eval_every=256", "eval_episodes=2", "logger.progress=off"), out)  # fmt: skip
    return out


def test_a_damaged_log_line_is_one_error_line_naming_the_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = _one_run(tmp_path)
    with (out / "eval.jsonl").open("a") as f:
        f.write('{"env_steps": 7, "mean_ret\n')
    result = subprocess.run(
        [sys.executable, "-m", "mbrl_ai.report", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "eval.jsonl, line 4: not JSON" in lines[0], result.stderr


@pytest.mark.parametrize("bad", ["NaN", "Infinity", '"12"', "null"])
def test_an_evaluation_that_is_not_a_finite_number_is_one_error_line(
    tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mbrl_ai.analysis.report import main

    _fake_run(tmp_path, "h1", 1, 0, [123.0, 150.0])
    path = next(tmp_path.rglob("eval.jsonl"))
    with path.open("a") as f:
        f.write(f'{{"env_steps": 900, "mean_return": {bad}}}\n')
    assert main([str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path}, row ") and "mean_return=" in lines[0]
    assert lines[0].endswith("is not a finite number")


def test_an_interpolation_in_a_saved_config_does_not_reach_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mbrl_ai.analysis.report import main

    out = _one_run(tmp_path)
    monkeypatch.setenv("MBRL_AI_TEST_SECRET", "s3cr3t-value")
    text = (
        (out / "config.yaml")
        .read_text()
        .replace("env: CartPole-v1", "env: ${oc.env:MBRL_AI_TEST_SECRET}")
    )
    (out / "config.yaml").write_text(text)
    assert main([str(out), "--out", str(tmp_path / "report")]) == 0
    written = "".join(p.read_text() for p in (tmp_path / "report").glob("*.md"))
    assert "s3cr3t-value" not in written
