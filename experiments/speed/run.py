"""Training throughput: ours against Stable-Baselines3 and a minimal reference loop, MB-PPO against
PPO, SAC and MBPO against SB3's SAC, imagination against real collection, and peak memory.

Every measurement is one arm run in a fresh process (so that start-up costs and peak RSS are the
arm's own), with one torch thread, and the arms are interleaved repeat by repeat so that machine
noise hits all of them alike. Repeat k runs every arm at seed k: a model-based run's cost
depends on its seed (each world-model fit stops early when it stops improving), so the repeats
also sample seeds. Ratios are taken within a repeat, then summarised as the median and the range
over repeats.

    python experiments/speed/run.py                       # every arm, 3 repeats
    python experiments/speed/run.py --repeats 5 --arms ppo ppo_minimal ppo_sb3
    python experiments/speed/run.py --against <commit>    # also our arms at another commit

``--against REV`` checks REV out into a temporary git worktree and runs our arms there too
(``<arm>@REV``): a before/after comparison in one invocation.

Timing: training seconds per real environment step, start-up included (building the agent and
optimisers, the first env reset), final evaluation excluded. Writes ``results.json`` and
``results.md`` next to this file, or under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# arm -> (description, real steps)
ARMS: dict[str, tuple[str, int]] = {
    "ppo": ("our PPO, CartPole-v1, SB3's default hyperparameters", 20_480),
    "ppo_minimal": ("a minimal single-env PPO loop, same hyperparameters and networks", 20_480),
    "ppo_sb3": ("Stable-Baselines3 PPO, same hyperparameters", 20_480),
    "mbppo": (
        "our MB-PPO at the pseudocode's defaults (RND on, its lean fit), CartPole-v1",
        20_480,
    ),
    "mbppo_ensemble": ("our MB-PPO at the defaults with world_model=ensemble (RND on)", 20_480),
    "mbppo_preset": ("our MB-PPO, experiment=mbppo_cartpole", 6_144),
    "sac": ("our SAC, Pendulum-v1, SB3's default hyperparameters", 2_000),
    "sac_sb3": ("Stable-Baselines3 SAC, same hyperparameters", 2_000),
    "mbpo": ("our MBPO, experiment=mbpo_pendulum", 750),
}
OURS = ("ppo", "mbppo", "mbppo_preset", "sac", "mbpo")


# ----------------------------------------------------------------------------------------------
# one arm, in its own process
# ----------------------------------------------------------------------------------------------


def _ours(overrides: list[str], steps: int, seed: int) -> dict[str, Any]:
    from mbrl_ai.core.utils import read_jsonl
    from mbrl_ai.train import compose_config, run

    cfg = compose_config(
        [
            *overrides,
            f"seed={seed}",
            f"total_timesteps={steps}",
            f"eval_every={10 * steps}",  # one evaluation, at the end (its time is excluded)
            "eval_episodes=1",
            "checkpoint_every=0",
            "logger.progress=off",
            "logger.mode=disabled",
        ]
    )
    with tempfile.TemporaryDirectory() as out:
        result = run(cfg, Path(out))
        metrics = read_jsonl(Path(out) / "metrics.jsonl")
    record: dict[str, Any] = {"steps": result.env_steps, "seconds": result.train_seconds}
    imagined = [m["imagined_steps_per_s"] for m in metrics if m.get("imagined_steps_per_s")]
    collect = [
        m["real_transitions"] / m["collect_s"]
        for m in metrics
        if m.get("collect_s") and "real_transitions" in m
    ]
    if imagined and collect:
        record["imagined_per_s"] = float(np.median(imagined))
        record["real_per_s"] = float(np.median(collect))
    return record


def _ppo_minimal(steps: int, seed: int) -> dict[str, Any]:
    """PPO as one would write it in a page: one env, no vector wrapper, two small MLPs, GAE in
    numpy, clipped updates on shuffled minibatches. The reference for collection overhead."""
    import gymnasium as gym
    import torch
    from torch import nn

    start = time.perf_counter()
    env = gym.make("CartPole-v1")

    def mlp(out: int, gain: float) -> nn.Sequential:
        net = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh())
        net.append(nn.Linear(64, out))
        for layer, g in zip(net[::2], (2**0.5, 2**0.5, gain), strict=True):
            nn.init.orthogonal_(layer.weight, g)
            nn.init.zeros_(layer.bias)
        return net

    actor, critic = mlp(2, 0.01), mlp(1, 1.0)
    params = [*actor.parameters(), *critic.parameters()]
    opt = torch.optim.Adam(params, lr=3e-4, eps=1e-5)
    n, gamma, lam = 2048, 0.99, 0.95
    obs_buf = np.zeros((n, 4), np.float32)
    act_buf = np.zeros(n, np.int64)
    logp_buf, val_buf, rew_buf = np.zeros(n, np.float32), np.zeros(n + 1), np.zeros(n)
    done_buf = np.zeros(n)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps // n):
        with torch.no_grad():
            for t in range(n):
                x = torch.as_tensor(obs, dtype=torch.float32)
                logits = actor(x)
                a = torch.distributions.Categorical(logits=logits).sample()
                obs_buf[t], act_buf[t] = obs, int(a)
                logp_buf[t] = torch.log_softmax(logits, -1)[a]
                val_buf[t] = critic(x).item()
                obs, r, term, trunc, _ = env.step(int(a))
                rew_buf[t], done_buf[t] = r, term
                if term or trunc:
                    obs, _ = env.reset()
            val_buf[n] = critic(torch.as_tensor(obs, dtype=torch.float32)).item()
        adv, last = np.zeros(n), 0.0
        for t in reversed(range(n)):
            delta = rew_buf[t] + gamma * val_buf[t + 1] * (1 - done_buf[t]) - val_buf[t]
            last = delta + gamma * lam * (1 - done_buf[t]) * last
            adv[t] = last
        ret = torch.as_tensor(adv + val_buf[:n], dtype=torch.float32)
        adv_t = torch.as_tensor(adv, dtype=torch.float32)
        o, a, old = map(torch.as_tensor, (obs_buf, act_buf, logp_buf))
        for _ in range(10):
            for idx in np.split(rng.permutation(n), n // 64):
                logp_all = torch.log_softmax(actor(o[idx]), -1)
                logp = logp_all.gather(1, a[idx, None]).squeeze(1)
                mb_adv = adv_t[idx]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                ratio = (logp - old[idx]).exp()
                pg = -torch.min(ratio * mb_adv, ratio.clamp(0.8, 1.2) * mb_adv).mean()
                v_loss = 0.5 * (critic(o[idx]).squeeze(1) - ret[idx]).pow(2).mean()
                loss = pg + 0.5 * v_loss
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, 0.5)
                opt.step()
    return {"steps": steps, "seconds": time.perf_counter() - start}


def _sb3(kind: str, steps: int, seed: int) -> dict[str, Any]:
    import torch  # noqa: F401 (imported before timing, like ours)

    start = time.perf_counter()
    if kind == "ppo":
        from stable_baselines3 import PPO

        model = PPO("MlpPolicy", "CartPole-v1", seed=seed, device="cpu")
    else:
        from stable_baselines3 import SAC

        model = SAC("MlpPolicy", "Pendulum-v1", seed=seed, device="cpu")
    model.learn(total_timesteps=steps)
    return {"steps": steps, "seconds": time.perf_counter() - start}


def arm_main(arm: str, steps: int, seed: int) -> None:
    import torch

    torch.set_num_threads(1)
    if arm == "ppo":
        record = _ours(["algo=ppo"], steps, seed)
    elif arm == "mbppo":
        record = _ours(["algo=mbppo"], steps, seed)
    elif arm == "mbppo_ensemble":
        record = _ours(["algo=mbppo", "world_model=ensemble"], steps, seed)
    elif arm == "mbppo_preset":
        record = _ours(["experiment=mbppo_cartpole"], steps, seed)
    elif arm == "sac":
        record = _ours(["algo=sac", "env=Pendulum-v1"], steps, seed)
    elif arm == "mbpo":
        record = _ours(["experiment=mbpo_pendulum"], steps, seed)
    elif arm == "ppo_minimal":
        record = _ppo_minimal(steps, seed)
    elif arm in ("ppo_sb3", "sac_sb3"):
        record = _sb3(arm.removesuffix("_sb3"), steps, seed)
    else:
        raise SystemExit(f"unknown arm {arm}")
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(record))


# ----------------------------------------------------------------------------------------------
# the study
# ----------------------------------------------------------------------------------------------


def run_arm(arm: str, steps: int, seed: int, root: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--arm",
            arm,
            "--steps",
            str(steps),
            "--seed",
            str(seed),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{arm} in {root} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(values: list[float]) -> str:
    return f"{np.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def write_tables(results: dict[str, list[dict[str, Any]]], out: Path, header: str) -> str:
    per_step = {a: [r["seconds"] / r["steps"] * 1e6 for r in rs] for a, rs in results.items()}
    lines = [header, "", "| arm | what | µs per real step: median [min, max] | peak RSS MB |"]
    lines.append("|---|---|---|---|")
    for arm, rs in results.items():
        what = ARMS[arm.split("@")[0]][0]
        rss = np.median([r["peak_rss_mb"] for r in rs])
        lines.append(f"| `{arm}` | {what} | {summarise(per_step[arm])} | {rss:.0f} |")

    def ratio(a: str, b: str) -> list[float] | None:
        if a not in per_step or b not in per_step:
            return None
        return [x / y for x, y in zip(per_step[a], per_step[b], strict=True)]

    lines += ["", "| ratio (per repeat) | median [min, max] |", "|---|---|"]
    pairs = [
        ("ppo_sb3", "ppo", "PPO throughput: ours ÷ SB3"),
        ("ppo", "ppo_minimal", "PPO cost: ours ÷ minimal loop"),
        ("mbppo", "ppo", "MB-PPO (defaults) cost ÷ PPO, per real step"),
        ("mbppo_ensemble", "ppo", "MB-PPO (world_model=ensemble) cost ÷ PPO, per real step"),
        ("mbppo_preset", "ppo", "MB-PPO (preset) cost ÷ PPO, per real step"),
        ("sac_sb3", "sac", "SAC throughput: ours ÷ SB3"),
        ("mbpo", "sac", "MBPO cost ÷ SAC, per real step"),
    ]
    pairs += [
        (f"{a}@{rev}", a, f"{a}: speed-up over {rev}") for a in OURS for rev in _revs(results)
    ]
    for a, b, what in pairs:
        r = ratio(a, b)
        if r is not None:
            lines.append(f"| {what} | {summarise(r)} |")
    imagination = [
        r["imagined_per_s"] / r["real_per_s"] for r in results.get("mbppo", []) if "real_per_s" in r
    ]
    if imagination:
        lines.append(
            f"| imagination ÷ real collection (MB-PPO defaults, transitions/s) | "
            f"{summarise(imagination)} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return text


def _revs(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    return sorted({a.split("@")[1] for a in results if "@" in a})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--against", help="also run our arms at this git revision")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    if args.arm:
        arm_main(args.arm, args.steps, args.seed)
        return
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    roots = {"": ROOT}
    worktree = None
    if args.against:
        worktree = Path(tempfile.mkdtemp(prefix="speed-against-"))
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), args.against],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        roots[f"@{args.against}"] = worktree
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for repeat in range(args.repeats):
            for arm in args.arms:
                for tag, root in roots.items():
                    if tag and arm not in OURS:
                        continue
                    record = run_arm(arm, ARMS[arm][1], repeat, root)  # seed = repeat
                    results.setdefault(arm + tag, []).append(record)
                    per_step = record["seconds"] / record["steps"] * 1e6
                    print(
                        f"repeat {repeat}: {arm}{tag}: {per_step:.0f} µs per real step", flush=True
                    )
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)
            shutil.rmtree(worktree, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    header = (
        f"{args.repeats} repeats, arms interleaved, one torch thread, "
        f"`python experiments/speed/run.py {' '.join(sys.argv[1:])}`".rstrip()
    )
    print(write_tables(results, args.out, header))


if __name__ == "__main__":
    main()
