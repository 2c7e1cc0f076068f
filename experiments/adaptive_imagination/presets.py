"""Tuned PPO against the imagination-heavy MB-PPO presets, same seeds, one invocation.

    python experiments/adaptive_imagination/presets.py --env cartpole --seeds 10
    python experiments/adaptive_imagination/presets.py --env pendulum --seeds 10
    python experiments/adaptive_imagination/presets.py --env cartpole --first-seed 10   # held out

Each run evaluates every 1,024 real steps (10 episodes, deterministic actions) and ends once
solved: three evaluations in a row with mean ≥ 475 on CartPole-v1, ≥ −400 on Pendulum-v1, or at
its preset's ``total_timesteps``. The seeds alternate between the two presets, two runs at a time.
Reported: real steps to solve per seed, median and IQM with 95% bootstrap intervals over seeds, the
ratio of the MB-PPO median to PPO's, and training seconds per 1,000 real steps (evaluation
excluded) with their ratio. Writes ``presets_<env>[_<first>-<last>].json`` and ``.md`` here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import add_seed_arguments, run_mbrl_ai, solved_steps  # noqa: E402

HERE = Path(__file__).resolve().parent
ENVS = {
    "cartpole": (475.0, {"ppo": "ppo_cartpole_hand", "mbppo": "mbppo_cartpole_replay"}),
    "pendulum": (-400.0, {"ppo": "ppo_pendulum", "mbppo": "mbppo_pendulum_replay"}),
}


def train_one(job: tuple[str, str, int]) -> dict[str, float | int | str]:
    import torch

    from mbrl_ai.train import compose_config

    env, method, seed = job
    threshold, presets = ENVS[env]
    torch.set_num_threads(1)
    overrides = [
        f"experiment={presets[method]}",
        f"seed={seed}",
        "eval_every=1024",
        "logger.progress=off",
    ]
    record = run_mbrl_ai(compose_config(overrides), method, env, threshold, stop_when_solved=True)
    return {
        "env": env,
        "method": method,
        "preset": presets[method],
        "seed": seed,
        "solved_at": solved_steps([record])[0],
        "env_steps": record.env_steps,
        "s_per_1k": record.seconds_per_1k,
    }


def table(records: list[dict]) -> str:
    from mbrl_ai.core.stats import iqm, median, stratified_bootstrap_ci

    def fmt(x: float) -> str:
        return "never" if not math.isfinite(x) else f"{x:,.0f}"

    lines = [
        "| preset | solved | real steps to solve: median [95% CI] | IQM [95% CI] | "
        "s per 1k real steps (median) | per seed |",
        "|---|---|---|---|---|---|",
    ]
    stats = {}
    for method in ("ppo", "mbppo"):
        runs = sorted((r for r in records if r["method"] == method), key=lambda r: r["seed"])
        steps = np.array([r["solved_at"] for r in runs], dtype=float)
        strata = ["all"] * len(runs)
        med, iq = float(median(steps)), float(iqm(steps))
        mlo, mhi = stratified_bootstrap_ci(steps, strata, median)
        ilo, ihi = stratified_bootstrap_ci(steps, strata, iqm)
        sec = float(np.median([r["s_per_1k"] for r in runs]))
        stats[method] = (med, iq, sec, (mlo, mhi), (ilo, ihi))
        lines.append(
            f"| `{runs[0]['preset']}` | {int(np.isfinite(steps).sum())}/{len(runs)} | "
            f"{fmt(med)} [{fmt(mlo)}, {fmt(mhi)}] | {fmt(iq)} [{fmt(ilo)}, {fmt(ihi)}] | "
            f"{sec:.2f} | {', '.join(fmt(s) for s in steps)} |"
        )
    (pm, pi, ps, pmci, _), (mm, mi, ms, mmci, _) = stats["ppo"], stats["mbppo"]
    lines += [
        "",
        f"MB-PPO / PPO: median real steps {mm / pm:.2f}, IQM {mi / pi:.2f} (median intervals "
        f"{'do not overlap' if mmci[1] < pmci[0] else 'overlap'}); seconds per real step "
        f"{ms / ps:.1f}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=ENVS, default="cartpole")
    add_seed_arguments(parser, 10, "once solved (always on here)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--from-json", action="store_true")
    args = parser.parse_args()
    last = args.first_seed + args.seeds - 1
    stem = f"presets_{args.env}" + (f"_{args.first_seed}-{last}" if args.first_seed else "")
    path = HERE / f"{stem}.json"
    if args.from_json:
        records = json.loads(path.read_text())
    else:
        jobs = [
            (args.env, method, seed)
            for seed in range(args.first_seed, last + 1)
            for method in ("ppo", "mbppo")
        ]
        with ProcessPoolExecutor(args.jobs) as pool:
            records = list(pool.map(train_one, jobs))
        path.write_text(json.dumps(records, indent=1))
    text = table(records)
    (HERE / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
