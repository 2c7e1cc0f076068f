"""Shared fixtures: compose configs the way the CLI does, run the CLI in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import tests.fake_envs  # noqa: F401  (registers the toy envs)
from mbrl_ai.config import Config
from mbrl_ai.core.errors import RunInterrupted
from mbrl_ai.core.utils import read_jsonl
from mbrl_ai.logger import RunLogger
from mbrl_ai.train import compose_config, run

ROOT = Path(__file__).resolve().parent.parent

torch.set_num_threads(1)


def compose(*overrides: str) -> Config:
    """A checked Config from Hydra overrides, exactly as ``python -m mbrl_ai.train`` composes it."""
    return compose_config(list(overrides))


def run_cli(
    *args: str,
    module: str = "mbrl_ai.train",
    timeout: int = 300,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess:
    environ = {**os.environ, "WANDB_MODE": "disabled", **(env or {})}
    environ.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli_until(
    *args: str, done: Callable[[], bool], timeout: float = 180, module: str = "mbrl_ai.train"
) -> subprocess.Popen:
    """Start ``python -m <module> <args>`` (stdout and stderr together, as text) and return it
    once ``done()`` holds; fails the test, with the output, if it exits or times out first."""
    environ = {**os.environ, "WANDB_MODE": "disabled"}
    environ.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while not done():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"exited or timed out before the condition held:\n{proc.communicate()[0]}")
        time.sleep(0.05)
    return proc


def _timing(key: str) -> bool:
    """A wall-clock measurement (``update_s``, ``steps_per_s``, ``plan_ms_per_step``)."""
    return key.endswith("_s") or "_ms_" in key


def comparable(path: Path, *drop: str) -> list[dict]:
    """The rows of a run's ``metrics.jsonl`` / ``eval.jsonl`` without what differs between two
    runs that computed the same thing (wall-clock times, memory, and the keys in ``drop``)."""
    return [
        {k: v for k, v in r.items() if not _timing(k) and k not in ("rss_mb", *drop)}
        for r in read_jsonl(path)
    ]


def assert_same_state(a: Any, b: Any, where: str = "") -> None:
    """Recursive bitwise equality of checkpoint contents (tensors, containers, numbers)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def check_exact_resume(
    cfg: Config, tmp_path: Path, stop_at: int, monkeypatch: pytest.MonkeyPatch, *drop: str
) -> tuple[Path, Path]:
    """Train ``cfg`` straight through into ``tmp_path/straight``; train it again into
    ``tmp_path/resumed``, stopped by SIGTERM after the iteration logged at ``stop_at`` real steps
    and then resumed. Asserts that both runs logged the same metrics and evaluations (less
    timings and ``drop``); returns the two run directories."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run(cfg, straight)
    log_iteration = RunLogger.log_iteration

    def stop(self: RunLogger, steps: int, record: dict) -> None:
        log_iteration(self, steps, record)
        if steps == stop_at:
            signal.raise_signal(signal.SIGTERM)

    with monkeypatch.context() as m:
        m.setattr(RunLogger, "log_iteration", stop)
        with pytest.raises(RunInterrupted):
            run(cfg, resumed)
    run(cfg, resumed)
    for name in ("metrics.jsonl", "eval.jsonl"):
        assert comparable(resumed / name, *drop) == comparable(straight / name, *drop), name
    return straight, resumed


# overrides for a run that takes about a second
TINY = (
    "total_timesteps=512",
    "n_real_steps=256",
    "batch_size=64",
    "n_epochs=2",
    "eval_every=256",
    "eval_episodes=2",
    "logger.progress=off",
)


@pytest.fixture
def tiny() -> list[str]:
    """Overrides for a run that takes about a second."""
    return list(TINY)
