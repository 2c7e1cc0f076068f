"""Hydra sweeps through the joblib launcher and through submitit's local executor (with a
preemption: the job is requeued and resumes from its checkpoint), then a report on the output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mbrl_ai.core.utils import read_jsonl
from tests.conftest import ROOT, TINY, run_cli

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

SWEEP = [
    "seed=0,1",
    "planning_horizon=1,3",
    *TINY,
    "world_model.train_steps=10",
    "curiosity=none",
]


def _config_dir(horizon: int, total: int) -> str:
    """A configuration's folder: the overrides without the seed (or the logger's), sorted."""
    return (
        "batch_size=64,curiosity=none,eval_episodes=2,eval_every=256,n_epochs=2,n_real_steps=256,"
        f"planning_horizon={horizon},total_timesteps={total},world_model.train_steps=10"
    )


def _check_sweep_and_report(sweep: Path, total: int = 512) -> None:
    for h in (1, 3):
        folder = _config_dir(h, total)
        for seed in (0, 1):
            run = sweep / folder / f"seed={seed}"
            steps = [m["env_steps"] for m in read_jsonl(run / "metrics.jsonl")]
            assert steps == list(range(256, total + 1, 256)), run
            meta = read_jsonl(run / "eval.jsonl")[0]
            assert meta["group"] == folder.replace("=", ":") and meta["seed"] == seed
            assert f"planning_horizon: {h}" in (run / "config.yaml").read_text()
    report = run_cli(str(sweep), "--out", str(sweep / "report"), module="mbrl_ai.report")
    assert report.returncode == 0, report.stderr
    table = (sweep / "report" / "report.md").read_text()
    assert "| `planning_horizon=1` | 2 |" in table and "| `planning_horizon=3` | 2 |" in table
    groups = json.loads((sweep / "report" / "report.json").read_text())["groups"]
    assert sorted(groups) == ["planning_horizon=1", "planning_horizon=3"]
    for png in ("learning_curves.png", "adaptive.png", "samples.png"):
        assert (sweep / "report" / png).stat().st_size > 1000


@pytest.mark.integration
def test_joblib_sweep_of_two_values_and_two_seeds(tmp_path: Path) -> None:
    result = run_cli(
        "-m",
        *SWEEP,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    _check_sweep_and_report(tmp_path)


def _job_processes(sweep: Path) -> list[int]:
    """PIDs of submitit's job processes for this sweep (Linux /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "submitit.core._submit" in cmd and str(sweep) in cmd:
                pids.append(int(proc.name))
    return pids


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the job processes in /proc")
def test_submitit_local_sweep_requeues_a_preempted_job_which_resumes(
    tmp_path: Path,
) -> None:
    longer = [a if not a.startswith("total_timesteps") else "total_timesteps=2560" for a in SWEEP]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mbrl_ai.train",
            "-m",
            *longer,
            "checkpoint_every=512",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # preempt the jobs (SIGUSR2, what SLURM sends before the time limit) once one has
    # checkpointed and every job is past its start-up (a signal while a job still imports torch
    # lands in the middle of a module's definition)
    target = tmp_path / _config_dir(1, 2560) / "seed=0"
    runs = [tmp_path / _config_dir(h, 2560) / f"seed={seed}" for h in (1, 3) for seed in (0, 1)]

    def started(run: Path) -> bool:
        metrics = run / "metrics.jsonl"
        return metrics.exists() and bool(metrics.read_text().strip())

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        checkpointed = (target / "checkpoints").is_dir() and any(
            (target / "checkpoints").glob("step_*")
        )
        if checkpointed and all(map(started, runs)):
            break
        time.sleep(0.2)
    pids = _job_processes(tmp_path)
    assert pids, "no submitit job process found"
    for pid in pids:
        os.kill(pid, signal.SIGUSR2)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr.decode()[-3000:]

    logs = "".join(p.read_text() for p in (tmp_path / ".submitit").rglob("*_log.*"))
    assert "Requeued job" in logs and "resumed from" in logs
    _check_sweep_and_report(tmp_path, total=2560)
