"""Deep Dyna on CartPole-v1: Dyna-DQN against our DQN at the same gradient updates per real step,
and our DQN against Stable-Baselines3's DQN at rl-zoo's hyperparameters, in one invocation.

    python experiments/dyna/dqn.py --seeds 5 --jobs 2
    python experiments/dyna/dqn.py --arms dqn sb3_dqn --seeds 5 --first-seed 10

Every arm is evaluated the same way: every 2,048 real steps, 10 deterministic (greedy) episodes on
the evaluation envs our runs use; solved = three evaluations in a row >= 475. Writes
``dqn.json`` and ``dqn.md`` next to this file (``--name`` for another stem).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import (  # noqa: E402
    RunRecord,
    add_seed_arguments,
    fmt_steps,
    learn_sb3,
    median_with_ci,
)

HERE = Path(__file__).resolve().parent
THRESHOLD = 475.0
ARMS = {
    "dqn": ["experiment=dqn_cartpole"],
    "dqn_single": ["experiment=dqn_cartpole", "dyna_dqn.double=false"],
    "dyna": ["experiment=dyna_dqn_cartpole"],
    "dyna_known": ["experiment=dyna_dqn_cartpole", "world_model.termination=known"],
    "sb3_dqn": ["experiment=dqn_cartpole"],  # its keys, given to SB3's DQN
}
LABELS = {
    "dqn": "our DQN (k = 0)",
    "dqn_single": "our DQN without double Q (as SB3's)",
    "dyna": "Dyna-DQN (k = 4, learned model)",
    "dyna_known": "Dyna-DQN, CartPole's known termination rule (ablation)",
    "sb3_dqn": "SB3 DQN (rl-zoo)",
}


def run_sb3_dqn(cfg, stop_when_solved: bool) -> RunRecord:  # noqa: ANN001
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    rec = RunRecord("sb3_dqn", "", cfg.seed, threshold=THRESHOLD)
    d = cfg.dyna_dqn
    model = DQN(
        "MlpPolicy",
        sb3_make_vec_env(cfg.env, n_envs=1, seed=cfg.seed),
        learning_rate=d.lr,
        batch_size=d.batch_size,
        buffer_size=d.buffer_size,
        learning_starts=d.learning_starts,
        gamma=cfg.gamma,
        target_update_interval=d.target_update_interval,
        train_freq=d.train_freq,
        gradient_steps=d.gradient_steps,
        exploration_fraction=d.exploration_fraction,
        exploration_initial_eps=d.exploration_initial_eps,
        exploration_final_eps=d.exploration_final_eps,
        max_grad_norm=d.max_grad_norm,
        policy_kwargs={"net_arch": list(d.hidden)},
        seed=cfg.seed,
        device="cpu",
    )
    learn_sb3(model, cfg, rec, discrete=True, stop_when_solved=stop_when_solved)
    return rec


def train_one(arm: str, seed: int, stop: bool) -> dict:
    import torch
    from benchlib import run_mbrl_ai

    from mbrl_ai.train import compose_config

    torch.set_num_threads(1)
    cfg = compose_config([*ARMS[arm], f"seed={seed}", "logger.progress=off", "checkpoint_every=0"])
    if arm == "sb3_dqn":
        rec = run_sb3_dqn(cfg, stop)
    else:
        rec = run_mbrl_ai(cfg, arm, "", THRESHOLD, stop_when_solved=stop)
    return asdict(rec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=["dqn", "dyna", "sb3_dqn"], choices=list(ARMS))
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (2 cores: 2)")
    parser.add_argument("--name", default="dqn", help="stem of the written files")
    add_seed_arguments(parser, 5, "once solved")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(arm, seed) for seed in seeds for arm in args.arms]
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(train_one, arm, seed, args.stop_when_solved) for arm, seed in jobs]
        records = [RunRecord(**f.result()) for f in futures]
    rows = [
        "| arm | seeds solved | real steps to solve: median [95% CI] | final eval (median) "
        "| s per 1k real steps (median) |",
        "|---|---|---|---|---|",
    ]
    medians = {}
    for arm in args.arms:
        runs = [r for r in records if r.method == arm]
        steps = [r.solved_at if r.solved_at is not None else np.inf for r in runs]
        med, lo, hi = median_with_ci(steps)
        medians[arm] = med
        rows.append(
            f"| {LABELS[arm]} | {sum(np.isfinite(steps))}/{len(runs)} | {fmt_steps(med)} "
            f"[{fmt_steps(lo)}, {fmt_steps(hi)}] | {np.median([r.means[-1] for r in runs]):.0f} "
            f"| {np.median([r.seconds_per_1k for r in runs]):.2f} |"
        )
    ratios = []
    for a, b, what in (("dyna", "dqn", "Dyna-DQN ÷ our DQN"), ("dqn", "sb3_dqn", "ours ÷ SB3")):
        if a in medians and b in medians and np.isfinite(medians[b]):
            ratios.append(f"{what}, median real steps to solve: {medians[a] / medians[b]:.2f}")
    table = (
        f"CartPole-v1, seeds {args.first_seed}–{args.first_seed + args.seeds - 1}, 50k real steps, "
        "evaluated every 2,048 (10 greedy episodes); solved = 3 evaluations in a row ≥ 475\n\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(ratios)
        + "\n"
    )
    (HERE / f"{args.name}.md").write_text(table)
    (HERE / f"{args.name}.json").write_text(json.dumps([asdict(r) for r in records], indent=1))
    print(table)


if __name__ == "__main__":
    main()
