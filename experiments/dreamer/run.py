"""The Dreamer-style agent against our model-free and model-based agents, one invocation per
environment.

    python experiments/dreamer/run.py --env cartpole --seeds 5 --jobs 2
    python experiments/dreamer/run.py --env pendulum --seeds 5 --jobs 2
    python experiments/dreamer/run.py --env cartpole --arms dreamer --seeds 2 --first-seed 100

Every arm runs the same seeds with the same evaluation protocol (``eval_every`` real steps, 10
deterministic episodes). A run ends the hold window after it is solved (at once where there is no
window: Pendulum), or at the solve budget if it is not solved by then; its final return is the
last evaluation before it ended. Reported per arm: the share of seeds that reach the threshold three
evaluations in a row within the solve budget, the median real steps to get there with a 95%
bootstrap interval, the lowest evaluation in the hold window of real steps after that point (does
it collapse? Dreamer's runs are long enough to tell), the median final return, training seconds per 1,000 real steps (evaluations
excluded; one torch thread; ``--jobs`` runs share the machine) and the world model's parameters.

Writes ``<env>.json``, ``<env>.md`` and ``<env>.png`` next to this file (or under ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import (  # noqa: E402
    RunRecord,
    fmt_steps,
    median_with_ci,
    plot_curves,
    run_mbrl_ai,
    solved_steps,
)

from mbrl_ai.core.stats import steps_to_threshold  # noqa: E402
from mbrl_ai.runtime import RunContext  # noqa: E402

HERE = Path(__file__).resolve().parent

# env -> (threshold, solve budget, hold window, arm -> overrides). A run stops ``hold`` real steps
# after it is solved (does it stay solved?), or at the budget if it is not solved by then;
# ``total_timesteps`` caps it (the baselines: the budget, MBPO its preset's 5,000 on Pendulum).
ENVS: dict[str, tuple[float, int, int, dict[str, list[str]]]] = {
    "cartpole": (
        475.0,
        30_000,
        30_000,
        {
            "dreamer": ["experiment=dreamer_cartpole", "total_timesteps=60000"],
            # the preset before round 6 (actor learning rate 1e-4), evaluated on its last 32 steps
            "dreamer_fast_actor": [
                "experiment=dreamer_cartpole",
                "dreamer.actor_lr=1e-4",
                "total_timesteps=60000",
            ],
            # the preset before round 6, evaluated on the latent state of the whole episode
            "dreamer_whole_episode": [
                "experiment=dreamer_cartpole",
                "dreamer.actor_lr=1e-4",
                "dreamer.eval_context=0",
                "total_timesteps=60000",
            ],
            # the preset before round 6, also acting on the latent state of its last 32 real steps
            "dreamer_context": [
                "experiment=dreamer_cartpole",
                "dreamer.actor_lr=1e-4",
                "dreamer.act_context=32",
                "total_timesteps=60000",
            ],
            # the preset with the all-actions actor gradient (actor_snr.py: less noise)
            "dreamer_all_actions": [
                "experiment=dreamer_cartpole",
                "dreamer.actor_grad=all_actions",
                "total_timesteps=60000",
            ],
            "ppo": ["experiment=ppo_cartpole_hand", "eval_every=1000", "total_timesteps=30000"],
            "mbppo": ["experiment=mbppo_cartpole", "eval_every=1000", "total_timesteps=30000"],
        },
    ),
    "pendulum": (
        -200.0,
        15_000,
        0,
        {
            "dreamer": ["experiment=dreamer_pendulum", "total_timesteps=15000"],
            "sac": ["experiment=sac_pendulum", "eval_every=500", "total_timesteps=15000"],
            "mbpo": ["experiment=mbpo_pendulum", "eval_every=500", "total_timesteps=5000"],
        },
    ),
}


def world_model_parameters(overrides: list[str]) -> int | None:
    """Parameters of the arm's world model (``None`` for a model-free arm)."""
    from mbrl_ai.algos.dreamer import build_agent
    from mbrl_ai.algos.dreamer.config import DreamerConfig
    from mbrl_ai.envs import inspect_env
    from mbrl_ai.fit_model import build_world_model
    from mbrl_ai.train import compose_config

    cfg = compose_config(overrides)
    info = inspect_env(cfg.env, cfg.env_kwargs)
    if cfg.algo.name == "dreamer":
        model: object = build_agent(cfg.node(DreamerConfig), info).wm
    elif cfg.algo.name in ("mbppo", "mbpo"):
        model = build_world_model(cfg.world_model, info, None)
    else:
        return None
    return sum(p.numel() for p in model.parameters())  # type: ignore[attr-defined]


def until_held(threshold: float, budget: int, hold: int) -> Callable[[RunContext], bool]:
    """Stop a run ``hold`` real steps after it was solved, or at ``budget`` if it was not
    solved by then (``hold = 0``: as soon as it is solved)."""

    def stop(run: RunContext) -> bool:
        steps = [e["env_steps"] for e in run.evals]
        means = [e["mean_return"] for e in run.evals]
        at = steps_to_threshold(steps, means, threshold, consecutive=3)
        if at is None or at > budget:
            return run.env_steps >= budget
        return run.env_steps >= at + hold

    return stop


