"""Comparison reports over run directories: ``python -m mbrl_ai.report <dirs...>``.

    python -m mbrl_ai.report multirun/2026-11-23_10-00-00 --out reports/horizon
    python -m mbrl_ai.report runs/a runs/b runs/c --threshold 475 --title "My study"

Every directory below the given ones that holds ``config.yaml`` and ``eval.jsonl`` is a run. Runs
are grouped by their config without the seed (and without keys that do not change what a run
computes); a group is named by the keys whose values differ between groups
(``planning_horizon=5``). A config holds only the keys its algorithm reads, so a key one group
lacks is no difference by itself: a PPO group is ``algo.name=ppo`` beside
``algo.name=mbppo,planning_horizon=5``. For each group ``report.md`` gives, over seeds:

- final return (the last evaluation's mean): median and IQM, each with a 95% stratified-bootstrap
  interval (runs resampled within each environment);
- real steps until the evaluation mean is ≥ the threshold for ``consecutive`` evaluations in a row:
  median with a 95% bootstrap interval (a run that never gets there counts as never, ``inf``);
- the share of runs that got there, the imagined/real sample ratio and the training wall time;

and ``report.json`` holds the same numbers. A tuning sweep (``hydra/sweeper=optuna``; its folder
holds ``tuning.yaml``) gets ``tuning.md`` instead: see :mod:`mbrl_ai.tune.report`. Figures (PNG): ``learning_curves.png`` (evaluation
return, median and interquartile band per group), ``adaptive.png`` (confidence, imagined rollouts,
imagined depth and β over real steps) and ``samples.png`` (cumulative real and imagined
transitions). :func:`plot_run` draws one run's ``learning_curve.png`` in its own directory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import OmegaConf

from mbrl_ai.config import RUN_MANAGEMENT_KEYS
from mbrl_ai.core.stats import iqm, median, steps_to_threshold, stratified_bootstrap_ci
from mbrl_ai.core.utils import flatten_dict, read_jsonl, unwritable
from mbrl_ai.tune.report import is_tuning_sweep, write_tuning_report

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# keys that never tell two configurations apart
_NOT_CONFIG = (
    "seed",
    "logger",
    "total_timesteps",
    "device",
    "torch_threads",
    *RUN_MANAGEMENT_KEYS,
)
ADAPTIVE_KEYS = (
    ("confidence", "model confidence"),
    ("imagined_rollouts", "imagined rollouts / iteration"),
    ("imagined_depth", "imagined depth (steps)"),
    ("beta", "curiosity weight β"),
)
LEGEND_WIDTH = 60  # characters per legend line; a longer group name is broken after its commas
MARKED_POINTS = 30  # a curve of at most this many points marks each one


@dataclass
class RunData:
    """One run directory, read."""

    path: Path
    config: dict[str, Any]  # flattened: "world_model.ensemble_size" -> 5
    meta: dict[str, Any]
    evals: list[dict[str, Any]]
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def env(self) -> str:
        return str(self.config["env"])

    @property
    def config_key(self) -> str:
        """The config without the seed and run-management keys, as a canonical string."""
        kept = {k: v for k, v in self.config.items() if k.split(".")[0] not in _NOT_CONFIG}
        return json.dumps(kept, sort_keys=True, default=str)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.array([e["env_steps"] for e in self.evals], dtype=float),
            np.array([e["mean_return"] for e in self.evals], dtype=float),
        )


def find_runs(paths: Sequence[Path | str]) -> list[RunData]:
    """Every run directory (``config.yaml`` + ``eval.jsonl`` with at least one evaluation) below
    ``paths``, in path order."""
    dirs: set[Path] = set()
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"no such directory: {root}")
        candidates = [root, *root.rglob("eval.jsonl")]
        dirs |= {(c if c.is_dir() else c.parent) for c in candidates}
    runs = []
    for d in sorted(dirs):
        if not (d / "config.yaml").is_file() or not (d / "eval.jsonl").is_file():
            continue
        rows = read_jsonl(d / "eval.jsonl")
        meta = next((r for r in rows if r.get("meta")), {})
        evals = [r for r in rows if not r.get("meta")]
        if not evals:
            continue
        _check_evaluations(d / "eval.jsonl", rows)
        metrics = read_jsonl(d / "metrics.jsonl") if (d / "metrics.jsonl").is_file() else []
        runs.append(RunData(d, _read_config(d), meta, evals, metrics))
    return runs


def _check_evaluations(path: Path, rows: list[dict[str, Any]]) -> None:
    """Every evaluation has a finite step count and mean return, or a ``ValueError`` names the
    file, the row and the value (a damaged log, not a number to average)."""
    for number, row in enumerate(rows, 1):
        if row.get("meta"):
            continue
        for key in ("env_steps", "mean_return"):
            value = row.get(key)
            number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number_ok and math.isfinite(float(value or 0))):
                raise ValueError(f"{path}, row {number}: {key}={value!r} is not a finite number")


def _read_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.yaml``, flattened and unresolved: a saved config holds plain values, and an
    interpolation someone wrote into it (``${oc.env:SECRET}``) must not pull anything from this
    machine into a report or a figure."""
    config = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=False)
    assert isinstance(config, dict)  # a run's config.yaml is a mapping
    return flatten_dict(config)


