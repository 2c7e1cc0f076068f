"""When the world changes: MB-PPO with the trust gate against PPO and fixed imagination.

For each condition one invocation trains every arm on the same seeds. A change sets attributes of
the environment at a real step each seed draws from a range (``env_change.at=[lo,hi]``, the same
draw for every arm of a seed), so no setting can be tuned to one moment. Every arm learns at a
constant learning rate (``ppo.anneal_lr=false``) for the same real-step budget.

Arms (per environment family, the MB arms built on the family's replay preset):

- ``ppo``: the family's PPO preset (``ppo_cartpole_hand``, ``ppo_pendulum``): the model-free twin;
- ``fixed``: the replay preset (``mbppo_cartpole_replay``, ``mbppo_pendulum_replay``): its fixed
  count and depth (H = 20), the best fixed setting of experiments/adaptive_imagination;
- ``fixed_forget``: ``fixed`` whose replay forgets all but the newest batch when the measured
  20-step error jumps 10× over its recent median (``world_model.forget_factor=10``);
- ``adaptive``: the family's adaptive preset as it ships (``mbppo_adaptive_cartpole``,
  ``mbppo_adaptive_pendulum``): ``fixed`` with the trust gate (``trust.gate=true``, every other
  trust key at its default: one setting for every condition);
- ``adaptive_keep_model`` / ``adaptive_keep_policy``: ablations: on a change the world model
  keeps its weights (``trust.reset_model=false``) / the actor and critic keep theirs
  (``trust.restart_policy=false``);
- ``adaptive_ramp`` / ``adaptive_warm``: variants: imagination comes back over 4 iterations after a
  change (``trust.ramp=4``) / the model starts over only when the policy's returns fell with the
  change, and is otherwise refitted on the new data (``trust.reset_model_on=policy_drop``);
- ``adaptive_robust``: the change test compares 1-step errors, against the known error floored at
  its recent median (``trust.horizon=1 trust.reference=floor``).

Measured per run: real steps to solve before the change (the first of three evaluations in a row
at the threshold), and **real steps after the change until three evaluations in a row at the
threshold, all after the change** (the re-solve). A run ends once re-solved, or at its budget.
IQM and median over seeds, 95% stratified-bootstrap intervals (``mbrl_ai.core.stats``).

    python experiments/nonstationary/run.py --conditions cartpole_reversal --seeds 10 --jobs 2
    python experiments/nonstationary/run.py --from-json          # tables and figures again

Runs append to ``partial.jsonl`` as they end; a second invocation skips the (condition, arm,
seed) cells already there, so an interrupted study goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CONSTANT_LR = ["ppo.anneal_lr=false"]
FAMILIES: dict[str, dict[str, Any]] = {
    "cartpole": {
        "ppo": ["experiment=ppo_cartpole_hand"],
        "mb": ["experiment=mbppo_cartpole_replay"],
        "adaptive": ["experiment=mbppo_adaptive_cartpole"],
        "threshold": 475.0,
        "at": (8_000, 16_000),
        "after": 30_000,  # budget after the latest possible change
        "eval_every": 1024,
        "stationary_budget": 30_000,
    },
    "pendulum": {
        "ppo": ["experiment=ppo_pendulum", "eval_every=2048"],
        "mb": ["experiment=mbppo_pendulum_replay"],
        "adaptive": ["experiment=mbppo_adaptive_pendulum"],
        "threshold": -200.0,
        "at": (24_000, 40_000),
        "after": 80_000,
        "eval_every": 2048,
        "stationary_budget": 120_000,
    },
}
# condition -> (family, attributes set at the change; None: stationary)
CONDITIONS: dict[str, tuple[str, dict[str, float] | None]] = {
    "cartpole_stationary": ("cartpole", None),
    "cartpole_reversal": ("cartpole", {"force_mag": -10.0}),
    "cartpole_length": ("cartpole", {"length": 1.0}),
    "pendulum_stationary": ("pendulum", None),
    "pendulum_gravity": ("pendulum", {"g": 5.0}),
    # held out: added after the trust gate's design was fixed, run once
    "cartpole_heavy_pole": ("cartpole", {"masspole": 1.0}),
    "pendulum_heavy": ("pendulum", {"m": 1.5}),
    # held out too: added with adaptive_warm (before any run of it), run once
    "cartpole_weak_push": ("cartpole", {"force_mag": 5.0}),
    "cartpole_heavy_cart": ("cartpole", {"masscart": 3.0}),
}
ARMS: dict[str, list[str]] = {
    "ppo": [],
    "fixed": [],
    "fixed_forget": ["world_model.forget_factor=10"],
    "adaptive": [],  # the family's mbppo_adaptive_* preset (the trust gate on), as it ships
    # ablations of the adaptive preset: what happens on a change, one piece at a time
    "adaptive_keep_model": ["trust.reset_model=false"],
    "adaptive_keep_policy": ["trust.restart_policy=false"],
    # a variant: imagination comes back over 4 iterations after a forget (trust.ramp)
    "adaptive_ramp": ["trust.ramp=4"],
    # a variant: the model starts over only when the policy's returns fell with the change
    "adaptive_warm": ["trust.reset_model_on=policy_drop"],
    # a variant: the change test on 1-step errors, against a floored reference (trust.horizon,
    # trust.reference): no surprise from a batch the model predicts almost perfectly
    "adaptive_robust": ["trust.horizon=1", "trust.reference=floor"],
}
TRACE = (
    "env_steps",
    "trust/gate",
    "imagined_transitions",
    "model/trust_surprise",
    "model/forgot",
    "trust/policy_restarted",
)


def overrides(condition: str, arm: str, seed: int) -> list[str]:
    family, change = CONDITIONS[condition]
    f = FAMILIES[family]
    if arm == "ppo":
        base = f["ppo"]
    elif arm.startswith("adaptive"):
        base = [*f["adaptive"], *ARMS[arm]]
    else:
        base = [*f["mb"], *ARMS[arm]]
    if change is None:
        budget, change_keys = f["stationary_budget"], []
    else:
        lo, hi = f["at"]
        budget = hi + f["after"]
        change_keys = [f"env_change.at=[{lo},{hi}]"]
        change_keys += [f"+env_change.set.{k}={v}" for k, v in change.items()]
    return [
        *base,
        *CONSTANT_LR,
        *change_keys,
        f"seed={seed}",
        f"total_timesteps={budget}",
        f"eval_every={f['eval_every']}",
        "logger.progress=off",
        "checkpoint_every=0",
    ]


def solved_at(steps: list[int], means: list[float], after: int, threshold: float) -> float:
    """First of three evaluations in a row ≥ threshold, all at or after ``after``; inf if none."""
    run = 0
    for i, (s, m) in enumerate(zip(steps, means, strict=True)):
        run = run + 1 if (s >= after and m >= threshold) else 0
        if run == 3:
            return float(steps[i - 2])
    return math.inf


def train_one(job: tuple[str, str, int, str]) -> dict[str, Any]:
    import torch

    from mbrl_ai.core.utils import read_jsonl
    from mbrl_ai.train import compose_config

    sys_path_benchlib()
    from benchlib import train_until

    condition, arm, seed, runs_dir = job
    torch.set_num_threads(1)
    family, change = CONDITIONS[condition]
    threshold = FAMILIES[family]["threshold"]
    ovr = overrides(condition, arm, seed)
    cfg = compose_config(ovr)
    at = cfg.env_change.step(seed) if change else 0
    # the change acts at the first iteration that starts at or after the drawn step
    batch = cfg.n_real_steps
    effective = -(-at // batch) * batch if change else 0
    out = Path(runs_dir) / condition / arm / f"seed={seed}"

    def solved(run: Any) -> bool:
        steps = [e["env_steps"] for e in run.evals]
        means = [e["mean_return"] for e in run.evals]
        return math.isfinite(solved_at(steps, means, effective + 1, threshold))

    result = train_until(cfg, out, solved)
    metrics = read_jsonl(out / "metrics.jsonl")
    steps = [e["env_steps"] for e in result.evals]
    means = [e["mean_return"] for e in result.evals]
    horizon = max(
        (
            int(k.rsplit("_", 1)[1])
            for m in metrics
            for k in m
            if k.startswith("model/open_loop_mse_")
        ),
        default=0,
    )
    trace = [{k: m.get(k) for k in TRACE} for m in metrics]
    for t, m in zip(trace, metrics, strict=True):
        t["error"] = m.get(f"model/open_loop_mse_{horizon}")
    first = solved_at(steps, means, 0, threshold)
    again = solved_at(steps, means, effective + 1, threshold)
    return {
        "condition": condition,
        "arm": arm,
        "seed": seed,
        "overrides": ovr,
        "change_at": effective if change else None,
        "steps": steps,
        "means": means,
        "first_solved": first if first < effective or not change else math.inf,
        "resolve": again - effective if change else first,
        "env_steps": result.env_steps,
        "train_seconds": result.train_seconds,
        "real": sum(m.get("real_transitions", 0) for m in metrics),
        "imagined": sum(m.get("imagined_transitions", 0) for m in metrics),
        "trace": pack_trace([{k: _round(v) for k, v in t.items()} for t in trace]),
    }


def pack_trace(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Per-iteration rows as columns (one list per key, null where a row lacks it): the keys are
    written once, not once per iteration, which keeps the raw records small."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {k: [row.get(k) for row in rows] for k in keys}


def trace_rows(trace: dict[str, list[Any]] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a packed trace (a list of rows, as older records hold, is returned as is);
    a key whose value is null in a row is left out of it."""
    if isinstance(trace, list):
        return trace
    n = max((len(v) for v in trace.values()), default=0)
    return [{k: v[i] for k, v in trace.items() if v[i] is not None} for i in range(n)]


