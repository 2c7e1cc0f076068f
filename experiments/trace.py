"""Per-iteration traces: a few columns of runs' ``metrics.jsonl`` as one small CSV.

The studies' READMEs quote how confidence, the imagined rollout count, the adaptive depth H, β or
the model's disagreement move over training. The figures show it; these CSVs give the numbers.

    python experiments/trace.py OUT.csv RUN_DIR [RUN_DIR ...] [--keys confidence beta ...]

Each run directory is a training run's output folder (``metrics.jsonl`` and ``config.yaml``). One
row per run and iteration: ``run``, ``seed``, ``env_steps``, then ``--keys`` (default: those of the
MB-PPO and MBPO loops that exist in the runs). ``run`` is the run's group in a Hydra sweep
(``<overrides>/seed=<seed>``) without the overrides that all the given runs share (the rest joined
by spaces), or the directory's name outside a sweep. Floats are written with 4 significant digits.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import yaml

KEYS = (
    "confidence",
    "imagined_rollouts",
    "imagined_depth",
    "imagined_transitions",
    "rollout_horizon",
    "beta",
    "model/disagreement",
    "model/heldout_state_mse",
    "model/done_precision",
    "model/done_recall",
    "int_reward_real_mean",
)


def labels(runs: list[Path]) -> list[str]:
    """Sweep runs: their overrides that differ between the runs; other runs: the folder's name."""
    groups = [r.parent.name.split(",") if r.name.startswith("seed=") else None for r in runs]
    shared = set.intersection(*(set(g) for g in groups if g is not None)) if any(groups) else set()
    return [
        " ".join(o for o in g if o not in shared) or "default" if g is not None else r.name
        for r, g in zip(runs, groups, strict=True)
    ]


def cell(value: object) -> object:
    return f"{value:.4g}" if isinstance(value, float) else ("" if value is None else value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--keys", nargs="+", default=None)
    args = parser.parse_args()

    rows = []
    for run, label in zip(args.runs, labels(args.runs), strict=True):
        seed = yaml.safe_load((run / "config.yaml").read_text())["seed"]
        for line in (run / "metrics.jsonl").read_text().splitlines():
            rows.append({"run": label, "seed": seed, **json.loads(line)})
    keys = args.keys or [k for k in KEYS if any(k in r for r in rows)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "seed", "env_steps", *keys])
        for r in rows:
            writer.writerow([r["run"], r["seed"], r["env_steps"], *(cell(r.get(k)) for k in keys)])
    print(f"{args.out}: {len(rows)} rows, {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