def group_runs(runs: list[RunData]) -> dict[str, list[RunData]]:
    """Runs grouped by config without the seed, each group named by the keys that tell it apart.

    A key *varies* when the configs that have it disagree on its value; a key that only some
    configs have (PPO's has no ``planning_horizon``) is no difference by itself. A group is named
    by the varying keys its config has (``algo.name=ppo``, ``algo.name=mbppo,planning_horizon=5``),
    by all of them, ``key=-`` where it lacks one, when it has none. Groups that would be named
    alike are told apart by the keys only some of them have, and then by exact values (``0.001``
    and ``0.0010000001`` both print as ``0.001``): two groups under one name would lose runs.
    Groups come in the order of their varying values, then of their names.
    """
    by_key: dict[str, list[RunData]] = {}
    for r in runs:
        by_key.setdefault(r.config_key, []).append(r)
    configs = {k: json.loads(k) for k in by_key}
    varying = _varying_keys(list(configs.values()))
    names = _group_names(configs, varying)

    def order(key: str) -> tuple:
        return tuple(_sortable(configs[key].get(k)) for k in varying), names[key]

    return {names[k]: by_key[k] for k in sorted(by_key, key=order)}


def _varying_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The keys that configs having them disagree on, sorted."""
    keys = sorted({k for c in configs for k in c})
    return [k for k in keys if len({_exact(c[k]) for c in configs if k in c}) > 1]


def _group_names(configs: dict[str, dict[str, Any]], varying: list[str]) -> dict[str, str]:
    """A distinct name for each config (by its ``config_key``); see :func:`group_runs`."""
    shown = {k: [key for key in varying if key in c] or varying for k, c in configs.items()}
    names = {k: _name(c, shown[k]) for k, c in configs.items()}
    for exact in (False, True):
        for alike in _alike(names):
            some = _keys_some_lack([configs[k] for k in alike])
            for k in alike:
                names[k] = _name(configs[k], sorted({*shown[k], *some}), exact)
    assert len(set(names.values())) == len(names), names  # distinct configs differ in some key
    return names


def _name(config: dict[str, Any], keys: list[str], exact: bool = False) -> str:
    """``key=value,...`` over ``keys`` (``key=-`` where ``config`` lacks one); without keys, the
    algorithm and the environment."""
    if not keys:
        return f"{config.get('algo.name', '?')} {config.get('env', '')}".strip()
    show = _exact if exact else _short
    return ",".join(f"{k}={show(config[k]) if k in config else '-'}" for k in keys)


def _alike(names: dict[str, str]) -> list[list[str]]:
    """The sets of configs (two or more) that share a name, in name order."""
    by_name: dict[str, list[str]] = {}
    for key, name in sorted(names.items(), key=lambda kv: (kv[1], kv[0])):
        by_name.setdefault(name, []).append(key)
    return [keys for keys in by_name.values() if len(keys) > 1]


def _keys_some_lack(configs: list[dict[str, Any]]) -> set[str]:
    """The keys some of ``configs`` have and some do not."""
    every = set.intersection(*(set(c) for c in configs))
    return {k for c in configs for k in c} - every


def _exact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(map(_short, value)) + "]"
    return str(value)


def _sortable(value: Any) -> tuple:
    if isinstance(value, bool) or value is None:
        return (0, str(value))
    if isinstance(value, (int, float)):
        return (1, float(value))
    return (2, str(value))


# ----------------------------------------------------------------------------------------------
# numbers
# ----------------------------------------------------------------------------------------------


def summarize(
    runs: list[RunData],
    threshold: float | None = None,
    consecutive: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """The report's numbers for one group of runs (seeds of one configuration)."""
    strata = [r.env for r in runs]
    finals = np.array([r.evals[-1]["mean_return"] for r in runs], dtype=float)
    thresholds = [threshold if threshold is not None else r.meta.get("threshold") for r in runs]
    steps = []
    for r, thr in zip(runs, thresholds, strict=True):
        s, m = r.curve()
        hit = steps_to_threshold(s, m, thr, consecutive) if thr is not None else None
        steps.append(float(hit) if hit is not None else math.inf)
    steps_arr = np.array(steps)
    real = [sum(m.get("real_transitions", 0) for m in r.metrics) for r in runs]
    imagined = [sum(m.get("imagined_transitions", 0) for m in r.metrics) for r in runs]
    walls = [r.evals[-1].get("train_wall_s", math.nan) for r in runs]
    return {
        "runs": len(runs),
        "seeds": sorted(r.config.get("seed") for r in runs),
        "env": sorted(set(strata)),
        "threshold": thresholds[0],
        "final_return": finals.tolist(),
        "final_median": float(median(finals)),
        "final_median_ci": stratified_bootstrap_ci(finals, strata, median, seed=seed),
        "final_iqm": float(iqm(finals)),
        "final_iqm_ci": stratified_bootstrap_ci(finals, strata, iqm, seed=seed),
        "steps_to_threshold": steps,
        "steps_median": float(median(steps_arr)),
        "steps_median_ci": stratified_bootstrap_ci(steps_arr, strata, median, seed=seed),
        "solved_fraction": float(np.isfinite(steps_arr).mean()),
        "imagined_per_real": float(np.sum(imagined) / np.sum(real)) if np.sum(real) else 0.0,
        "wall_s_median": float(np.nanmedian(walls)),
        "env_steps_median": float(np.median([r.evals[-1]["env_steps"] for r in runs])),
    }