def sys_path_benchlib() -> None:
    import sys

    sys.path.insert(0, str(HERE.parent))


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.3g}") if math.isfinite(value) else value
    return value


# ---------------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------------


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    sys_path_benchlib()
    from mbrl_ai.core.stats import iqm, median, stratified_bootstrap_ci

    table: dict[str, dict[str, dict[str, Any]]] = {}
    for condition in CONDITIONS:
        rows = [r for r in records if r["condition"] == condition]
        if not rows:
            continue
        table[condition] = {}
        ppo = [r["resolve"] for r in rows if r["arm"] == "ppo"]
        ppo_iqm = float(iqm(np.array(ppo))) if ppo else math.nan
        for arm in ARMS:
            runs = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["seed"])
            if not runs:
                continue
            steps = np.array([r["resolve"] for r in runs], dtype=float)
            strata = [condition] * len(runs)
            value = float(iqm(steps))
            table[condition][arm] = {
                "seeds": [r["seed"] for r in runs],
                "steps": steps.tolist(),
                "iqm": value,
                "iqm_ci": stratified_bootstrap_ci(steps, strata, iqm),
                "median": float(median(steps)),
                "solved": int(np.isfinite(steps).sum()),
                "x_ppo": value / ppo_iqm if ppo_iqm and math.isfinite(ppo_iqm) else math.nan,
                "imagined_per_real": sum(r["imagined"] for r in runs)
                / max(1, sum(r["real"] for r in runs)),
                "s_per_1k": 1000
                * float(np.median([r["train_seconds"] / r["env_steps"] for r in runs])),
                "solved_before": sum(math.isfinite(r["first_solved"]) for r in runs),
            }
    return table


