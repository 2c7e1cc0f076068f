"""The W&B comparison report, built and inspected as an object (publishing needs a login)."""

from __future__ import annotations

import pytest

from mbrl_ai.analysis.wandb_report import PANELS, build_report, main

wr = pytest.importorskip("wandb_workspaces.reports.v2")
expr = pytest.importorskip("wandb_workspaces.expr")

GROUPS = ["curiosity:none,planning_horizon:1", "curiosity:none,planning_horizon:5"]


def test_the_report_compares_the_groups_on_one_step_axis() -> None:
    report = build_report("me", "mbrl_ai", GROUPS, "Does the horizon matter?")
    assert (report.entity, report.project, report.title) == (
        "me",
        "mbrl_ai",
        "Does the horizon matter?",
    )
    heading, intro, grid = report.blocks
    assert isinstance(heading, wr.H1) and isinstance(intro, wr.MarkdownBlock)
    assert isinstance(grid, wr.PanelGrid)
    assert all(f"`{g}`" in intro.text for g in GROUPS)

    (runset,) = grid.runsets
    assert (runset.entity, runset.project, runset.groupby) == (
        "me",
        "mbrl_ai",
        ["group"],
    )
    # the filter string survives W&B's own parser (which reads '=' inside values as '==')
    parsed = expr.expr_to_filters(runset.filters)
    assert parsed.op == "IN" and parsed.key.name == "group" and parsed.value == GROUPS

    assert len(grid.panels) == len(PANELS)
    for panel, (title, keys) in zip(grid.panels, PANELS, strict=True):
        assert isinstance(panel, wr.LinePlot)
        assert panel.title == title and panel.y == list(keys) and panel.x == "Step"
        assert panel.groupby_aggfunc == "median" and panel.groupby_rangefunc == "minmax"
    assert grid.panels[0].y == ["eval/mean_return"]


def test_without_publish_nothing_needs_a_login(capsys: pytest.CaptureFixture) -> None:
    assert main(["--entity", "me", "--group", GROUPS[0], "--group", GROUPS[1]]) == 0
    out = capsys.readouterr().out
    assert f"{len(PANELS)} panels" in out and "not published" in out
