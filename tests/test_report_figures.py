"""The report's figures: legends of long group names, one-evaluation groups, a run's own curve."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from mbrl_ai.analysis import report
from mbrl_ai.analysis.report import (
    LEGEND_WIDTH,
    RunData,
    plot_adaptive,
    plot_learning_curves,
    plot_run,
    plot_samples,
)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the report saves, kept for a look after they are written."""
    figures: list[Any] = []
    save = report._save

    def keep(fig: Any, path: Path) -> Path:
        figures.append(fig)
        return save(fig, path)

    monkeypatch.setattr(report, "_save", keep)
    return figures


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _group(evals: int, shift: float) -> list[RunData]:
    steps = [1024 * (i + 1) for i in range(evals)]
    return [
        RunData(
            Path(f"seed={seed}"),
            {"env": "CartPole-v1", "seed": seed},
            {"meta": True, "threshold": 475.0},
            [{"env_steps": s, "mean_return": shift + 10.0 * i + seed} for i, s in enumerate(steps)],
            [
                {
                    "env_steps": s,
                    "imagined_transitions": 512,
                    "confidence": 0.5,
                    "imagined_rollouts": 10,
                    "imagined_depth": 3,
                    "beta": 0.2,
                }
                for s in steps
            ],
        )
        for seed in range(2)
    ]


def _long_name(i: int) -> str:
    parts = ["algo.name=mbppo", f"planning_horizon={i}", "world_model.hidden_sizes=[200,200,200]"]
    parts += ["imagination.mode=adaptive", f"curiosity.scale={0.1 * i:g}", "beta.target=0.5"]
    return ",".join(parts)


def test_a_legend_of_many_long_group_names_is_all_in_the_image_and_covers_no_axes(
    tmp_path: Path, drawn: list[Any]
) -> None:
    groups = {_long_name(i): _group(4, 100.0 * i) for i in range(7)}
    assert min(map(len, groups)) >= 100
    paths = [
        plot_learning_curves(groups, tmp_path / "learning_curves.png"),
        plot_adaptive(groups, tmp_path / "adaptive.png"),
        plot_samples(groups, tmp_path / "samples.png"),
    ]
    assert len(drawn) == 3
    for fig, path in zip(drawn, paths, strict=True):
        assert path is not None
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:  # below the axes, their tick labels and titles included
            assert box.y1 <= ax.get_tightbbox(renderer).y0
        saved = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
        assert saved.x0 <= box.x0 and box.x1 <= saved.x1
        assert saved.y0 <= box.y0 and box.y1 <= saved.y1
        texts = [t.get_text() for t in legend.get_texts()]
        assert len(texts) >= 7
        assert max(len(line) for t in texts for line in t.splitlines()) <= LEGEND_WIDTH
        # the saved image holds the legend hanging below the figure: it is taller than the figure
        width, height = _png_size(path)
        assert height > fig.get_figheight() * 120 + 100
        assert width >= box.width * 120 / fig.dpi


def test_a_group_with_one_evaluation_is_a_marked_point(tmp_path: Path, drawn: list[Any]) -> None:
    groups = {"planning_horizon=1": _group(1, 50.0), "planning_horizon=5": _group(4, 0.0)}
    plot_learning_curves(groups, tmp_path / "learning_curves.png")
    plot_adaptive(groups, tmp_path / "adaptive.png")
    for fig in drawn:
        for ax in fig.axes:
            (line,) = [x for x in ax.get_lines() if x.get_label().startswith("planning_horizon=1")]
            assert len(line.get_xdata()) == 1 and line.get_marker() == "o"


def _write_run(
    run_dir: Path, returns: list[float], std: bool = True, threshold: float | None = 475.0
) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        "env: CartPole-v1\nseed: 3\nplanning_horizon: 5\nalgo:\n  name: mbppo\n"
        # never resolved: the variable is not set, and reading it would fail
        "logger:\n  name: console\n  project: ${oc.env:MBRL_AI_TEST_UNSET_VARIABLE}\n"
    )
    meta = {"meta": True, "method": "mbppo", "env_id": "CartPole-v1", "threshold": threshold}
    rows: list[dict[str, Any]] = [meta]
    for i, r in enumerate(returns):
        row = {"env_steps": 1024 * (i + 1), "mean_return": r, "returns": [r - 1, r + 1]}
        rows.append(row | ({"std_return": 1.0} if std else {}))
    (run_dir / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


def test_plot_run_draws_the_runs_learning_curve_into_its_directory(
    tmp_path: Path, drawn: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MBRL_AI_TEST_UNSET_VARIABLE", raising=False)
    run_dir = _write_run(tmp_path / "run", [20.0, 150.0, 480.0])
    path = plot_run(run_dir)
    assert path == run_dir / "learning_curve.png"
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.yaml",
        "eval.jsonl",
        "learning_curve.png",
    ]  # no temporary file left behind
    (ax,) = drawn[-1].axes
    assert ax.get_title() == "mbppo on CartPole-v1, seed 3"
    assert len(ax.collections) == 1  # the ± std band
    (threshold,) = [x for x in ax.get_lines() if x.get_linestyle() == "--"]
    assert list(threshold.get_ydata()) == [475.0, 475.0]


def test_plot_run_with_one_evaluation_without_std_or_threshold(
    tmp_path: Path, drawn: list[Any]
) -> None:
    run_dir = _write_run(tmp_path / "one", [20.0])
    assert plot_run(run_dir) == run_dir / "learning_curve.png"
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    (line,) = drawn[-1].axes[0].get_lines()[:1]
    assert len(line.get_xdata()) == 1 and line.get_marker() == "o"

    bare = _write_run(tmp_path / "bare", [20.0, 30.0], std=False, threshold=None)
    assert plot_run(bare) == bare / "learning_curve.png"
    (ax,) = drawn[-1].axes
    assert not ax.collections and len(ax.get_lines()) == 1


def test_plot_run_writes_nothing_before_the_first_evaluation(tmp_path: Path) -> None:
    run_dir = _write_run(tmp_path / "run", [])
    assert plot_run(run_dir) is None
    assert not (run_dir / "learning_curve.png").exists()
    assert plot_run(tmp_path) is None  # no eval.jsonl at all
    assert list(tmp_path.iterdir()) == [run_dir]
