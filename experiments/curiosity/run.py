"""Curiosity on MountainCar-v0: does RND make MB-PPO reach a goal that random actions never find?

MountainCar-v0 pays −1 per step and ends only at the goal (position ≥ 0.5), which a random policy
practically never reaches in its 200-step episodes. Both arms run the same seeds in one invocation:
``curiosity=rnd`` with the configured β, and ``beta_init=0`` (curiosity off). Reported per arm: the
seeds whose training episodes reach the goal within the budget, the median real steps to the first
goal, the final deterministic evaluation return, and the share of a 20×20 position–velocity grid
the real states have visited, over training (plotted).

    python experiments/curiosity/run.py                       # 5 seeds × 2 arms, 300k real steps
    python experiments/curiosity/run.py --jobs 2 --steps 100000
    python experiments/curiosity/run.py --from-json           # table and figure again
    python experiments/curiosity/run.py --first-seed 5 --stop-when-solved --out /tmp/held_out
    python experiments/curiosity/run.py --merge DIR1 DIR2 --out DIR  # join runs made separately

``--first-seed N`` runs seeds N..N+k-1 (k = ``--seeds``). ``--stop-when-solved`` ends each run at
the end of the iteration in which a training episode first reaches the goal (the study's measure):
the first-goal step is the full run's, the final return and coverage are the stopped run's.

The states are read by wrapping the trainer's collection call; the library is not changed.
Writes ``results.json``, ``results.md`` and ``coverage.png`` next to this file, or under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import add_seed_arguments, fmt_steps, median_with_ci, train_until  # noqa: E402

HERE = Path(__file__).resolve().parent
ENV = "MountainCar-v0"
LOW, HIGH = np.array([-1.2, -0.07]), np.array([0.6, 0.07])  # MountainCar's observation bounds
GRID = 20
# arm → Hydra overrides (on top of the common ones in train_one)
ARMS = {
    "rnd": ["curiosity=rnd"],
    "beta0": ["curiosity=rnd", "beta_init=0"],
}


def train_one(job: tuple[str, int, int, list[str], bool]) -> dict:
    import torch

    import mbrl_ai.trainer as trainer
    from mbrl_ai.train import compose_config

    arm, seed, steps, extra, stop = job
    torch.set_num_threads(1)
    visited = np.zeros((GRID, GRID), dtype=bool)
    coverage: list[tuple[int, float]] = []
    first_goal: list[int] = []
    seen_steps = [0]
    betas: list[tuple[int, float]] = []  # β after each iteration's adaptation, by real steps
    collect = trainer.collect_rollout
    adapt = trainer.adapt_beta

    def observed_collect(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        rollout, state = collect(*args, **kwargs)
        states = rollout.raw_obs.reshape(-1, 2)
        cells = ((states - LOW) / (HIGH - LOW) * GRID).astype(int).clip(0, GRID - 1)
        visited[cells[:, 0], cells[:, 1]] = True
        steps_before = seen_steps[0]
        seen_steps[0] += states.shape[0]
        coverage.append((seen_steps[0], float(visited.mean())))
        goal = rollout.terminated.numpy()  # MountainCar terminates only at the goal
        if not first_goal and goal.any():
            t = int(np.argmax(goal.any(axis=1)))
            first_goal.append(steps_before + (t + 1) * goal.shape[1])
        return rollout, state

    def observed_adapt(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        state = adapt(*args, **kwargs)
        betas.append((seen_steps[0], state.beta))
        return state

    trainer.collect_rollout = observed_collect
    trainer.adapt_beta = observed_adapt
    cfg = compose_config(
        [
            f"env={ENV}",
            "world_model=ensemble",  # the fit this study was measured with
            "ppo.minibatches=per_sample",  # and the minibatch cut
            f"seed={seed}",
            f"total_timesteps={steps}",
            "logger.progress=off",
            *ARMS[arm],
            *extra,
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train_until(cfg, Path(tmp), (lambda _: bool(first_goal)) if stop else None)
    trainer.collect_rollout = collect
    trainer.adapt_beta = adapt
    return {
        "arm": arm,
        "seed": seed,
        "first_goal": first_goal[0] if first_goal else None,
        "coverage": coverage,
        "beta": betas,
        "eval_steps": [e["env_steps"] for e in result.evals],
        "eval_means": [e["mean_return"] for e in result.evals],
        "train_seconds": result.train_seconds,
        "env_steps": result.env_steps,
        "stopped_when_solved": result.env_steps < steps,
    }


def summarise(records: list[dict]) -> str:
    lines = [
        "| arm | seeds reaching the goal | real steps to first goal: median [95% CI] "
        "| final eval return: median (per seed) | final coverage: median |",
        "|---|---|---|---|---|",
    ]
    for arm in ARMS:
        runs = [r for r in records if r["arm"] == arm]
        if not runs:
            continue
        goals = [r["first_goal"] if r["first_goal"] is not None else np.inf for r in runs]
        med, low, high = median_with_ci(goals)
        finals = [r["eval_means"][-1] for r in runs]
        final, coverage = (
            f"{np.median(finals):.1f} ({', '.join(f'{f:.0f}' for f in finals)})",
            f"{np.median([r['coverage'][-1][1] for r in runs]):.2f}",
        )
        if any(r.get("stopped_when_solved") for r in runs):  # not at the end of the budget
            final = coverage = "- (stopped at the goal)"
        lines.append(
            f"| {arm} | {sum(np.isfinite(goals))}/{len(runs)} "
            f"| {fmt_steps(med)} [{fmt_steps(low)}, {fmt_steps(high)}] | {final} | {coverage} |"
        )
    lines += ["", "A run that never reaches the goal counts as more than the budget (inf)."]
    return "\n".join(lines)


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_cov, ax_ret) = plt.subplots(1, 2, figsize=(10, 3.8))
    for arm, color in zip(ARMS, ["tab:orange", "tab:blue"], strict=False):
        runs = [r for r in records if r["arm"] == arm]
        for i, r in enumerate(runs):
            steps, cov = zip(*r["coverage"], strict=True)
            ax_cov.plot(steps, cov, color=color, alpha=0.7, label=arm if i == 0 else None)
            ax_ret.plot(
                r["eval_steps"],
                r["eval_means"],
                color=color,
                alpha=0.7,
                label=arm if i == 0 else None,
            )
    ax_cov.set_xlabel("real environment steps")
    ax_cov.set_ylabel(f"share of the {GRID}×{GRID} grid visited")
    ax_ret.set_xlabel("real environment steps")
    ax_ret.set_ylabel("deterministic eval return")
    for ax in (ax_cov, ax_ret):
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{ENV}, one line per seed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_seed_arguments(parser, 5, "once a training episode has reached the goal")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (2 cores: at most 2)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--from-json", action="store_true", help="redo table and figure only")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="join the results.json of these folders into --out, then table and figure",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both arms")
    args = parser.parse_args()

    if args.merge:
        records = [r for d in args.merge for r in json.loads((d / "results.json").read_text())]
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(records))
    elif args.from_json:
        records = json.loads((args.out / "results.json").read_text())
    else:
        jobs = [
            (arm, seed, args.steps, args.overrides, args.stop_when_solved)
            for seed in range(args.first_seed, args.first_seed + args.seeds)
            for arm in args.arms
        ]
        with ProcessPoolExecutor(args.jobs) as pool:
            records = list(pool.map(train_one, jobs))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(records))
    table = summarise(records)
    (args.out / "results.md").write_text(table + "\n")
    plot(records, args.out / "coverage.png")
    print(table)


if __name__ == "__main__":
    main()
