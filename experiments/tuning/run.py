"""A re-tuned preset against the hand-tuned one, on the tuning seeds and on held-out seeds, in one
invocation.

    python -m mbrl_ai.train -m tune=ppo_cartpole            # the sweep: tuning/ppo_cartpole/
    python experiments/tuning/run.py --best tuning/ppo_cartpole/best.yaml --jobs 2

Both arms run every seed with the same protocol: ``experiment=ppo_cartpole_hand`` (the hand-tuned
preset: evaluations every 1,024 real steps, 10 deterministic episodes, 50,000-step budget), the
re-tuned arm with the best trial's values on top (the values ``experiment=ppo_cartpole`` now
holds). A run ends at the evaluation that solves it (three in a row >= 475); a run
never solved counts as ``inf`` (worst). Reported per arm and seed set: seeds solved, the median
real steps to solve with a 95% bootstrap interval, and the interquartile mean (IQM); then the
per-seed ratio re-tuned / hand-tuned on the held-out seeds.

Writes ``results.json`` (as runs finish) and ``results.md`` next to this file (or under ``--out``);
``--tabulate`` re-tables an existing ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import fmt_steps, median_with_ci, run_mbrl_ai  # noqa: E402

from mbrl_ai.core.stats import iqm  # noqa: E402
from mbrl_ai.train import compose_config  # noqa: E402
from mbrl_ai.tune.sweeper import override_text  # noqa: E402

HERE = Path(__file__).resolve().parent
PRESET = "experiment=ppo_cartpole_hand"
THRESHOLD = 475.0


def arms(best_file: Path) -> dict[str, list[str]]:
    best = yaml.safe_load(best_file.read_text())
    tuned = [f"{k}={override_text(v)}" for k, v in best["best_params"].items()]
    return {"hand-tuned": [PRESET], "re-tuned": [PRESET, *tuned]}


def one_run(arm: str, overrides: list[str], seed: int) -> dict:
    import torch

    torch.set_num_threads(1)
    cfg = compose_config([*overrides, f"seed={seed}", "logger.progress=off"])
    rec = run_mbrl_ai(cfg, arm, " ".join(overrides), THRESHOLD, stop_when_solved=True)
    return {"arm": arm, "seed": seed, "solved_at": rec.solved_at, "env_steps": rec.env_steps,
            "train_seconds": rec.train_seconds}  # fmt: skip


def table(results: list[dict], seed_sets: dict[str, list[int]], overrides: dict) -> str:
    lines = [
        "| arm | seeds | solved | median steps [95% CI] | IQM steps |",
        "|---|---|---|---|---|",
    ]
    steps: dict[tuple[str, int], float] = {}
    for r in results:
        steps[r["arm"], r["seed"]] = r["solved_at"] if r["solved_at"] is not None else np.inf
    for name, seeds in seed_sets.items():
        for arm in overrides:
            values = [steps[arm, s] for s in seeds if (arm, s) in steps]
            if not values:
                continue
            med, low, high = median_with_ci(values)
            solved = sum(np.isfinite(values))
            lines.append(
                f"| {arm} | {name} ({len(values)}) | {solved}/{len(values)} | "
                f"{fmt_steps(med)} [{fmt_steps(low)}, {fmt_steps(high)}] | "
                f"{fmt_steps(float(iqm(np.array(values))))} |"
            )
    held = seed_sets["held-out"]
    pairs = [(steps["re-tuned", s], steps["hand-tuned", s]) for s in held
             if ("re-tuned", s) in steps and ("hand-tuned", s) in steps]  # fmt: skip
    ratios = [a / b for a, b in pairs if np.isfinite(a) and np.isfinite(b)]
    if ratios:
        lines += [
            "",
            f"Held-out seeds, re-tuned / hand-tuned real steps per seed (both solved, "
            f"{len(ratios)} of {len(pairs)}): median {np.median(ratios):.2f}, range "
            f"{min(ratios):.2f}–{max(ratios):.2f}; re-tuned faster on "
            f"{sum(a < b for a, b in pairs)}, slower on {sum(a > b for a, b in pairs)}.",
        ]
    lines += ["", "Arms:"] + [f"- {arm}: `{' '.join(o)}`" for arm, o in overrides.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--best", type=Path, required=True, help="the sweep's best.yaml")
    parser.add_argument("--tuning-seeds", default="0-4", help="first-last")
    parser.add_argument("--held-out-seeds", default="100-119", help="first-last")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (<= cores)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--tabulate", action="store_true", help="re-table results.json only")
    args = parser.parse_args()

    def seed_range(text: str) -> list[int]:
        first, _, last = text.partition("-")
        return list(range(int(first), int(last or first) + 1))

    seed_sets = {"tuning": seed_range(args.tuning_seeds),
                 "held-out": seed_range(args.held_out_seeds)}  # fmt: skip
    overrides = arms(args.best)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "results.json"
    results: list[dict] = json.loads(store.read_text())["runs"] if args.tabulate else []
    if not args.tabulate:
        todo = [(arm, o, s) for seeds in seed_sets.values() for s in seeds
                for arm, o in overrides.items()]  # fmt: skip
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(one_run, *job) for job in todo]
            for future in as_completed(futures):
                results.append(future.result())
                r = results[-1]
                print(f"{r['arm']} seed {r['seed']}: solved at {r['solved_at']}", flush=True)
                store.write_text(json.dumps({"overrides": overrides, "seeds": seed_sets,
                                             "runs": results}, indent=1))  # fmt: skip
    text = table(results, seed_sets, overrides)
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
