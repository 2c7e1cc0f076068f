"""MB-PPO vs our PPO on CartPole-v1: real steps to solve, and what imagination costs.

Both methods run the same seeds in one invocation with the PPO study's protocol: deterministic
evaluation of 10 episodes after the update that crosses each multiple of ``eval_every`` (1,024)
real steps. Reported per config × method: the share of seeds solved within the budget, the median
real steps to solve (first of three consecutive evaluations ≥ 475) with a 95% bootstrap interval
over seeds, the final evaluation return, wall-clock seconds per 1k real steps, and for MB-PPO the
ratio of imagined transitions per second to real environment steps per second of collection.

    python experiments/sample_efficiency/run.py                         # 10 seeds, default config
    python experiments/sample_efficiency/run.py --configs default tuned --jobs 2
    python experiments/sample_efficiency/run.py --configs tuned tuned_no_imagination \
        --first-seed 10 --stop-when-solved --out experiments/sample_efficiency/heldout

``--first-seed N`` runs seeds N..N+k-1 (k = ``--seeds``). ``--stop-when-solved`` ends each run at
the iteration whose evaluation makes it solved: its steps to solve are those of the full run (the
check draws no random numbers), but its final return, budget and timing describe the stopped run.
``--merge`` adds the new runs to ``--out``'s ``results.json`` (replacing any with the same config,
method and seed) instead of overwriting it.

Writes ``results.json``, ``results.md`` and ``curves.png`` next to this file, or under ``--out``
(no figure when runs were stopped: their curves end at different steps).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import (  # noqa: E402
    RunRecord,
    add_seed_arguments,
    fmt_steps,
    median_with_ci,
    plot_curves,
    run_mbrl_ai,
    solved_steps,
)

HERE = Path(__file__).resolve().parent
# config name → method → Hydra overrides
ENSEMBLE = [
    "algo=mbppo",
    "curiosity=none",
    "world_model=ensemble",
    "ppo.minibatches=per_sample",
]
CONFIGS = {
    # the pseudocode's section-1 values with the ensemble's fit, as every table but the last was
    # measured; curiosity off, to isolate imagination
    "default": {"ppo": ["algo=ppo"], "mbppo": ENSEMBLE},
    # the default before each world-model fit stopped early: all 200 steps every iteration
    "default_full_fit": {"mbppo": [*ENSEMBLE, "world_model.stop_check_every=0"]},
    # a cheaper fit: half the model minibatch, the early-stop check twice as often (the first
    # world_model=lean, before its optimiser was fused)
    "default_lean_fit": {
        "mbppo": [*ENSEMBLE, "world_model.batch_size=128", "world_model.stop_check_every=10"]
    },
    # MB-PPO with its lean fit (conf/algo/mbppo.yaml) as it shipped before ppo.minibatches=per_real:
    # imagined samples add PPO minibatches
    "shipped": {"mbppo": ["algo=mbppo", "curiosity=none", "ppo.minibatches=per_sample"]},
    # that fit with half its minibatch again (64) and half the early-stop check (256)
    "lean64": {
        "mbppo": [
            "algo=mbppo",
            "curiosity=none",
            "world_model.batch_size=64",
            "world_model.stop_check_size=256",
            "ppo.minibatches=per_sample",
        ]
    },
    # MB-PPO as it ships: the lean fit, and imagined samples spread over the real batch's
    # minibatches (ppo.minibatches=per_real), no extra PPO steps for them
    "shipped_per_real": {"mbppo": ["algo=mbppo", "curiosity=none", "ppo.minibatches=per_real"]},
    "tuned": {"ppo": ["experiment=ppo_cartpole_hand"], "mbppo": ["experiment=mbppo_cartpole"]},
    # the default config as it ships, with RND curiosity (β_init 0.2); its β = 0 twin is the
    # default row above (β = 0 and curiosity=none give bit-identical runs)
    "default_curiosity": {
        "mbppo": [
            "algo=mbppo",
            "curiosity=rnd",
            "world_model=ensemble",
            "ppo.minibatches=per_sample",
        ]
    },
    # ablation: CartPole's own termination rule ends imagined rollouts instead of the done head
    "tuned_known_done": {"mbppo": ["experiment=mbppo_cartpole", "world_model.termination=known"]},
    # attribution: the tuned preset with imagination off (no imagined rollouts; still 3 PPO
    # updates per real batch and the same world-model fit, whose output is then unused)
    "tuned_no_imagination": {
        "mbppo": ["experiment=mbppo_cartpole", "min_planning_rollouts=0", "max_planning_rollouts=0"]
    },
}


def train_one(job: tuple[str, str, int, int | None, bool]) -> RunRecord:
    import torch

    from mbrl_ai.train import compose_config

    config, method, seed, steps, stop = job
    torch.set_num_threads(1)
    overrides = [*CONFIGS[config][method], f"seed={seed}", "eval_every=1024", "logger.progress=off"]
    if (
        steps is not None
    ):  # else each preset's own budget (its learning-rate schedule depends on it)
        overrides.append(f"total_timesteps={steps}")
    return run_mbrl_ai(compose_config(overrides), method, config, stop_when_solved=stop)


def summarise(records: list[RunRecord]) -> str:
    lines = [
        "| config | method | real-step budget | solved | steps to solve: median [95% CI] "
        "| final eval return: median | s per 1k real steps: median | imagined/s ÷ real/s: median |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config in dict.fromkeys(r.config for r in records):
        for method in ("ppo", "mbppo"):
            runs = [r for r in records if r.config == config and r.method == method]
            if not runs:
                continue
            med, low, high = median_with_ci(solved_steps(runs))
            ratios = [r.imagined_ratio for r in runs if r.imagined_ratio is not None]
            stopped = any(r.stopped_when_solved for r in runs)
            # a stopped run's last evaluation is where it stopped, not the end of a budget
            budget = "stopped once solved" if stopped else f"{max(r.env_steps for r in runs):,}"
            final = "-" if stopped else f"{np.median([r.means[-1] for r in runs]):.1f}"
            lines.append(
                f"| {config} | {method} | {budget} "
                f"| {sum(r.solved_at is not None for r in runs)}/{len(runs)} "
                f"| {fmt_steps(med)} [{fmt_steps(low)}, {fmt_steps(high)}] "
                f"| {final} "
                f"| {np.median([r.seconds_per_1k for r in runs]):.2f} "
                f"| {f'{np.median(ratios):.1f}' if ratios else '-'} |"
            )
    seeds = sorted({r.seed for r in records})
    lines += ["", "Unsolved runs count as more than the budget (inf).", ""]
    lines += ["Steps to solve per seed (seeds " + ", ".join(map(str, seeds)) + "):", ""]
    for config in dict.fromkeys(r.config for r in records):
        for method in ("ppo", "mbppo"):
            runs = sorted(
                (r for r in records if r.config == config and r.method == method),
                key=lambda r: r.seed,
            )
            if runs:
                steps = ", ".join(fmt_steps(s) for s in solved_steps(runs))
                lines.append(f"- {config} {method}: {steps}")
    lines += [""]
    lines += diagnostics_table([r for r in records if r.diagnostics])
    return "\n".join(lines)


def diagnostics_table(records: list[RunRecord]) -> list[str]:
    """World-model diagnostics of the MB-PPO runs: median over iterations, then over seeds."""
    if not records:
        return []
    horizon = max(
        int(k.rsplit("_", 1)[1]) for r in records for k in r.diagnostics if "open_loop" in k
    )
    columns = {
        "confidence": "confidence",
        "model/open_loop_mse_1": "1-step open-loop MSE",
        f"model/open_loop_mse_{horizon}": f"{horizon}-step open-loop MSE",
        "model/done_precision": "done precision",
        "model/done_recall": "done recall",
        "imagined_transitions": "imagined transitions / iteration",
    }
    lines = [
        "| config | " + " | ".join(columns.values()) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for config in dict.fromkeys(r.config for r in records):
        runs = [r for r in records if r.config == config]
        cells = [
            f"{np.median([r.diagnostics[k] for r in runs if k in r.diagnostics]):.3g}"
            for k in columns
        ]
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Open-loop MSE: the model's ensemble-mean prediction run k steps on the actions actually "
        "taken, on the newest real trajectories before it is fitted on them, per state dimension "
        "in units of the state's standard deviation.",
    ]
    return lines


def pooled_table(folders: list[Path]) -> str:
    """Steps to solve over the seeds of several results folders together, for each config ×
    method that all of them hold (e.g. seeds 0–9 and a held-out 10–19)."""
    sets = [[RunRecord(**r) for r in json.loads((f / "results.json").read_text())] for f in folders]
    pairs = [
        (r.config, r.method) for r in sets[0] if all(
            any((x.config, x.method) == (r.config, r.method) for x in other) for other in sets[1:]
        )
    ]  # fmt: skip
    lines = [
        f"Pooled over {', '.join(str(f) for f in folders)}:",
        "",
        "| config | method | seeds | solved | steps to solve: median [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for config, method in dict.fromkeys(pairs):
        runs = [r for rs in sets for r in rs if (r.config, r.method) == (config, method)]
        med, low, high = median_with_ci(solved_steps(runs))
        seeds = sorted({r.seed for r in runs})
        lines.append(
            f"| {config} | {method} | {seeds[0]}–{seeds[-1]} ({len(runs)} runs) "
            f"| {sum(r.solved_at is not None for r in runs)}/{len(runs)} "
            f"| {fmt_steps(med)} [{fmt_steps(low)}, {fmt_steps(high)}] |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_seed_arguments(parser, 10, "once solved (3 evaluations in a row >= 475)")
    parser.add_argument("--merge", action="store_true", help="add the runs to --out's results.json")
    parser.add_argument(
        "--steps", type=int, default=None, help="real steps per run (default: each preset's own)"
    )
    parser.add_argument("--configs", nargs="+", default=["default"], choices=list(CONFIGS))
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (2 cores: at most 2)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--from-json", action="store_true", help="redo table and figure only")
    parser.add_argument(
        "--pool",
        type=Path,
        nargs="+",
        default=[],
        help="with --from-json: also write pooled.md, the steps to solve over the seeds of --out "
        "and these results folders together",
    )
    args = parser.parse_args()

    if args.from_json:
        records = [RunRecord(**r) for r in json.loads((args.out / "results.json").read_text())]
    else:
        # seeds interleave the two methods, so machine load falls on both alike
        jobs = [
            (config, method, seed, args.steps, args.stop_when_solved)
            for config in args.configs
            for seed in range(args.first_seed, args.first_seed + args.seeds)
            for method in CONFIGS[config]
        ]
        with ProcessPoolExecutor(args.jobs) as pool:
            records = list(pool.map(train_one, jobs))
        if args.merge and (args.out / "results.json").exists():
            new = {(r.config, r.method, r.seed) for r in records}
            saved = [RunRecord(**r) for r in json.loads((args.out / "results.json").read_text())]
            records = [r for r in saved if (r.config, r.method, r.seed) not in new] + records
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps([r.__dict__ for r in records], indent=1))
    table = summarise(records)
    (args.out / "results.md").write_text(table + "\n")
    if not any(r.stopped_when_solved for r in records):
        labels = {"ppo": "PPO", "mbppo": "MB-PPO"}
        plot_curves(records, args.out / "curves.png", "CartPole-v1", labels)
    print(table)
    if args.from_json and args.pool:
        pooled = pooled_table([args.out, *args.pool])
        (args.out / "pooled.md").write_text(pooled + "\n")
        print(pooled)


if __name__ == "__main__":
    main()