def _fmt_steps(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{x:,.0f}"


def _fmt_ret(x: float) -> str:
    return f"{x:.1f}"


def markdown_table(summaries: dict[str, dict[str, Any]]) -> str:
    head = (
        "| group | runs | final return, median [95% CI] | final return, IQM [95% CI] | "
        "real steps to threshold, median [95% CI] | solved | imagined / real | train wall s |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for name, s in summaries.items():
        lo, hi = s["final_median_ci"]
        ilo, ihi = s["final_iqm_ci"]
        slo, shi = s["steps_median_ci"]
        rows.append(
            f"| `{name}` | {s['runs']} | {_fmt_ret(s['final_median'])} "
            f"[{_fmt_ret(lo)}, {_fmt_ret(hi)}] | {_fmt_ret(s['final_iqm'])} "
            f"[{_fmt_ret(ilo)}, {_fmt_ret(ihi)}] | {_fmt_steps(s['steps_median'])} "
            f"[{_fmt_steps(slo)}, {_fmt_steps(shi)}] | "
            f"{round(s['solved_fraction'] * s['runs'])}/{s['runs']} | "
            f"{s['imagined_per_real']:.2f} | {s['wall_s_median']:.0f} |"
        )
    return head + "\n".join(rows) + "\n"


# ----------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------


def _on_grid(xs: list[np.ndarray], ys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Curves of several runs on the union of their x values (each holds its last value; NaN
    before its first point and after its last), as ``[runs, points]``."""
    grid = np.unique(np.concatenate(xs))
    out = np.full((len(xs), len(grid)), np.nan)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        idx = np.searchsorted(x, grid, side="right") - 1
        inside = (idx >= 0) & (grid <= x[-1])
        out[i, inside] = y[idx[inside]]
    return grid, out


def _band(ax: Axes, grid: np.ndarray, values: np.ndarray, label: str, color: Any) -> None:
    """The median of ``values`` (``[runs, points]``) over ``grid`` with the interquartile band; each
    point is marked on a short curve, and a one-point curve (one evaluation) is a dot with an
    interquartile bar, which a line or a band would not show."""
    with np.errstate(all="ignore"):
        valid = np.isfinite(values).any(0)
        if not valid.any():
            return
        q25, med, q75 = np.nanpercentile(values[:, valid], [25, 50, 75], axis=0)
    _curve(ax, grid[valid], med, (q25, q75), label, color)


def _curve(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    band: tuple[np.ndarray, np.ndarray] | None,
    label: str,
    color: Any,
) -> None:
    """A line through ``(x, y)`` with a shaded ``band`` (low, high): markers when the points are
    few, an error bar for the band when there is a single point."""
    marker = "o" if len(x) <= MARKED_POINTS else None
    ax.plot(x, y, label=label, color=color, lw=1.6, marker=marker, ms=5 if len(x) == 1 else 3)
    if band is None:
        return
    low, high = band
    if len(x) == 1:
        ax.errorbar(x, y, yerr=[y - low, high - y], color=color, lw=1.2, capsize=4)
    else:
        ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)


def _metric_curves(runs: list[RunData], key: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    xs, ys = [], []
    for r in runs:
        if key == "beta" and r.config.get("curiosity.name") == "none":
            continue  # β is adapted and logged, but nothing reads it
        rows = [m for m in r.metrics if m.get(key) is not None]
        if rows:
            xs.append(np.array([m["env_steps"] for m in rows], dtype=float))
            ys.append(np.array([m[key] for m in rows], dtype=float))
    return xs, ys


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure drawn by the non-interactive Agg backend outside pyplot: no global backend is
    switched in the process that draws it (a training run), and nothing has to be closed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)
    return fig, list(axes[0])


def _colors() -> list[Any]:
    import matplotlib

    return list(matplotlib.color_sequences["tab10"])


def _wrap(label: str, width: int = LEGEND_WIDTH) -> str:
    """A long group name over lines of at most ``width`` characters, broken after the commas
    between its ``key=value`` parts (not those inside a list value); a longer part keeps a line of
    its own."""
    lines: list[str] = []
    for part in re.split(r",(?![^\[]*\])", label):
        if lines and len(lines[-1]) + 1 + len(part) <= width:
            lines[-1] += "," + part
        else:
            lines.append(part)
    return ",\n".join(lines)


def _legend_below(fig: Figure, axes: list[Axes]) -> None:
    """One legend for the figure's curves, hanging below it: however many and however long the
    group names, it covers no curve, and :func:`_save` keeps all of it in the image."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if not entries:
        return
    labels = [_wrap(label) for label in entries]
    longest = max(len(line) for label in labels for line in label.splitlines())  # ~18 an inch
    fig.tight_layout()  # first: the legend goes under the laid-out axes, outside the figure
    fig.legend(
        list(entries.values()),
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=max(1, min(len(labels), int(fig.get_figwidth() * 18) // (longest + 8))),
        fontsize=7,
        frameon=False,
    )


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG, cut to what is drawn (the legend below the axes
    included), atomically: a temporary file in the same directory, then a rename, so a reader
    never sees half an image."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _count(n: int, noun: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def plot_learning_curves(groups: dict[str, list[RunData]], path: Path, title: str = "") -> Path:
    fig, (ax,) = _figure(7, 4.2)
    colors = _colors()
    threshold = None
    for i, (name, runs) in enumerate(groups.items()):
        grid, values = _on_grid(*zip(*(r.curve() for r in runs), strict=True))
        _band(ax, grid, values, f"{name} ({_count(len(runs), 'run')})", colors[i % len(colors)])
        if threshold is None:
            threshold = runs[0].meta.get("threshold")
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=0.8, label=f"threshold {threshold:g}")
    ax.set_xlabel("real environment steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(title or "evaluation return: median and interquartile range over seeds")
    ax.grid(alpha=0.3)
    _legend_below(fig, [ax])
    return _save(fig, path)


def plot_adaptive(groups: dict[str, list[RunData]], path: Path) -> Path | None:
    """The adaptive mechanisms over real steps; None when no run logged them (PPO)."""
    keys = [
        (k, t) for k, t in ADAPTIVE_KEYS if any(_metric_curves(g, k)[0] for g in groups.values())
    ]
    if not keys:
        return None
    fig, axes = _figure(3.6 * len(keys), 3.2, ncols=len(keys))
    colors = _colors()
    for ax, (key, title) in zip(axes, keys, strict=True):
        for i, (name, runs) in enumerate(groups.items()):
            xs, ys = _metric_curves(runs, key)
            if xs:
                _band(ax, *_on_grid(xs, ys), name, colors[i % len(colors)])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("real steps", fontsize=8)
        ax.grid(alpha=0.3)
    _legend_below(fig, axes)
    return _save(fig, path)


def plot_samples(groups: dict[str, list[RunData]], path: Path) -> Path | None:
    """Cumulative real and imagined transitions over real steps; None without imagination."""
    if not any(_metric_curves(g, "imagined_transitions")[0] for g in groups.values()):
        return None
    fig, (ax,) = _figure(6, 4)
    colors = _colors()
    top = 0.0
    for i, (name, runs) in enumerate(groups.items()):
        xs, ys = _metric_curves(runs, "imagined_transitions")
        if xs:
            _band(
                ax,
                *_on_grid(xs, [np.cumsum(y) for y in ys]),
                f"{name}: imagined",
                colors[i % len(colors)],
            )
            top = max(top, max(x[-1] for x in xs))
    ax.plot([0, top], [0, top], color="black", lw=1.2, ls="--", label="real")
    ax.set_xlabel("real environment steps")
    ax.set_ylabel("cumulative transitions")
    ax.set_title("real vs imagined samples (median, IQR over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(fig, [ax])
    return _save(fig, path)


def plot_run(run_dir: Path) -> Path | None:
    """One run's ``learning_curve.png`` in ``run_dir``: the evaluation mean return (± its standard
    deviation over the evaluation episodes, where ``eval.jsonl`` holds it) over real environment
    steps, with the solve threshold dashed where the meta row has one; titled with the run's
    algorithm, environment and seed. None, and nothing written, before the first evaluation.
    Quick enough to end every training run."""
    run_dir = Path(run_dir)
    if not (run_dir / "eval.jsonl").is_file():
        return None
    rows = read_jsonl(run_dir / "eval.jsonl")
    meta = next((r for r in rows if r.get("meta")), {})
    evals = [r for r in rows if not r.get("meta")]
    if not evals:
        return None
    config = _read_config(run_dir) if (run_dir / "config.yaml").is_file() else {}
    steps = np.array([e["env_steps"] for e in evals], dtype=float)
    mean = np.array([e["mean_return"] for e in evals], dtype=float)
    band = None
    if all(e.get("std_return") is not None for e in evals):
        std = np.array([e["std_return"] for e in evals], dtype=float)
        band = (mean - std, mean + std)

    fig, (ax,) = _figure(6, 3.6)
    label = "mean return" if band is None else "mean return ± std over episodes"
    _curve(ax, steps, mean, band, label, _colors()[0])
    if meta.get("threshold") is not None:
        threshold = float(meta["threshold"])
        ax.axhline(threshold, color="grey", ls="--", lw=0.8, label=f"threshold {threshold:g}")
    ax.set_xlabel("real environment steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(_run_title(config, meta), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, run_dir / "learning_curve.png")


def _run_title(config: dict[str, Any], meta: dict[str, Any]) -> str:
    """``mbppo on CartPole-v1, seed 0``, from the config (the meta row where it lacks a key)."""
    algo = config.get("algo.name", meta.get("method", "?"))
    env = config.get("env", meta.get("env_id", "?"))
    seed = config.get("seed", meta.get("seed", "?"))
    return f"{algo} on {env}, seed {seed}"


# ----------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------


def write_report(
    paths: Sequence[Path | str],
    out_dir: Path | str,
    title: str = "Comparison report",
    threshold: float | None = None,
    consecutive: int = 3,
) -> Path:
    """Read the runs below ``paths``; write report.md, report.json and the figures to ``out_dir``."""
    runs = find_runs(paths)
    if not runs:
        below = ", ".join(str(p) for p in paths)
        raise FileNotFoundError(f"no run directories (config.yaml + eval.jsonl) below {below}")
    if (problem := unwritable(out_dir)) is not None:
        raise ValueError(f"{problem} (choose another folder with --out)")
    groups = group_runs(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries = {name: summarize(g, threshold, consecutive) for name, g in groups.items()}
    figures = [
        plot_learning_curves(groups, out / "learning_curves.png", title),
        plot_adaptive(groups, out / "adaptive.png"),
        plot_samples(groups, out / "samples.png"),
    ]
    thr = next(iter(summaries.values()))["threshold"]
    lines = [
        f"# {title}",
        "",
        _intro(runs, groups, thr, consecutive),
        "",
        markdown_table(summaries),
    ]
    lines += [f"![{f.stem}]({f.name})" for f in figures if f is not None]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    report = {"title": title, "sources": [str(p) for p in paths], "groups": summaries}
    (out / "report.json").write_text(json.dumps(_finite_or_null(report), indent=1))
    return out / "report.md"


def _intro(
    runs: list[RunData], groups: dict[str, list[RunData]], threshold: float | None, consecutive: int
) -> str:
    """The paragraph above the table: what was compared, and how to read the numbers."""
    envs = ", ".join(sorted({r.env for r in runs}))
    target = f"threshold {threshold:g}" if threshold is not None else "no threshold"
    return (
        f"{_count(len(runs), 'run')} in {_count(len(groups), 'group')} ({envs}); {target} for "
        f"{_count(consecutive, 'evaluation')} in a row. Intervals: 95% percentile bootstrap over "
        "seeds, stratified by environment (2,000 resamples). IQM: mean of the middle 50% of runs. "
        "`never`: the run did not reach the threshold within its budget."
    )


def _finite_or_null(x: Any) -> Any:
    """JSON has no inf: a run that never reached the threshold is ``null`` there."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite_or_null(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_null(v) for v in x]
    return x


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be an integer >= 1")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mbrl_ai.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run or sweep directories")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: first dir)")
    parser.add_argument("--title", default="Comparison report")
    parser.add_argument("--threshold", type=float, default=None, help="default: the env's")
    parser.add_argument(
        "--consecutive", type=_positive_int, default=3, help="evaluations in a row (>= 1)"
    )
    args = parser.parse_args(argv)
    tuning = [d for d in args.dirs if is_tuning_sweep(d)]
    if tuning:  # a tuning sweep has a report of its own
        if len(args.dirs) > 1:
            print(f"error: {tuning[0]} is a tuning sweep: report it alone", file=sys.stderr)
            return 2
        try:
            path = write_tuning_report(tuning[0], args.out or tuning[0])
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(path)
        return 0
    try:
        path = write_report(
            args.dirs,
            args.out or args.dirs[0],
            args.title,
            args.threshold,
            args.consecutive,
        )
    except (FileNotFoundError, ValueError) as exc:  # a missing folder, a damaged log line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
