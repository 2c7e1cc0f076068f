"""A W&B comparison report of run groups: ``python -m mbrl_ai.analysis.wandb_report``.

    python -m mbrl_ai.analysis.wandb_report --entity me --project mbrl_ai \\
        --group planning_horizon:1 --group planning_horizon:5 --title "Does H matter?"
    python -m mbrl_ai.analysis.wandb_report ... --publish        # needs `wandb login` and the network

Every run logs to one step axis, real environment steps (W&B's ``Step``), under the same names
(``eval/mean_return``, the pseudocode's ``confidence``, ``imagined_rollouts``, ``beta`` ...), with
its W&B group = its configuration without the seed (``logger.group``: a sweep's folder name, with
':' for '=', which W&B's filter syntax would read as an operator) and job_type = the algorithm. The report has one panel grid over the chosen groups, runs aggregated
per group (median, min–max band): evaluation return, the adaptive mechanisms, the losses, real vs
imagined samples and the world model's held-out error.

Without ``--publish`` the report is only built and described (nothing needs a login); publishing
is the manual step that uploads it (``Report.save``) and prints its URL.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# (title, y keys) of the comparison panels, all against real environment steps
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("evaluation return", ("eval/mean_return",)),
    ("training episode return", ("episode_return",)),
    ("model confidence", ("confidence",)),
    ("imagined rollouts per iteration", ("imagined_rollouts",)),
    ("imagined depth", ("imagined_depth",)),
    ("curiosity weight β", ("beta",)),
    ("policy and value loss", ("policy_loss", "value_loss")),
    ("world-model held-out loss", ("model_loss",)),
    ("imagined transitions per iteration", ("imagined_transitions",)),
    ("5-step open-loop error", ("model/open_loop_mse_5",)),
)


def build_report(
    entity: str, project: str, groups: list[str], title: str, description: str = ""
) -> Any:
    """The ``wandb_workspaces`` Report object comparing ``groups`` (not saved)."""
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    filters = [expr.Metric("group").isin(list(groups))] if groups else []
    runset = wr.Runset(
        entity=entity, project=project, name="runs", filters=filters, groupby=["group"]
    )
    panels: list[wr.interface.PanelTypes] = [
        wr.LinePlot(
            title=name,
            x="Step",
            y=list(keys),
            title_x="real environment steps",
            groupby_aggfunc="median",
            groupby_rangefunc="minmax",
        )
        for name, keys in PANELS
    ]
    intro = (
        f"Groups compared: {', '.join(f'`{g}`' for g in groups) or 'every group'}. One line per "
        "group (its seeds aggregated: median, min–max band); x-axis: real environment steps."
    )
    return wr.Report(
        entity=entity,
        project=project,
        title=title,
        description=description,
        blocks=[
            wr.H1(title),
            wr.MarkdownBlock(intro),
            wr.PanelGrid(runsets=[runset], panels=panels),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mbrl_ai.analysis.wandb_report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--entity", required=True)
    parser.add_argument("--project", default="mbrl_ai")
    parser.add_argument("--group", action="append", default=[], help="a W&B group (repeat)")
    parser.add_argument("--title", default="mbrl_ai comparison")
    parser.add_argument("--publish", action="store_true", help="upload it (needs a login)")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.entity, args.project, args.group, args.title)
    except ImportError:
        print(
            "error: needs wandb-workspaces: pip install 'mbrl_ai[wandb-report]'",
            file=sys.stderr,
        )
        return 2
    if not args.publish:
        grid = report.blocks[-1]
        print(f"built '{report.title}': {len(grid.panels)} panels over groups {args.group}")
        print("not published: add --publish (after `wandb login`) to upload it")
        return 0
    report.save()
    print(report.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
