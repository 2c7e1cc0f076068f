"""PPO on Pendulum-v1: a time-limit-only task, so bootstrapping on truncation is what makes it learn.

    python experiments/ppo_baseline/pendulum.py                  # 3 seeds of experiment=ppo_pendulum
    python experiments/ppo_baseline/pendulum.py --seeds 5 --jobs 2
    python experiments/ppo_baseline/pendulum.py --first-seed 5 --stop-when-solved --out /tmp/p

``--first-seed N`` runs seeds N..N+k-1 (k = ``--seeds``); ``--stop-when-solved`` ends each run at
the first evaluation better than −400 (the table's "first step" column is then the full run's; its
final and best returns are those of the stopped run, and no figure is drawn).

Writes ``pendulum.json`` (evaluation curves), ``pendulum.md`` (table) and ``pendulum.png``
(per-seed curves and their median) next to this file, or under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchlib import add_seed_arguments  # noqa: E402

TARGET = -400.0


def above_target(run) -> bool:  # noqa: ANN001
    return any(e["mean_return"] > TARGET for e in run.evals)


def train_seed(seed: int, overrides: list[str], stop_when_solved: bool = False) -> dict:
    import torch
    from benchlib import train_until

    from mbrl_ai.train import compose_config

    torch.set_num_threads(1)
    cfg = compose_config(
        ["experiment=ppo_pendulum", f"seed={seed}", "logger.progress=off", *overrides]
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train_until(cfg, Path(tmp), above_target if stop_when_solved else None)
    return {
        "seed": seed,
        "steps": [e["env_steps"] for e in result.evals],
        "means": [e["mean_return"] for e in result.evals],
        "train_seconds": result.train_seconds,
        "stopped_when_solved": result.env_steps < cfg.total_timesteps,
    }


def first_step_above(steps: list[int], means: list[float], target: float) -> int | None:
    return next((s for s, m in zip(steps, means, strict=True) if m > target), None)


def plot(curves: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for c in curves:
        ax.plot(c["steps"], c["means"], color="tab:blue", alpha=0.35, lw=1)
    steps = curves[0]["steps"]
    median = np.median([c["means"] for c in curves], axis=0)
    ax.plot(steps, median, color="tab:blue", lw=2, label=f"median of {len(curves)} seeds")
    ax.axhline(TARGET, color="grey", ls="--", lw=1, label=f"{TARGET:.0f}")
    ax.set_xlabel("real environment steps")
    ax.set_ylabel("deterministic eval return")
    ax.set_title("PPO on Pendulum-v1 (experiment=ppo_pendulum)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_seed_arguments(parser, 3, f"at its first evaluation better than {TARGET:.0f}")
    parser.add_argument(
        "--jobs", type=int, default=2, help="seeds trained at once (2 cores: at most 2)"
    )
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "overrides", nargs="*", help="extra Hydra overrides, e.g. total_timesteps=100000"
    )
    args = parser.parse_args()

    with ProcessPoolExecutor(args.jobs) as pool:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        n = len(seeds)
        curves = list(
            pool.map(train_seed, seeds, [args.overrides] * n, [args.stop_when_solved] * n)
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pendulum.json").write_text(json.dumps(curves, indent=1))
    lines = [
        f"| seed | final eval return | best eval return | first step with eval mean > {TARGET:.0f} |",
        "|---|---|---|---|",
    ]
    for c in curves:
        hit = first_step_above(c["steps"], c["means"], TARGET)
        lines.append(
            f"| {c['seed']} | {c['means'][-1]:.1f} | {max(c['means']):.1f} | {hit if hit is not None else 'never'} |"
        )
    finals = [c["means"][-1] for c in curves]
    lines.append(f"| median | {np.median(finals):.1f} | | |")
    stopped = any(c.get("stopped_when_solved") for c in curves)
    if stopped:
        lines.append("")
        lines.append("Runs were stopped at their first evaluation above the target: final and best")
        lines.append("returns are those of the stopped runs.")
    (args.out / "pendulum.md").write_text("\n".join(lines) + "\n")
    if not stopped:  # the median curve needs curves of equal length
        plot(curves, args.out / "pendulum.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
