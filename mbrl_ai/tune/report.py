"""The report of a tuning sweep (a folder with ``tuning.yaml``): ``python -m mbrl_ai.report <dir>``.

``tuning.md`` (and ``tuning.json``) hold what was tuned and how, the best trials with each
seed's score and their parameters, the best configuration on the held-out seeds beside the
tuning seeds, and each parameter's importance (PED-ANOVA, Optuna's evaluator that needs no other
package: how much a parameter's distribution differs between the best trials and all of them).
Figures: ``parallel_coordinates.png`` and ``history.png`` (Optuna's matplotlib plots).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mbrl_ai.core.utils import unwritable
from mbrl_ai.tune.objective import aggregate
from mbrl_ai.tune.sweeper import HOLDOUT_DIR, STUDY_FILE, TUNING_FILE, override_text
from mbrl_ai.tune.trial import TrialOutcome

TOP = 10  # best trials listed


def is_tuning_sweep(path: Path) -> bool:
    return (Path(path) / TUNING_FILE).is_file()


def load_study(sweep_dir: Path, tuning: dict[str, Any]) -> Any:
    """The sweep's study: from the storage it names, or from its own ``optuna.db`` (a folder that
    was moved or copied)."""
    import optuna

    from mbrl_ai.tune.trial import open_storage

    local = sweep_dir / STUDY_FILE
    url = f"sqlite:///{local.absolute()}" if local.is_file() else tuning["storage"]
    try:
        return optuna.load_study(study_name=tuning["study"], storage=open_storage(url))
    except KeyError:
        raise FileNotFoundError(f"no study {tuning['study']!r} in {url}") from None


def holdout_scores(sweep_dir: Path) -> dict[int, float]:
    scores: dict[int, float] = {}
    for part in sorted((sweep_dir / HOLDOUT_DIR).glob("part_*")):
        outcome = TrialOutcome.read(part)
        if outcome is not None:
            scores |= outcome.scores
    return scores


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _params(params: dict[str, Any]) -> str:
    """``key=value, ...`` as overrides would spell them (floats to 3 significant digits)."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={override_text(v)}"
                     for k, v in params.items())  # fmt: skip


def write_tuning_report(sweep_dir: Path, out_dir: Path) -> Path:
    """Write ``tuning.md``, ``tuning.json`` and the figures of the sweep in ``sweep_dir``."""
    import optuna

    sweep_dir, out = Path(sweep_dir), Path(out_dir)
    tuning = yaml.safe_load((sweep_dir / TUNING_FILE).read_text())
    study = load_study(sweep_dir, tuning)
    states = optuna.trial.TrialState
    complete = study.get_trials(deepcopy=False, states=(states.COMPLETE,))
    if not complete:
        raise ValueError(f"no completed trial in {sweep_dir} yet")
    if (problem := unwritable(out)) is not None:
        raise ValueError(f"{problem} (choose another folder with --out)")
    minimize = tuning["direction"] == "minimize"
    ranked = sorted(complete, key=lambda t: t.value if minimize else -t.value)
    out.mkdir(parents=True, exist_ok=True)

    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
              for s in (states.COMPLETE, states.PRUNED, states.FAIL, states.RUNNING)}  # fmt: skip
    best = ranked[0]
    best_outcome = TrialOutcome.read(sweep_dir / f"trial_{best.number}")
    tuning_scores = best_outcome.scores if best_outcome is not None else {}
    held = holdout_scores(sweep_dir)
    how = tuning["aggregate"]
    better = "lower" if minimize else "higher"
    lines = [
        f"# Tuning: {tuning['objective']} ({better} is better), {how} over seeds",
        "",
        f"{counts['complete']} trials completed, {counts['pruned']} pruned, {counts['fail']} "
        f"failed, {counts['running']} cut off (of {tuning['n_trials']}); sampler "
        f"{tuning['sampler']}, pruner {tuning['pruner']}; tuning seeds {tuning['seeds']}.",
        "",
        "## The best configuration on the tuning and the held-out seeds",
        "",
        "| seeds | " + how + " | per seed |",
        "|---|---|---|",
        f"| tuning {sorted(tuning_scores)} | {_fmt(best.value)} | "
        + ", ".join(_fmt(v) for _, v in sorted(tuning_scores.items()))
        + " |",
    ]
    lines.append(_holdout_row(held, how, bool(tuning["holdout_seeds"])))
    lines += [
        "",
        f"Best trial {best.number}: `{_params(best.params)}`",
        "",
        f"## The {min(TOP, len(ranked))} best trials",
        "",
        "| trial | " + how + " | per seed | parameters |",
        "|---|---|---|---|",
    ]
    rows = []
    for t in ranked[:TOP]:
        outcome = TrialOutcome.read(sweep_dir / f"trial_{t.number}")
        seeds = ", ".join(_fmt(v) for v in outcome.scores.values()) if outcome else "–"
        lines.append(f"| {t.number} | {_fmt(t.value)} | {seeds} | {_params(t.params)} |")
        rows.append({"trial": t.number, "value": t.value, "params": t.params,
                     "scores": outcome.scores if outcome else {}})  # fmt: skip

    importances = _importances(study, complete)
    if importances:
        lines += ["", "## Parameter importance (PED-ANOVA)", "", "| parameter | importance |",
                  "|---|---|"]  # fmt: skip
        lines += [f"| {k} | {v:.2f} |" for k, v in importances.items()]
    figures = _figures(study, out)
    lines += [""] + [f"![{f.stem}]({f.name})" for f in figures]
    (out / "tuning.md").write_text("\n".join(lines) + "\n")
    record = {
        "tuning": tuning,
        "trials": counts,
        "best": rows[0],
        "holdout": {"scores": held, "value": aggregate(list(held.values()), how) if held else None},
        "top": rows,
        "importances": importances,
    }
    (out / "tuning.json").write_text(json.dumps(_plain(record), indent=1) + "\n")
    return out / "tuning.md"


def _holdout_row(held: dict[int, float], how: str, asked: bool) -> str:
    """The best configuration's row on the held-out seeds (or why there is none yet)."""
    if held:
        return (
            f"| held-out {sorted(held)} | {_fmt(aggregate(list(held.values()), how))} | "
            + ", ".join(_fmt(v) for _, v in sorted(held.items()))
            + " |"
        )
    not_yet = "not run yet (after the last trial)" if asked else (
        "not asked for (`hydra.sweeper.holdout_seeds`)")  # fmt: skip
    return f"| held-out | {not_yet} | |"


def _importances(study: Any, complete: list[Any]) -> dict[str, float]:
    """PED-ANOVA importances over the completed trials ({} with too few of them)."""
    import optuna

    if len(complete) < 4 or not complete[0].params:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature notes
        try:
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
        except (ValueError, RuntimeError):  # e.g. every parameter held one value
            return {}
    return {k: float(v) for k, v in found.items()}


def _figures(study: Any, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import (
        plot_optimization_history,
        plot_parallel_coordinate,
    )

    paths = []
    for name, plot in (("parallel_coordinates", plot_parallel_coordinate),
                       ("history", plot_optimization_history)):  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ax = plot(study)
        path = out / f"{name}.png"
        figure = ax.get_figure(root=True)
        assert figure is not None
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        paths.append(path)
    return paths


def _plain(x: Any) -> Any:
    """JSON-ready: int keys as text, numpy scalars as numbers, non-finite numbers as null."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
