"""Adaptive imagination against the best fixed setting, per condition, on the CartPole family.

For each condition (stationary CartPole-v1, a mid-run change of the pole's length, a mid-run
reversal of the push force, process noise on one half of the track, observation noise) one
invocation trains, on the same seeds:

- ``ppo``: tuned PPO (``experiment=ppo_cartpole_hand``), no imagination;
- ``fixed_h{1,3,5,10,20}``: the MB-PPO preset ``experiment=mbppo_cartpole_replay`` with a fixed
  rollout count and depth H; ``fixed_h20_small``: a quarter of the rollouts;
- ``breadth``: the rollout count follows the open-loop confidence (H = 20);
- ``breadth_skill``: the same with the confidence relative to predicting no change;
- ``steve``: each rollout's depth (≤ 20) is the least-variance horizon (``imagine.py``);
- ``steve_breadth``: both;
- ``forget_h20``: fixed H = 20, but a jump of the measured open-loop error (10× its recent median)
  makes the model's replay forget all but the newest batch; ``fixed_h20_recent``: its fixed
  counterpart, a replay of the newest 2,048 real transitions.

Reported per arm: real steps to solve (first of three evaluations in a row with mean ≥ 475; in
the shift and reversal conditions the first of them must come after the change), IQM and median
over seeds with 95% stratified-bootstrap intervals (``mbrl_ai.core.stats``, as ``mbrl_ai.report``
computes them), the share solved, imagined per real transition, and training seconds per 1k real
steps (as a ratio to PPO's in the same invocation). For every MB arm, the Spearman rank
correlation over iterations between the confidence it used and minus the model's H-step error
measured one iteration later on real data it had not seen (and the same for the held-out one-step
confidence of the pseudocode), median over seeds: +1 means the confidence falls exactly when the
coming error rises. Every run ends once solved, or at its preset's ``total_timesteps`` (the
learning rate anneals over it): 50,000 real steps for PPO, 12,000 for MB-PPO.

    python experiments/adaptive_imagination/run.py --seeds 10 --jobs 2
    python experiments/adaptive_imagination/run.py --conditions shift --arms ppo fixed_h5 breadth
    python experiments/adaptive_imagination/run.py --from-json        # tables and figure again

Run directories go to ``--runs`` (default: a temporary folder); ``results.json``, ``results.md``
and ``signals.png`` next to this file, or under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import train_until  # noqa: E402

HERE = Path(__file__).resolve().parent
SHIFT_AT = 1536
CONDITIONS: dict[str, list[str]] = {
    "stationary": ["env=CartPole-v1"],
    "shift": [
        "env=mbrl_ai/CartPoleShift-v1",
        f"+env_kwargs.at={SHIFT_AT}",
        "+env_kwargs.length=0.25",
    ],
    # the actuator reverses: the old model and the old policy are both wrong (blocking-maze-like)
    "reversal": [
        "env=mbrl_ai/CartPoleShift-v1",
        f"+env_kwargs.at={SHIFT_AT}",
        "+env_kwargs.length=0.5",
        "+env_kwargs.force_mag=-10",
    ],
    # at scale 0.05 no arm solved within its budget (7 seeds tried): the threshold is out of reach
    "noisy": ["env=mbrl_ai/CartPoleNoisy-v1", "+env_kwargs.scale=0.01"],
    "obs_noise": ["env=mbrl_ai/CartPoleObsNoise-v1", "+env_kwargs.scale=0.02"],
}
MB = ["experiment=mbppo_cartpole_replay"]
OPEN_LOOP = ["world_model.confidence=open_loop"]
ARMS: dict[str, list[str]] = {
    "ppo": ["experiment=ppo_cartpole_hand"],
    **{
        f"fixed_h{h}": [*MB, "imagination.mode=fixed", f"planning_horizon={h}"]
        for h in (1, 3, 5, 10, 20)
    },
    "fixed_h20_small": [
        *MB,
        "imagination.mode=fixed",
        "planning_horizon=20",
        "max_planning_rollouts=32",
    ],
    "breadth": [*MB, *OPEN_LOOP, "imagination.mode=breadth", "planning_horizon=20"],
    "breadth_skill": [
        *MB,
        "world_model.confidence=open_loop_skill",
        "imagination.mode=breadth",
        "planning_horizon=20",
    ],
    "steve": [*MB, "imagination.mode=steve", "imagination.max_horizon=20"],
    # adaptive data: a jump of the measured open-loop error makes the model's replay forget
    "forget_h20": [
        *MB,
        "imagination.mode=fixed",
        "planning_horizon=20",
        "world_model.forget_factor=10",
    ],
    # its fixed counterpart: the model only ever sees the newest 2,048 real transitions
    "fixed_h20_recent": [
        *MB,
        "imagination.mode=fixed",
        "planning_horizon=20",
        "world_model.replay_capacity=2048",
    ],
    "steve_breadth": [
        *MB,
        *OPEN_LOOP,
        "imagination.mode=steve_breadth",
        "imagination.max_horizon=20",
    ],
}
ADAPTIVE = ("breadth", "breadth_skill", "steve", "steve_breadth", "forget_h20")
TRACE_KEYS = (
    "env_steps",
    "confidence",
    "model/heldout_confidence",
    "imagined_rollouts",
    "imagined_mean_depth",
    "imagined_transitions",
    "value_var",
)


# what results.json keeps of each iteration: the confidences and the measured error (for ρ and
# the drop lag), and the rollout count of the arms the figure draws
KEPT_TRACE = ("env_steps", "confidence", "model/heldout_confidence", "open_loop_error")
FIGURE_ARMS = ("breadth", "breadth_skill", "steve_breadth")


def _compact(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run's trace cut to what the tables and the figure read (none for PPO), its floats
    to 3 significant digits; every other field as it is."""

    def slim(r: dict[str, Any]) -> list[dict[str, Any]]:
        keys = KEPT_TRACE + (("imagined_rollouts",) if r["arm"] in FIGURE_ARMS else ())
        trace = [] if r["arm"] == "ppo" else r["trace"]
        return [{k: _round(t[k]) for k in keys if t.get(k) is not None} for t in trace]

    return [{**r, "trace": slim(r)} for r in records]


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.3g}") if math.isfinite(value) else value
    if isinstance(value, list):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def first_valid_step(condition: str) -> int:
    """Evaluations before this real step do not count towards solving."""
    return SHIFT_AT if condition in ("shift", "reversal") else 0