def _fmt(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{x:,.0f}"


def markdown(table: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = []
    for condition, arms in table.items():
        changed = CONDITIONS[condition][1] is not None
        what = "real steps after the change to re-solve" if changed else "real steps to solve"
        lines += [
            f"### {condition}",
            "",
            f"| arm | solved | {what}: IQM [95% CI] | median | × PPO's IQM | "
            "solved before the change | imagined / real | s per 1k real steps |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for arm, s in arms.items():
            n = len(s["steps"])
            lo, hi = s["iqm_ci"]
            ratio = "-" if not math.isfinite(s["x_ppo"]) else f"{s['x_ppo']:.2f}"
            before = f"{s['solved_before']}/{n}" if changed else "-"
            lines.append(
                f"| `{arm}` | {s['solved']}/{n} | {_fmt(s['iqm'])} [{_fmt(lo)}, {_fmt(hi)}] | "
                f"{_fmt(s['median'])} | {ratio} | {before} | {s['imagined_per_real']:.1f} | "
                f"{s['s_per_1k']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# figure
# ---------------------------------------------------------------------------------------------


def plot(records: list[dict[str, Any]], condition: str, path: Path) -> None:
    """Return, imagined share and the model's 20-step error against real steps since the change
    (median over seeds), the change at 0, PPO beside the MB arms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in records if r["condition"] == condition]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    f = FAMILIES[CONDITIONS[condition][0]]
    first = -f["at"][0] if CONDITIONS[condition][1] else 0
    last = f["after"] if CONDITIONS[condition][1] else f["stationary_budget"]
    grid = np.arange(first, last + 1, 128)

    def on_grid(x: np.ndarray, y: np.ndarray, hold: bool = False) -> np.ndarray:
        ok = np.isfinite(y)
        if not ok.any():
            return np.full(grid.shape, np.nan)
        end = y[ok][-1] if hold else np.nan
        return np.interp(grid, x[ok], y[ok], left=np.nan, right=end)

    palette = ("k", "tab:blue", "tab:purple", "tab:red", "tab:orange", "tab:olive", "tab:cyan",
               "tab:brown", "tab:pink", "tab:gray")  # fmt: skip
    for arm, color in zip(ARMS, palette, strict=False):  # (more arms than colours: not drawn)
        runs = [r for r in rows if r["arm"] == arm]
        if not runs:
            continue
        curves: dict[str, list[np.ndarray]] = {"ret": [], "share": [], "err": []}
        for r in runs:
            zero = r["change_at"] or 0
            x = np.array(r["steps"]) - zero
            # a run that ended re-solved holds its last evaluation to the end of the budget
            curves["ret"].append(on_grid(x, np.array(r["means"], dtype=float), hold=True))
            t = [u for u in trace_rows(r["trace"]) if u.get("env_steps") is not None]
            tx = np.array([u["env_steps"] for u in t]) - zero
            if arm != "ppo" and len(t) > 1:
                real = np.diff(np.concatenate([[0], [u["env_steps"] for u in t]]))
                im = np.array([u.get("imagined_transitions", 0) for u in t], dtype=float)
                curves["share"].append(on_grid(tx, im / (im + real)))
                err = np.array([u.get("error", np.nan) for u in t], dtype=float)
                curves["err"].append(on_grid(tx, err))
        for ax, key in zip(axes, ("ret", "share", "err"), strict=True):
            if curves[key]:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    ax.plot(grid, np.nanmedian(np.array(curves[key]), 0), color=color, label=arm)
    for ax, label in zip(axes, ("evaluation return", "imagined share of PPO's batch",
                                "model's 20-step error on new data"), strict=True):  # fmt: skip
        ax.axvline(0, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("real steps since the change" if CONDITIONS[condition][1] else "real steps")
        ax.set_ylabel(label)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"{condition}: median over seeds (a run ends once re-solved; its return is held after)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=None, help="run directories (kept)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--from-json", action="store_true", help="only redo tables and figures")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / "partial.jsonl"
    done = (
        [json.loads(line) for line in partial.read_text().splitlines() if line.strip()]
        if partial.exists()
        else []
    )
    if not args.from_json:
        have = {(r["condition"], r["arm"], r["seed"]) for r in done}
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        with tempfile.TemporaryDirectory() as tmp:
            jobs = [
                (c, a, s, str(args.runs or tmp))
                for c in args.conditions
                for s in seeds
                for a in args.arms
                if (c, a, s) not in have
            ]
            with ProcessPoolExecutor(args.jobs) as pool, partial.open("a") as f:
                for future in as_completed([pool.submit(train_one, job) for job in jobs]):
                    record = future.result()
                    done.append(record)
                    f.write(json.dumps(record) + "\n")
                    f.flush()
                    print(
                        record["condition"],
                        record["arm"],
                        record["seed"],
                        record["resolve"],
                        flush=True,
                    )
    table = summarise(done)
    text = markdown(table)
    (args.out / "results.md").write_text(text)
    for condition in table:
        plot(done, condition, args.out / f"{condition}.png")
    print(text)


if __name__ == "__main__":
    main()
