"""Does a change alter learning? Train a fixed set of short runs and compare their metrics.

    python experiments/refactor_equivalence/run.py record OUT_DIR     # at the old commit
    python experiments/refactor_equivalence/run.py record OUT_DIR2    # at the new commit
    python experiments/refactor_equivalence/run.py compare OUT_DIR OUT_DIR2

``compare`` prints, for each run, whether ``metrics.jsonl`` and ``eval.jsonl`` agree line by line
on every key except timings, resident memory and the W&B group label (a digest of the config),
and lists the first keys that differ.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

# name -> overrides; short budgets, fixed seed
RUNS = {
    "ppo": ["experiment=ppo_cartpole_hand", "total_timesteps=3072", "seed=0"],
    "mbppo_tuned": ["experiment=mbppo_cartpole", "total_timesteps=2048", "seed=0"],
    "mbppo_default": ["env=CartPole-v1", "n_real_steps=512", "total_timesteps=2048", "seed=0"],
    "mbppo_pendulum_head": [
        "env=Pendulum-v1",
        "n_real_steps=256",
        "total_timesteps=1024",
        "curiosity.intrinsic_head=true",
        "seed=0",
    ],
    "sac": ["experiment=sac_pendulum", "total_timesteps=1500", "sac.learning_starts=500", "seed=0"],
    "mbpo": ["experiment=mbpo_pendulum", "total_timesteps=1000", "seed=0"],
    "dyna_dqn": [
        "experiment=dyna_dqn_cartpole",
        "total_timesteps=1500",
        "dyna_dqn.learning_starts=500",
        "eval_every=500",
        "seed=0",
    ],
    "dreamer": [
        "experiment=dreamer_pendulum",
        "total_timesteps=600",
        "dreamer.learning_starts=400",
        "eval_every=200",
        "eval_episodes=2",
        "seed=0",
    ],
    "pets_value": [
        "experiment=pets_cartpole_continuous_head",
        "total_timesteps=400",
        "mpc.terminal_value=true",
        "mpc.value_steps=50",
        "seed=0",
    ],
    "pets_discrete": ["experiment=pets_cartpole", "total_timesteps=300", "seed=0"],
    "dyna_q": ["experiment=dyna_maze", "total_timesteps=600", "seed=0"],
    "dyna_q_sweeping": [
        "experiment=dyna_maze",
        "dyna_q.method=prioritized_sweeping",
        "total_timesteps=600",
        "seed=0",
    ],
}
IGNORED_SUFFIXES = ("_s", "_per_s", "ms_per_step", "rss_mb", "seconds", "time")
# the W&B group label holds a digest of the config: renaming a key changes it, learning does not
IGNORED_KEYS = ("group",)


def record(out: Path, names: list[str]) -> None:
    from mbrl_ai.train import compose_config, run

    torch.set_num_threads(1)
    for name in names or list(RUNS):
        cfg = compose_config([*RUNS[name], "checkpoint_every=0"])
        run(cfg, out / name)
        print(f"recorded {name}", flush=True)


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        {k: v for k, v in r.items() if not k.endswith(IGNORED_SUFFIXES) and k not in IGNORED_KEYS}
        for r in rows
    ]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def compare(a: Path, b: Path) -> int:
    bad = 0
    for run_dir in sorted(p for p in a.iterdir() if p.is_dir()):
        other = b / run_dir.name
        for fname in ("metrics.jsonl", "eval.jsonl"):
            ra, rb = _rows(run_dir / fname), _rows(other / fname)
            diffs: list[str] = []
            if len(ra) != len(rb):
                diffs.append(f"{len(ra)} vs {len(rb)} lines")
            for i, (x, y) in enumerate(zip(ra, rb, strict=False)):
                keys = sorted(k for k in set(x) | set(y) if not _same(x.get(k), y.get(k)))
                if keys:
                    diffs.append(f"line {i}: {keys[:8]}")
                    break
            status = "identical" if not diffs else "DIFFERS " + "; ".join(diffs)
            bad += bool(diffs)
            print(f"{run_dir.name:22s} {fname:14s} {status}")
    return 1 if bad else 0


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "record":
        record(Path(rest[0]), rest[1:])
    elif cmd == "compare":
        sys.exit(compare(Path(rest[0]), Path(rest[1])))
    else:
        sys.exit(f"unknown command {cmd!r}; allowed: record, compare")