def solved_at(steps: list[int], means: list[float], after: int, threshold: float = 475.0) -> float:
    """First of three evaluations in a row ≥ threshold, all at or after ``after``; inf if none."""
    run = 0
    for i, (s, m) in enumerate(zip(steps, means, strict=True)):
        run = run + 1 if (s >= after and m >= threshold) else 0
        if run == 3:
            return float(steps[i - 2])
    return math.inf


def train_one(job: tuple[str, str, int, int | None, str]) -> dict[str, Any]:
    import torch

    from mbrl_ai.core.utils import read_jsonl
    from mbrl_ai.train import compose_config

    condition, arm, seed, budget, runs_dir = job
    torch.set_num_threads(1)
    overrides = [
        *ARMS[arm],
        *CONDITIONS[condition],
        f"seed={seed}",
        *([f"total_timesteps={budget}"] if budget else []),  # else the preset's (its lr schedule)
        "eval_every=1024",
        "logger.progress=off",
        "checkpoint_every=0",
    ]
    cfg = compose_config(overrides)
    out = Path(runs_dir) / condition / arm / f"seed={seed}"
    after = first_valid_step(condition)

    def solved(run: Any) -> bool:
        steps = [e["env_steps"] for e in run.evals]
        return math.isfinite(solved_at(steps, [e["mean_return"] for e in run.evals], after))

    result = train_until(cfg, out, solved)
    metrics = read_jsonl(out / "metrics.jsonl")
    horizon = max(
        (int(k.rsplit("_", 1)[1]) for m in metrics for k in m if k.startswith("model/open_loop")),
        default=0,
    )
    trace = [{k: m.get(k) for k in TRACE_KEYS} for m in metrics]
    for t, m in zip(trace, metrics, strict=True):
        t["open_loop_error"] = m.get(f"model/open_loop_mse_{horizon}")
    steps = [e["env_steps"] for e in result.evals]
    means = [e["mean_return"] for e in result.evals]
    return {
        "condition": condition,
        "arm": arm,
        "seed": seed,
        "overrides": overrides,
        "steps": steps,
        "means": means,
        "solved_at": solved_at(steps, means, after),
        "env_steps": result.env_steps,
        "train_seconds": result.train_seconds,
        "real": sum(m.get("real_transitions", 0) for m in metrics),
        "imagined": sum(m.get("imagined_transitions", 0) for m in metrics),
        "open_loop_horizon": horizon,
        "trace": trace,
    }


