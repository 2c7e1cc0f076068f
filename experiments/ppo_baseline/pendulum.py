"""PPO on Pendulum-v1: a time-limit-only task, so bootstrapping on truncation is what makes it learn.

    python experiments/ppo_baseline/pendulum.py                  # 3 seeds of experiment=ppo_pendulum
    python experiments/ppo_baseline/pendulum.py --seeds 5 --jobs 2

Writes ``pendulum.json`` (evaluation curves), ``pendulum.md`` (table) and ``pendulum.png``
(per-seed curves and their median) next to this file, or under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGET = -400.0


def train_seed(seed: int, overrides: list[str]) -> dict:
    import torch

    from mbrl_ai.train import compose_config, run

    torch.set_num_threads(1)
    cfg = compose_config(
        ["experiment=ppo_pendulum", f"seed={seed}", "logger.progress=off", *overrides]
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = run(cfg, Path(tmp))
    return {
        "seed": seed,
        "steps": [e["env_steps"] for e in result.evals],
        "means": [e["mean_return"] for e in result.evals],
        "train_seconds": result.train_seconds,
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
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--jobs", type=int, default=2, help="seeds trained at once (2 cores: at most 2)"
    )
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "overrides", nargs="*", help="extra Hydra overrides, e.g. total_timesteps=100000"
    )
    args = parser.parse_args()

    with ProcessPoolExecutor(args.jobs) as pool:
        curves = list(pool.map(train_seed, range(args.seeds), [args.overrides] * args.seeds))
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
    (args.out / "pendulum.md").write_text("\n".join(lines) + "\n")
    plot(curves, args.out / "pendulum.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