def train_one(job: tuple[str, list[str], int, float, int, int]) -> RunRecord:
    import torch

    from mbrl_ai.train import compose_config

    arm, overrides, seed, threshold, budget, hold = job
    torch.set_num_threads(1)
    cfg = compose_config([*overrides, f"seed={seed}", "logger.progress=off", "checkpoint_every=0"])
    return run_mbrl_ai(cfg, arm, arm, threshold, stop=until_held(threshold, budget, hold))


def held(run: RunRecord, budget: int, hold: int) -> float:
    """The lowest evaluation in the ``hold`` real steps after the run was solved (NaN if it was
    not solved within ``budget``, or its run ended before the window did)."""
    at = run.solved_at
    if at is None or at > budget or hold == 0 or run.steps[-1] < at + hold:
        return float("nan")
    return min(m for s, m in zip(run.steps, run.means, strict=True) if at < s <= at + hold)


def table(
    records: list[RunRecord], arms: list[str], budget: int, hold: int, params: dict[str, int | None]
) -> str:
    head = (
        "| arm | solved ≤ budget | real steps to threshold: median [95% CI] "
        + (f"| lowest eval in the {hold:,} steps after: median (min) " if hold else "")
        + "| final return: median | s / 1k real steps | world-model parameters |"
    )
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for arm in arms:
        runs = [r for r in records if r.method == arm]
        steps = [s if s <= budget else np.inf for s in solved_steps(runs)]
        med, low, high = median_with_ci(steps)
        solved = sum(np.isfinite(steps))
        final = np.median([r.means[-1] for r in runs])
        row = f"| {arm} | {solved}/{len(runs)} | {fmt_steps(med)} [{fmt_steps(low)}, {fmt_steps(high)}] "
        if hold:
            lows = [held(r, budget, hold) for r in runs]
            kept = [x for x in lows if np.isfinite(x)]
            row += f"| {np.median(kept):.0f} ({min(kept):.0f}) " if kept else "| – "
        p = params.get(arm)
        row += (
            f"| {final:.1f} | {np.median([r.seconds_per_1k for r in runs]):.1f} "
            f"| {f'{p:,}' if p else '–'} |"
        )
        lines.append(row)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=list(ENVS), required=True)
    parser.add_argument("--arms", nargs="+", help="a subset of the env's arms (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (2 cores: at most 2)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first..first+seeds-1")
    parser.add_argument(
        "--tabulate",
        type=Path,
        help="train nothing: the table and figure of the runs in this file (one record per line, "
        "as <env>.partial.jsonl keeps them while a study runs)",
    )
    args = parser.parse_args()
    threshold, budget, hold, arms = ENVS[args.env]
    chosen = args.arms or list(arms)
    unknown = set(chosen) - set(arms)
    if unknown:
        parser.error(f"--arms: {sorted(unknown)}: allowed for {args.env}: {', '.join(arms)}")
    if args.tabulate is not None:
        rows = [json.loads(line) for line in args.tabulate.read_text().splitlines() if line]
        records = [RunRecord(**r) for r in rows if r["method"] in chosen]
        seen = sorted({r.seed for r in records})
        label = ", ".join(map(str, seen))
        write(args, records, chosen, params_of(arms, chosen), label, threshold, budget, hold)
        return
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(arm, arms[arm], seed, threshold, budget, hold) for seed in seeds for arm in chosen]
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / f"{args.env}.partial.jsonl"  # each run as it ends (an interrupted study)
    partial.write_text("")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(train_one, job) for job in jobs]
        for future in as_completed(futures):
            with partial.open("a") as f:
                f.write(json.dumps(future.result().__dict__, default=float) + "\n")
        records = [f.result() for f in futures]
    partial.unlink()
    label = f"{seeds.start}–{seeds.stop - 1}"
    write(args, records, chosen, params_of(arms, chosen), label, threshold, budget, hold)


def params_of(arms: dict[str, list[str]], chosen: list[str]) -> dict[str, int | None]:
    return {arm: world_model_parameters(arms[arm]) for arm in chosen}


def write(
    args: argparse.Namespace,
    records: list[RunRecord],
    chosen: list[str],
    params: dict[str, int | None],
    seeds: str,
    threshold: float,
    budget: int,
    hold: int,
) -> None:
    """``<env>.md``, ``<env>.json`` and ``<env>.png`` under ``--out``."""
    args.out.mkdir(parents=True, exist_ok=True)
    text = (
        f"{args.env}: threshold {threshold:g} three evaluations in a row within {budget:,} real "
        f"steps, seeds {seeds}, `python experiments/dreamer/run.py {' '.join(sys.argv[1:])}`\n\n"
        + table(records, chosen, budget, hold, params)
    )
    (args.out / f"{args.env}.md").write_text(text)
    (args.out / f"{args.env}.json").write_text(
        json.dumps([r.__dict__ for r in records], indent=1, default=float)
    )
    plot_curves(records, args.out / f"{args.env}.png", args.env, {a: a for a in chosen})
    print(text)


if __name__ == "__main__":
    main()