# ---------------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------------


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v), dtype=float)
    for value in np.unique(v):  # ties share their average rank
        tie = v == value
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


def rank_correlation(x: list[float], y: list[float]) -> float:
    """Spearman's ρ: the Pearson correlation of the ranks; NaN when either series is constant."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def confidence_tracking(record: dict[str, Any]) -> dict[str, float]:
    """ρ(confidence at t, −(measured H-step error at t + 1)) for the confidence the arm used and
    the held-out one-step confidence (logged by every MB arm): +1 = confidence falls exactly when
    the error the model will make next rises."""
    trace = record["trace"]
    out: dict[str, float] = {}
    for name, key in (("confidence", "confidence"), ("heldout", "model/heldout_confidence")):
        pairs = [
            (a[key], -b["open_loop_error"])
            for a, b in zip(trace, trace[1:], strict=False)
            if a.get(key) is not None and b.get("open_loop_error") is not None
        ]
        if pairs:
            out[name] = rank_correlation([p[0] for p in pairs], [p[1] for p in pairs])
    return out


def drop_lag(record: dict[str, Any], key: str) -> float:
    """Iterations after the change until ``key`` falls to half its level just before (the median
    of the last three iterations on the old dynamics); 0 = in the first iteration whose real data
    come from the new dynamics; inf = not while the run lasted."""
    trace = [t for t in record["trace"] if t.get(key) is not None]
    batch = trace[1]["env_steps"] - trace[0]["env_steps"] if len(trace) > 1 else 0
    before = [t[key] for t in trace if t["env_steps"] <= SHIFT_AT][-3:]
    after = [t[key] for t in trace if t["env_steps"] >= SHIFT_AT + batch]
    if not before or not after:
        return math.nan
    level = float(np.median(before))
    return float(next((i for i, v in enumerate(after) if v <= 0.5 * level), math.inf))


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    from mbrl_ai.core.stats import iqm, median, stratified_bootstrap_ci

    table: dict[str, dict[str, dict[str, Any]]] = {}
    for condition in dict.fromkeys(r["condition"] for r in records):
        table[condition] = {}
        ppo_s = [
            r["train_seconds"] / r["env_steps"]
            for r in records
            if r["condition"] == condition and r["arm"] == "ppo"
        ]
        for arm in ARMS:
            runs = [r for r in records if r["condition"] == condition and r["arm"] == arm]
            if not runs:
                continue
            steps = np.array([r["solved_at"] for r in runs])
            strata = [condition] * len(runs)
            per_step = [r["train_seconds"] / r["env_steps"] for r in runs]
            rho = [confidence_tracking(r) for r in runs] if arm != "ppo" else []
            changed = first_valid_step(condition) > 0 and arm != "ppo"
            lags = {
                name: _nanmedian([drop_lag(r, key) for r in runs]) if changed else None
                for name, key in (
                    ("lag", "confidence"),
                    ("lag_heldout", "model/heldout_confidence"),
                )
            }
            table[condition][arm] = {
                "seeds": [r["seed"] for r in runs],
                "steps": steps.tolist(),
                "iqm": float(iqm(steps)),
                "iqm_ci": stratified_bootstrap_ci(steps, strata, iqm),
                "median": float(median(steps)),
                "median_ci": stratified_bootstrap_ci(steps, strata, median),
                "solved": int(np.isfinite(steps).sum()),
                "imagined_per_real": sum(r["imagined"] for r in runs)
                / max(1, sum(r["real"] for r in runs)),
                "s_per_1k": 1000 * float(np.median(per_step)),
                "wall_vs_ppo": float(np.median(per_step) / np.median(ppo_s)) if ppo_s else None,
                "rho_confidence": _nanmedian([d.get("confidence", math.nan) for d in rho]),
                "rho_heldout": _nanmedian([d.get("heldout", math.nan) for d in rho]),
                **lags,
            }
    return table


def _nanmedian(values: list[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.median(finite)) if finite else None


def _rank(stats: dict[str, Any]) -> tuple[float, float, int]:
    """Best arm first: lowest IQM, then lowest median, then most runs solved."""
    return (stats["iqm"], stats["median"], -stats["solved"])


def _lag(x: float | None) -> str:
    return "-" if x is None else ("never" if not math.isfinite(x) else f"{x:g}")


def _fmt(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{x:,.0f}"


def _ci(lo_hi: tuple[float, float]) -> str:
    return f"[{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]"


def overview(table: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Arms × conditions: real steps to solve, IQM [95% CI] (and runs solved when not all)."""
    conditions = list(table)
    lines = [
        "| arm | " + " | ".join(f"`{c}`" for c in conditions) + " |",
        "|---|" + "---|" * len(conditions),
    ]
    for arm in ARMS:
        cells = []
        for c in conditions:
            x = table[c].get(arm)
            if x is None:
                cells.append("-")
                continue
            n = len(x["steps"])
            solved = "" if x["solved"] == n else f" ({x['solved']}/{n})"
            cells.append(f"{_fmt(x['iqm'])} {_ci(x['iqm_ci'])}{solved}")
        if any(cell != "-" for cell in cells):
            lines.append(f"| `{arm}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(table: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = [overview(table)]
    for condition, arms in table.items():
        fixed = [a for a in arms if a.startswith("fixed")]
        adaptive = [a for a in arms if a in ADAPTIVE]
        best_fixed = min(fixed, key=lambda a: _rank(arms[a])) if fixed else None
        best_adaptive = min(adaptive, key=lambda a: _rank(arms[a])) if adaptive else None
        lines += [
            f"### {condition}",
            "",
            "| arm | solved | real steps to solve: IQM [95% CI] | median [95% CI] | "
            "imagined / real | s per 1k real steps | × PPO's | ρ(conf., −next error) | "
            "ρ(held-out conf., −next error) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for arm, s in arms.items():
            mark = " (best fixed)" if arm == best_fixed else ""
            mark += " (best adaptive)" if arm == best_adaptive else ""
            rho_c = "-" if s["rho_confidence"] is None else f"{s['rho_confidence']:+.2f}"
            rho_h = "-" if s["rho_heldout"] is None else f"{s['rho_heldout']:+.2f}"
            ratio = "-" if s["wall_vs_ppo"] is None else f"{s['wall_vs_ppo']:.1f}"
            lines.append(
                f"| `{arm}`{mark} | {s['solved']}/{len(s['steps'])} | {_fmt(s['iqm'])} "
                f"{_ci(s['iqm_ci'])} | {_fmt(s['median'])} {_ci(s['median_ci'])} | "
                f"{s['imagined_per_real']:.1f} | {s['s_per_1k']:.2f} | {ratio} | {rho_c} | "
                f"{rho_h} |"
            )
        shown = ("fixed_h20", "breadth", "breadth_skill", "steve_breadth")  # the rest: as fixed_h20
        lagged = {a: x for a, x in arms.items() if x.get("lag") is not None and a in shown}
        if lagged:
            lines += [
                "",
                "Iterations after the change until the confidence halves (median over seeds; "
                "the confidence the arm used / the held-out one; `fixed_h20` uses the held-out "
                "one): "
                + "; ".join(
                    f"`{a}` {_lag(x['lag'])} / {_lag(x['lag_heldout'])}" for a, x in lagged.items()
                ),
            ]
        if best_fixed and best_adaptive:
            a, f = arms[best_adaptive], arms[best_fixed]
            if math.isfinite(a["iqm"]) and math.isfinite(f["iqm"]):
                separate = a["iqm_ci"][1] < f["iqm_ci"][0] or f["iqm_ci"][1] < a["iqm_ci"][0]
                verdict = (
                    f"{a['iqm'] / f['iqm']:.2f}; intervals "
                    f"{'do not overlap' if separate else 'overlap'}"
                )
            else:
                verdict = "not comparable: an IQM is never (most runs did not solve)"
            lines += [
                "",
                f"Best adaptive `{best_adaptive}` / best fixed `{best_fixed}` (IQM): {verdict}.",
            ]
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# figure
# ---------------------------------------------------------------------------------------------


def plot_signals(records: list[dict[str, Any]], path: Path) -> None:
    """Per condition: the adaptive arms' signals over real steps (median over seeds) beside the
    measured H-step open-loop error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = list(dict.fromkeys(r["condition"] for r in records))
    fig, axes = plt.subplots(3, len(conditions), figsize=(4.2 * len(conditions), 8), squeeze=False)
    grid = np.arange(256, 20_001, 256)
    for col, condition in enumerate(conditions):
        for arm, color in (
            ("breadth", "tab:blue"),
            ("breadth_skill", "tab:orange"),
            ("steve_breadth", "tab:green"),
        ):
            runs = [r for r in records if r["condition"] == condition and r["arm"] == arm]
            for row, (key, label) in enumerate(
                (
                    ("confidence", "open-loop confidence"),
                    ("open_loop_error", "measured H-step error"),
                    ("imagined_rollouts", "imagined rollouts"),
                )
            ):
                curves = []
                for r in runs:
                    x = [t["env_steps"] for t in r["trace"] if t.get(key) is not None]
                    y = [t[key] for t in r["trace"] if t.get(key) is not None]
                    if x:
                        curves.append(np.interp(grid, x, y, left=np.nan, right=np.nan))
                if not curves:
                    continue
                arr = np.array(curves)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # no run left at a point
                    med = np.nanmedian(arr, 0)
                ax = axes[row, col]
                ax.plot(grid, med, color=color, label=arm)
                if row == 0:
                    held = []
                    for r in runs:
                        x = [t["env_steps"] for t in r["trace"]]
                        y = [t.get("model/heldout_confidence") or np.nan for t in r["trace"]]
                        held.append(np.interp(grid, x, y, left=np.nan, right=np.nan))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # no run left at a point
                        ax.plot(grid, np.nanmedian(np.array(held), 0), ":", color=color,
                                label=f"{arm}: held-out conf.")  # fmt: skip
                ax.set_ylabel(label)
                if key == "open_loop_error":
                    ax.set_yscale("log")
        for row in range(3):
            if condition in ("shift", "reversal"):
                axes[row, col].axvline(SHIFT_AT, color="grey", ls="--", lw=0.8)
            axes[row, col].set_xlim(0, 12_000)
        axes[0, col].set_title(condition)
        axes[2, col].set_xlabel("real steps")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("adaptive signals (median over seeds; runs end once solved)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="real steps if never solved (default: each preset's)",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=None, help="run directories (kept)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--merge", action="store_true", help="add to --out's results.json")
    parser.add_argument("--from-json", action="store_true", help="only redo tables and figure")
    parser.add_argument(
        "--from-partial", action="store_true", help="summarise the runs of an unfinished study"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.json"
    if args.from_json:
        records = json.loads(results.read_text())
    elif args.from_partial:
        lines = (args.out / "partial.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
    else:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        with tempfile.TemporaryDirectory() as tmp:
            runs_dir = str(args.runs or tmp)
            jobs = [
                (c, a, s, args.budget, runs_dir)
                for c in args.conditions
                for s in seeds
                for a in args.arms
            ]
            partial = args.out / "partial.jsonl"  # each run as it ends: an interrupted study
            partial.write_text("")  # can be summarised with --from-partial
            records = []
            with ProcessPoolExecutor(args.jobs) as pool, partial.open("a") as f:
                for record in pool.map(train_one, jobs):
                    records.append(record)
                    f.write(json.dumps(record) + "\n")
                    f.flush()
        if args.merge and results.exists():
            new = {(r["condition"], r["arm"], r["seed"]) for r in records}
            old = json.loads(results.read_text())
            records = [r for r in old if (r["condition"], r["arm"], r["seed"]) not in new] + records
        results.write_text(json.dumps(_compact(records), separators=(",", ":")))
    table = summarise(records)
    text = markdown(table)
    (args.out / "results.md").write_text(text)
    plot_signals(records, args.out / "signals.png")
    print(text)


if __name__ == "__main__":
    main()
