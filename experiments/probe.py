"""Steps to solve for one configuration on a few seeds: the tuning searches' probe.

    python experiments/probe.py --seeds 5 -- experiment=mbppo_cartpole_replay planning_horizon=10

Each seed trains with the given Hydra overrides (plus ``seed``, ``eval_every=1024``), stops once
three evaluations in a row reach the threshold, and prints one line: the real steps to solve (or
``never``) and the training seconds per 1,000 real steps. ``--jobs`` runs seeds in parallel.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import add_seed_arguments, fmt_steps, run_mbrl_ai, solved_steps  # noqa: E402


def one(job: tuple[int, list[str], float]) -> tuple[int, float, float]:
    import torch

    from mbrl_ai.train import compose_config

    seed, overrides, threshold = job
    torch.set_num_threads(1)
    cfg = compose_config([*overrides, f"seed={seed}", "eval_every=1024", "logger.progress=off"])
    record = run_mbrl_ai(cfg, cfg.algo.name, "probe", threshold, stop_when_solved=True)
    return seed, solved_steps([record])[0], record.seconds_per_1k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_seed_arguments(parser, 5, "once solved (always on here)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, after --")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one, [(s, args.overrides, args.threshold) for s in seeds]))
    steps = [r[1] for r in rows]
    print(" ".join(args.overrides))
    print("steps to solve: " + " / ".join(fmt_steps(s) for s in steps))
    print(f"median {fmt_steps(float(np.median(steps)))}; s per 1k real steps: "
          + " / ".join(f"{r[2]:.2f}" for r in rows))  # fmt: skip


if __name__ == "__main__":
    main()
