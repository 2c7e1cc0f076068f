"""PETS-style MPC with the learned ensemble: the planners against each other and against our
model-free and Dyna-style agents, one invocation per environment.

    python experiments/mpc/run.py --env cartpole_continuous --seeds 5 --jobs 2
    python experiments/mpc/run.py --env pendulum --arms cem sac mbpo --seeds 5
    python experiments/mpc/run.py --env cartpole --stop-when-solved
    python experiments/mpc/run.py --env cartpole --arms cem -- total_timesteps=2000

Every arm runs the same seeds with its preset's evaluation protocol (``eval_every`` real steps,
deterministic actions: MPC plans from scratch each evaluation step). Reported per arm: the share
of seeds that reach the threshold three evaluations in a row within the budget, the median real
steps to get there with a 95% bootstrap interval, the median final return, and for MPC the
planning milliseconds per real step and model rollout steps per real step. Arms marked *known*
score plans with the environment's own reward and termination instead of the model's heads.

Writes ``<env>.json`` and ``<env>.md`` next to this file (or under ``--out``).
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
    run_mbrl_ai,
    solved_steps,
)

HERE = Path(__file__).resolve().parent
KNOWN = ["mpc.reward=known", "world_model.termination=known"]
# the done probability from a classifier of the predicted next state (still learned)
NEXT_DONE = ["world_model.done_input=next_state"]

# env -> (threshold, arm -> overrides)
ENVS: dict[str, tuple[float, dict[str, list[str]]]] = {
    "cartpole_continuous": (
        195.0,
        {
            "cem": ["experiment=pets_cartpole_continuous_head"],
            "icem": ["experiment=pets_cartpole_continuous_head", "mpc.planner=icem"],
            "mppi": ["experiment=pets_cartpole_continuous_head", "mpc.planner=mppi"],
            "random": ["experiment=pets_cartpole_continuous_head", "mpc.planner=random"],
            "cem_value": ["experiment=pets_cartpole_continuous_head", "mpc.terminal_value=true"],
            "cem_next_done": ["experiment=pets_cartpole_continuous_head", *NEXT_DONE],
            # ... with the sweep's best done weight and refit schedule (tuning/, trial 12): the
            # preset pets_cartpole_continuous
            "cem_next_done_tuned": ["experiment=pets_cartpole_continuous"],
            "cem_known": ["experiment=pets_cartpole_continuous_head", *KNOWN],
        },
    ),
    "pendulum": (
        -200.0,
        {
            "cem": ["experiment=pets_pendulum"],
            "icem": ["experiment=pets_pendulum", "mpc.planner=icem"],
            "cem_known": ["experiment=pets_pendulum", "mpc.reward=known"],
            "sac": ["experiment=sac_pendulum", "total_timesteps=2000", "eval_every=250"],
            "mbpo": ["experiment=mbpo_pendulum", "total_timesteps=2000", "eval_every=250"],
        },
    ),
    "cartpole": (
        475.0,
        {
            "cem": ["experiment=pets_cartpole_head"],
            "cem_value": ["experiment=pets_cartpole_head", "mpc.terminal_value=true"],
            "cem_next_done": ["experiment=pets_cartpole_head", *NEXT_DONE],
            "cem_next_done_value": [
                "experiment=pets_cartpole_head",
                *NEXT_DONE,
                "mpc.terminal_value=true",
            ],
            # the continuous preset's termination and refit settings on the discrete task: the
            # preset pets_cartpole (with total_timesteps=2000)
            "cem_next_done_value_refit50": [
                "experiment=pets_cartpole_head",
                *NEXT_DONE,
                "mpc.terminal_value=true",
                "world_model.done_pos_weight=23",
                "mpc.refit_every=50",
                "mpc.model_epochs=50",
            ],
            "cem_known": ["experiment=pets_cartpole_head", *KNOWN],
            "cem_preset": ["experiment=pets_cartpole"],
            "ppo": ["experiment=ppo_cartpole_hand"],
            "mbppo": ["experiment=mbppo_cartpole"],
        },
    ),
}


def train_one(job: tuple[str, str, list[str], int, float, bool]) -> RunRecord:
    import torch

    from mbrl_ai.train import compose_config

    env, arm, overrides, seed, threshold, stop = job
    torch.set_num_threads(1)
    cfg = compose_config([*overrides, f"seed={seed}", "logger.progress=off", "checkpoint_every=0"])
    return run_mbrl_ai(cfg, arm, env, threshold, stop_when_solved=stop)


def table(records: list[RunRecord], arms: list[str]) -> str:
    lines = [
        "| arm | solved | real steps to threshold: median [95% CI] | final return: median "
        "| planning ms / real step | model steps / real step |",
        "|---|---|---|---|---|---|",
    ]
    for arm in arms:
        runs = [r for r in records if r.method == arm]
        steps = solved_steps(runs)
        med, low, high = median_with_ci(steps)
        solved = sum(np.isfinite(steps))
        final = np.median([r.means[-1] for r in runs]) if runs else float("nan")
        plan = [r.diagnostics.get("plan_ms_per_step") for r in runs]
        model = [r.diagnostics.get("model_steps_per_real_step") for r in runs]
        plan_text = f"{np.median(plan):.0f}" if all(p is not None for p in plan) else "–"
        model_text = f"{np.median(model):,.0f}" if all(m is not None for m in model) else "–"
        lines.append(
            f"| {arm} | {solved}/{len(runs)} | {fmt_steps(med)} [{fmt_steps(low)}, "
            f"{fmt_steps(high)}] | {final:.1f} | {plan_text} | {model_text} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=list(ENVS), required=True)
    parser.add_argument("--arms", nargs="+", help="a subset of the env's arms (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (2 cores: at most 2)")
    parser.add_argument("--out", type=Path, default=HERE)
    add_seed_arguments(parser, seeds=5, solved="once it is solved")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides added to every arm (after --), e.g. total_timesteps=2000",
    )
    args = parser.parse_args()
    threshold, arms = ENVS[args.env]
    chosen = args.arms or list(arms)
    unknown = set(chosen) - set(arms)
    if unknown:
        parser.error(f"--arms: {sorted(unknown)}: allowed for {args.env}: {', '.join(arms)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [
        (args.env, arm, [*arms[arm], *args.overrides], seed, threshold, args.stop_when_solved)
        for seed in seeds
        for arm in chosen
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        records = list(pool.map(train_one, jobs))
    args.out.mkdir(parents=True, exist_ok=True)
    text = (
        f"{args.env}: threshold {threshold:g}, seeds {seeds.start}–{seeds.stop - 1}, "
        f"`python experiments/mpc/run.py {' '.join(sys.argv[1:])}`\n\n" + table(records, chosen)
    )
    (args.out / f"{args.env}.md").write_text(text)
    (args.out / f"{args.env}.json").write_text(
        json.dumps([r.__dict__ for r in records], indent=1, default=float)
    )
    print(text)


if __name__ == "__main__":
    main()
