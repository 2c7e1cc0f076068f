"""How long each algorithm's shipped presets take to stop after SIGTERM, at a random moment.

For every preset named below, ``--tries`` runs of ``python -m mbrl_ai.train experiment=<preset>``
each get SIGTERM at a moment drawn uniformly from ``--window`` seconds after the run's first line
of metrics (so inside training: model fits, imagination, planning, gradient steps or an
evaluation). Measured per try: seconds from the signal to the process's exit, its exit code (143
is a checkpointed stop), and the real step its checkpoint holds. The tests
(``tests/test_every_algorithm.py``) show that such a stop resumes bit-identically; this script
measures the latency at the presets' real sizes, where a test cannot afford to.

    python experiments/stop_latency/run.py --jobs 2                 # every preset, 3 tries each
    python experiments/stop_latency/run.py --presets pets_pendulum --tries 5

Writes ``<out>/results.md`` and ``<out>/tries.jsonl`` (default ``--out``: this folder).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mbrl_ai.core.checkpoint import read_checkpoint  # noqa: E402

# one or more presets per algorithm, the slowest iterations first in mind (MuJoCo ones need the
# `mujoco` extra and are left out by default)
PRESETS = {
    "ppo": ["ppo_cartpole", "ppo_pendulum"],
    "mbppo": ["mbppo_cartpole_replay", "mbppo_adaptive_pendulum"],
    "sac": ["sac_pendulum"],
    "mbpo": ["mbpo_pendulum"],
    "mpc": ["pets_pendulum", "pets_cartpole"],
    "dyna_q": ["dyna_q_taxi"],
    "dyna_dqn": ["dyna_dqn_cartpole"],
    "dreamer": ["dreamer_cartpole", "dreamer_pendulum"],
}


def one_try(preset: str, delay: float, work: Path) -> dict:
    out = work / "run"
    cmd = [sys.executable, "-m", "mbrl_ai.train", f"experiment={preset}",
           "logger.progress=off", f"hydra.run.dir={out}"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    metrics = out / "metrics.jsonl"
    while proc.poll() is None and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.05)
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() - started < delay:
        time.sleep(0.05)
    if proc.poll() is not None:
        _, err = proc.communicate()
        return {"preset": preset, "delay_s": delay, "finished_first": True, "rc": proc.returncode}
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    latency = time.monotonic() - sent
    try:
        steps = int(read_checkpoint(out, with_arrays=False)[0]["env_steps"])
    except Exception:  # noqa: BLE001 - reported, not raised
        steps = None
    last = err.strip().splitlines()[-1] if err.strip() else ""
    return {"preset": preset, "delay_s": round(delay, 2), "finished_first": False,
            "rc": proc.returncode, "stop_s": round(latency, 2), "checkpoint_step": steps,
            "last_line": last}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=[p for ps in PRESETS.values() for p in ps])
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--window", type=float, nargs=2, default=[2.0, 60.0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    plan = [(p, float(rng.uniform(*args.window))) for p in args.presets for _ in range(args.tries)]
    args.out.mkdir(parents=True, exist_ok=True)

    def go(item: tuple[str, float]) -> dict:
        with tempfile.TemporaryDirectory() as work:
            row = one_try(item[0], item[1], Path(work))
        print(json.dumps(row), flush=True)
        return row

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(go, plan))
    with (args.out / "tries.jsonl").open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    algo_of = {p: a for a, ps in PRESETS.items() for p in ps}
    lines = [
        "| algorithm | preset | tries | signal at (s after the first iteration) | "
        "stop took (s): each | max | exit codes |",
        "|---|---|---|---|---|---|---|",
    ]
    for preset in args.presets:
        mine = [r for r in rows if r["preset"] == preset]
        stopped = [r for r in mine if not r["finished_first"]]
        took = [r["stop_s"] for r in stopped]
        lines.append(
            f"| {algo_of.get(preset, '?')} | `{preset}` | {len(mine)} | "
            f"{', '.join(format(r['delay_s'], '.1f') for r in mine)} | "
            f"{', '.join(format(t, '.2f') for t in took)} | "
            f"{max(took):.2f} | {', '.join(str(r['rc']) for r in mine)} |"
            if took
            else f"| {algo_of.get(preset, '?')} | `{preset}` | {len(mine)} | – | finished first "
            f"| – | {', '.join(str(r['rc']) for r in mine)} |"
        )
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
