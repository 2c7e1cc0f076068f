"""Adaptive-rollout MBPO vs fixed-H MBPO vs our SAC vs Stable-Baselines3's SAC on Pendulum-v1
(or HalfCheetah-v5).

    python experiments/mbpo/run.py                          # 5 seeds, all four arms, 2 at a time
    python experiments/mbpo/run.py --seeds 3 --arms mbpo_adaptive sac --jobs 1
    python experiments/mbpo/run.py --env HalfCheetah-v5 --seeds 2 --arms mbpo_adaptive sac \
        --mbpo-steps 10000 --sac-steps 30000 --out experiments/mbpo/halfcheetah   # needs mujoco

Each arm runs its env's preset (``conf/experiment/{mbpo,sac}_<env>.yaml``); SB3's SAC is built
from the SAC preset's values. All arms share the evaluation code and seeds: the preset's
deterministic episodes every ``eval_every`` real steps. On Pendulum a run counts as solved from the
first of 3 evaluations in a row whose mean is ≥ −200. HalfCheetah has no such threshold: the table
gives the return at the first arm's budget, the final return, and the real steps each run needs
to reach the lowest final return of the first arm's runs (at one evaluation). Writes
``results.json``, ``results.md`` and ``curves.png`` next to this file (or under ``--out``).

``--first-seed N`` runs seeds N..N+k-1 (k = ``--seeds``). ``--stop-when-solved`` (Pendulum only:
HalfCheetah's bar is known only after the runs) ends each run once solved; its steps to solve are
the full run's, its returns and timing the stopped run's, and no figure is drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchlib import (  # noqa: E402
    RunRecord,
    add_seed_arguments,
    fmt_steps,
    learn_sb3,
    median_with_ci,
    plot_curves,
)

from mbrl_ai.core.stats import steps_to_threshold  # noqa: E402

ENVS = {"Pendulum-v1": ("pendulum", -200.0), "HalfCheetah-v5": ("halfcheetah", None)}
ARMS = {  # arm -> Hydra overrides; {env} is the preset's env name (SB3's SAC reads the SAC preset)
    "mbpo_adaptive": ["experiment=mbpo_{env}"],
    "mbpo_fixed": ["experiment=mbpo_{env}", "mbpo.rollout_length=fixed", "mbpo.horizon=1"],
    "mbpo_fixed9": ["experiment=mbpo_{env}", "mbpo.rollout_length=fixed", "mbpo.horizon=9"],
    "sac": ["experiment=sac_{env}"],
    "sb3_sac": ["experiment=sac_{env}"],
}
LABELS = {
    "mbpo_adaptive": "MBPO, adaptive H",
    "mbpo_fixed": "MBPO, H = 1",
    "mbpo_fixed9": "MBPO, H = 9",
    "sac": "our SAC",
    "sb3_sac": "SB3 SAC",
}


def run_sb3_sac(cfg, threshold: float, stop_when_solved: bool = False) -> RunRecord:  # noqa: ANN001
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    rec = RunRecord("sb3_sac", "", cfg.seed, threshold=threshold)
    s = cfg.sac
    model = SAC(
        "MlpPolicy",
        sb3_make_vec_env(cfg.env, n_envs=1, seed=cfg.seed),
        learning_rate=cfg.lr_actor_critic,
        buffer_size=s.buffer_size,
        learning_starts=s.learning_starts,
        batch_size=s.batch_size,
        tau=s.tau,
        gamma=cfg.gamma,
        train_freq=1,
        gradient_steps=s.updates_per_step,
        ent_coef="auto",
        policy_kwargs={"net_arch": list(s.hidden)},
        seed=cfg.seed,
        device="cpu",
    )
    learn_sb3(model, cfg, rec, discrete=False, stop_when_solved=stop_when_solved)
    return rec


def train_one(
    arm: str, seed: int, steps: int, env: str = "Pendulum-v1", stop: bool = False
) -> dict:
    import torch
    from benchlib import run_mbrl_ai

    from mbrl_ai.train import compose_config

    torch.set_num_threads(1)
    preset, threshold = ENVS[env]
    cfg = compose_config(
        [
            *(o.format(env=preset) for o in ARMS[arm]),
            f"seed={seed}",
            f"total_timesteps={steps}",
            "logger.progress=off",
        ]
    )
    threshold = np.inf if threshold is None else threshold  # no threshold: never "solved"
    rec = (
        run_sb3_sac(cfg, threshold, stop)
        if arm == "sb3_sac"
        else run_mbrl_ai(cfg, arm, "", threshold, stop_when_solved=stop)
    )
    return asdict(rec)


def summarize(
    records: list[RunRecord], arms: list[str], threshold: float | None
) -> tuple[str, dict]:
    """The table. With no ``threshold`` (HalfCheetah) the bar is the lowest final return of the
    first arm's runs (what all of them reached by their budget), reached at one evaluation; the
    return at the first arm's budget is listed too."""
    first = [r for r in records if r.method == arms[0]]
    budget = min(r.steps[-1] for r in first)
    if threshold is None:
        bar, consecutive = float(min(r.means[-1] for r in first)), 1
        what = f"real steps to {bar:,.0f} (the lowest final return of {LABELS[arms[0]]})"
    else:
        bar, consecutive = threshold, 3
        what = f"real steps to {bar:.0f} (3 evals in a row)"
    head = (
        f"| arm | runs | {what}, median [95% CI] | per seed | reached | "
        f"return at {budget:,} steps, median | final return, median | "
        "train s per 1k real steps, median |\n|---|---|---|---|---|---|---|---|\n"
    )
    rows, table = [], {}
    for arm in arms:
        runs = sorted((r for r in records if r.method == arm), key=lambda r: r.seed)
        if not runs:
            continue
        steps = [
            s if (s := steps_to_threshold(r.steps, r.means, bar, consecutive)) is not None
            else np.inf
            for r in runs
        ]  # fmt: skip
        med, lo, hi = median_with_ci(steps)
        finals = [r.means[-1] for r in runs]
        at_budget = [r.means[r.steps.index(budget)] for r in runs if budget in r.steps]
        per_1k = float(np.median([r.seconds_per_1k for r in runs]))
        stopped = any(r.stopped_when_solved for r in runs)  # returns: not at the budget's end
        table[arm] = {
            "bar": bar,
            "steps": steps,
            "median": med,
            "ci": [lo, hi],
            "at_budget": at_budget,
            "final": finals,
            "seconds_per_1k": per_1k,
        }
        rows.append(
            f"| {LABELS[arm]} | {len(runs)} | {fmt_steps(med)} [{fmt_steps(lo)}, {fmt_steps(hi)}] | "
            f"{' '.join(fmt_steps(s) for s in steps)} | {sum(np.isfinite(steps))}/{len(runs)} | "
            + ("- | - |" if stopped else f"{np.median(at_budget):.0f} | {np.median(finals):.0f} |")
            + f" {per_1k:.1f} |"
        )
    return head + "\n".join(rows) + "\n", table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_seed_arguments(parser, 5, "(Pendulum) once solved (3 evaluations in a row >= -200)")
    parser.add_argument(
        "--arms", nargs="+", default=[a for a in ARMS if a != "mbpo_fixed9"], choices=list(ARMS)
    )
    parser.add_argument("--mbpo-steps", type=int, default=3000, help="budget of the MBPO arms")
    parser.add_argument("--sac-steps", type=int, default=10000, help="budget of the SAC arms")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--env", default="Pendulum-v1", choices=list(ENVS))
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "--from-json", action="store_true", help="redo the table and figure from --out's results"
    )
    args = parser.parse_args()
    if args.stop_when_solved and ENVS[args.env][1] is None:
        parser.error(f"--stop-when-solved needs a fixed threshold, and {args.env} has none")
    if args.from_json:
        saved = json.loads((args.out / "results.json").read_text())["runs"]
        records = [  # JSON has no inf: a run without a threshold was saved with null
            RunRecord(**{**r, "threshold": np.inf if r["threshold"] is None else r["threshold"]})
            for r in saved
        ]
        args.arms = [a for a in args.arms if any(r.method == a for r in records)]
        write_results(records, args)
        return

    jobs = [
        (
            arm,
            seed,
            args.mbpo_steps if arm.startswith("mbpo") else args.sac_steps,
            args.env,
            args.stop_when_solved,
        )
        for seed in range(args.first_seed, args.first_seed + args.seeds)
        for arm in args.arms
    ]
    records = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for job, rec in zip(jobs, pool.map(train_one, *zip(*jobs, strict=True)), strict=True):
            records.append(RunRecord(**rec))
            last = records[-1]
            print(f"{job[0]:>14} seed {job[1]}: final return {last.means[-1]:.1f}", flush=True)
    write_results(records, args)


def write_results(records: list[RunRecord], args: argparse.Namespace) -> None:
    table_md, table = summarize(records, args.arms, ENVS[args.env][1])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(table_md)
    (args.out / "results.json").write_text(
        json.dumps(
            {"summary": table, "runs": [asdict(r) for r in records]},
            indent=1,
            default=lambda x: None,
        ).replace("Infinity", "null")
    )
    if not any(r.stopped_when_solved for r in records):  # stopped curves end at different steps
        plot_curves(records, args.out / "curves.png", args.env, {a: LABELS[a] for a in args.arms})
    print(table_md)


if __name__ == "__main__":
    main()
