"""Our PPO vs Stable-Baselines3's PPO on CartPole-v1: sample efficiency and training throughput.

Both sides run with the same hyperparameters, the same networks (64-64 tanh, orthogonal init,
separate actor and critic), one torch thread, and the same evaluation protocol: after the update
that crosses each multiple of ``eval_every`` real steps, ``evaluate_policy`` plays 10 episodes
with deterministic actions on separate envs reset with the same seed. Training throughput is real
env steps per second of training, evaluation time excluded, and runs of the two codebases are
interleaved seed by seed so that machine noise hits both alike.

    python experiments/ppo_baseline/run.py                       # 5 seeds, both configs
    python experiments/ppo_baseline/run.py --seeds 2 --steps 20000 --configs default
    python experiments/ppo_baseline/run.py --first-seed 5 --stop-when-solved --out /tmp/held_out

``--first-seed N`` runs seeds N..N+k-1 (k = ``--seeds``); ``--stop-when-solved`` ends each run
once it is solved (3 evaluations in a row ≥ 475; its steps to solve are the full run's, its final
return and throughput are the stopped run's).

Writes ``results.json`` (every run's evaluation curve and timing) and ``results.md`` (the table)
next to this file, or under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mbrl_ai.config import Config
from mbrl_ai.core.stats import median_iqr
from mbrl_ai.envs import make_vec_env
from mbrl_ai.runtime.evaluation import EVAL_SEED_OFFSET, evaluate_policy
from mbrl_ai.train import compose_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchlib import (  # noqa: E402
    RunRecord,
    add_seed_arguments,
    fmt_steps,
    plot_curves,
    run_mbrl_ai,
)

HERE = Path(__file__).resolve().parent
THRESHOLD = 475.0
CONFIGS = {
    # the pseudocode's section-1 values, which are also SB3's PPO defaults
    "default": ["algo=ppo", "eval_every=1024"],
    "tuned": ["experiment=ppo_cartpole_hand"],
}


class _SB3Policy:
    """Lets ``evaluate_policy`` drive an SB3 policy: deterministic action from a float tensor."""

    discrete = True

    def __init__(self, policy) -> None:  # noqa: ANN001
        self.policy = policy

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.policy._predict(obs, deterministic=True)


def run_sb3(cfg: Config, stop_when_solved: bool = False) -> RunRecord:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    eval_envs = make_vec_env(
        cfg.env, min(cfg.eval_n_envs, cfg.eval_episodes), cfg.seed + EVAL_SEED_OFFSET
    )
    rec = RunRecord("sb3", "", cfg.seed)
    eval_seconds = 0.0

    def evaluate(model, steps: int) -> None:  # noqa: ANN001
        nonlocal eval_seconds
        t = time.perf_counter()
        returns = evaluate_policy(
            _SB3Policy(model.policy), eval_envs, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET
        )
        rec.steps.append(steps)
        rec.means.append(float(np.mean(returns)))
        eval_seconds += time.perf_counter() - t

    class EvalAfterUpdate(BaseCallback):
        # on_rollout_start of iteration k+1 comes right after the update of iteration k
        def __init__(self) -> None:
            super().__init__()
            self.next_eval = cfg.eval_every

        def _on_rollout_start(self) -> None:
            if self.num_timesteps >= self.next_eval:
                evaluate(self.model, self.num_timesteps)
                self.next_eval = (self.num_timesteps // cfg.eval_every + 1) * cfg.eval_every
                rec.stopped_when_solved = stop_when_solved and rec.solved_at is not None

        def _on_step(self) -> bool:
            return not rec.stopped_when_solved  # False ends learn() at the next env step

    lr = cfg.lr_actor_critic
    model = PPO(
        "MlpPolicy",
        sb3_make_vec_env(cfg.env, n_envs=cfg.n_envs, seed=cfg.seed),
        learning_rate=(lambda remaining: lr * remaining) if cfg.ppo.anneal_lr else lr,
        n_steps=cfg.n_real_steps // cfg.n_envs,
        batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=cfg.clip_range,
        clip_range_vf=cfg.ppo.clip_range_vf,
        normalize_advantage=cfg.ppo.normalize_advantage,
        ent_coef=cfg.ppo.ent_coef,
        vf_coef=cfg.ppo.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        target_kl=cfg.ppo.target_kl,
        policy_kwargs={
            "net_arch": {
                "pi": list(cfg.network.actor_hidden),
                "vf": list(cfg.network.critic_hidden),
            },
            "activation_fn": torch.nn.Tanh,
            "ortho_init": cfg.network.ortho_init,
        },
        seed=cfg.seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=cfg.total_timesteps, callback=EvalAfterUpdate())
    rec.stopped_when_solved &= model.num_timesteps < cfg.total_timesteps  # else it ran it all
    if not rec.stopped_when_solved:
        evaluate(model, model.num_timesteps)
    rec.train_seconds = time.perf_counter() - start - eval_seconds
    rec.env_steps = model.num_timesteps
    eval_envs.close()
    return rec


def summarise(records: list[RunRecord], budget: int) -> str:
    """The Markdown table: steps to solve (median, IQR), final return, throughput ratio."""
    lines = [
        "| config | method | solved | steps to solve: median [IQR] | final eval return: median [IQR] | train steps/s: median | ours / SB3 steps/s: median [min, max] |",
        "|---|---|---|---|---|---|---|",
    ]
    for config in dict.fromkeys(r.config for r in records):
        for method in ("ours", "sb3"):
            runs = [r for r in records if r.config == config and r.method == method]
            if not runs:
                continue
            solved = [r.solved_at if r.solved_at is not None else np.inf for r in runs]
            med, q25, q75 = median_iqr(solved)
            fmed, f25, f75 = median_iqr([r.means[-1] for r in runs])
            # a stopped run's last evaluation is where it stopped, not the end of the budget
            final = (
                "- (stopped once solved)"
                if any(r.stopped_when_solved for r in runs)
                else f"{fmed:.1f} [{f25:.1f}, {f75:.1f}]"
            )
            tput = np.median([r.throughput for r in runs])
            ratio = ""
            if method == "ours":
                by_seed = {r.seed: r for r in records if r.config == config and r.method == "sb3"}
                ratios = [
                    r.throughput / by_seed[r.seed].throughput for r in runs if r.seed in by_seed
                ]
                if ratios:
                    ratio = f"{np.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"
            n_solved = sum(r.solved_at is not None for r in runs)
            lines.append(
                f"| {config} | {method} | {n_solved}/{len(runs)} | {fmt_steps(med)} [{fmt_steps(q25)}, {fmt_steps(q75)}] "
                f"| {final} | {tput:.0f} | {ratio} |"
            )
    lines.append("")
    lines.append(f"Unsolved runs count as > {budget} steps (shown as inf).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_seed_arguments(parser, 5, "once solved (3 evaluations in a row >= 475)")
    parser.add_argument("--steps", type=int, default=50_000, help="real steps per run")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--methods", nargs="+", default=["ours", "sb3"], choices=["ours", "sb3"])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "--from-json", action="store_true", help="redo table and figure from results.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.from_json:
        records = [RunRecord(**r) for r in json.loads((args.out / "results.json").read_text())]
        report(records, args)
        return
    records: list[RunRecord] = []
    for config in args.configs:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            overrides = [
                *CONFIGS[config],
                f"seed={seed}",
                f"total_timesteps={args.steps}",
                "logger.progress=off",
            ]
            cfg = compose_config(overrides)
            for method in args.methods:
                stop = args.stop_when_solved
                rec = (
                    run_mbrl_ai(cfg, "ours", config, stop_when_solved=stop)
                    if method == "ours"
                    else run_sb3(cfg, stop)
                )
                rec.config = config
                records.append(rec)
                print(
                    f"{config:8s} {method:5s} seed {seed}: solved at {rec.solved_at}, "
                    f"final {rec.means[-1]:.1f}, {rec.throughput:.0f} steps/s",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps([r.__dict__ for r in records], indent=1))
    report(records, args)


def report(records: list[RunRecord], args: argparse.Namespace) -> None:
    table = summarise(records, args.steps)
    (args.out / "results.md").write_text(table + "\n")
    labels = {"ours": "mbrl_ai PPO", "sb3": "SB3 PPO"}
    if not any(r.stopped_when_solved for r in records):  # stopped curves end at different steps
        plot_curves(records, args.out / "cartpole.png", "CartPole-v1", labels)
    print(table)


if __name__ == "__main__":
    main()
