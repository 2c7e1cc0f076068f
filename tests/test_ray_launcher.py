"""``hydra/launcher=ray`` (hydra-ray-launcher) on a local Ray instance started by the sweep."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from mbrl_ai.core.utils import read_jsonl
from tests.conftest import run_cli, start_cli_until

pytest.importorskip("hydra_plugins.hydra_ray_launcher")

# a local instance of one or two CPUs, no dashboard; what a laptop or one cluster node runs
RAY = (
    "hydra/launcher=ray",
    "+hydra.launcher.ray.init.include_dashboard=false",
)
RUN = ("experiment=ppo_cartpole", "eval_episodes=2", "logger.progress=off")


def eval_steps(run_dir: Path) -> list[int]:
    return [e["env_steps"] for e in read_jsonl(run_dir / "eval.jsonl") if "env_steps" in e]


@pytest.mark.integration
def test_a_two_job_sweep_runs_on_ray(tmp_path: Path) -> None:
    result = run_cli(
        "-m", *RAY, "+hydra.launcher.ray.init.num_cpus=2", *RUN, "total_timesteps=1024",
        "eval_every=512", "seed=0,1", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(tmp_path.glob("*/seed=*"))
    assert [r.name for r in runs] == ["seed=0", "seed=1"]
    for r in runs:
        assert eval_steps(r) == [512, 1024]


@pytest.mark.integration
def test_a_task_ray_restarts_resumes_its_run(tmp_path: Path) -> None:
    """The job's worker is killed mid-run; Ray runs the task again, and the run continues from
    its checkpoint in the same directory instead of starting over."""
    sweep = start_cli_until(
        "-m", *RAY, "+hydra.launcher.ray.init.num_cpus=1", *RUN, "total_timesteps=16384",
        "eval_every=1024", "checkpoint_every=1024", "seed=0", f"hydra.sweep.dir={tmp_path}",
        done=lambda: bool(list(tmp_path.glob("*/seed=0/checkpoints/step_*"))),
    )  # fmt: skip
    (lock,) = tmp_path.glob("*/seed=0/.lock")
    worker = int(lock.read_text().split()[1])  # "process <pid> on <host>"
    os.kill(worker, signal.SIGKILL)
    out, _ = sweep.communicate(timeout=600)  # Ray restarts the worker slowly on a loaded machine
    assert sweep.returncode == 0, out[-3000:]
    run_dir = lock.parent
    assert "resuming" in out  # the second attempt found the first one's checkpoint
    assert eval_steps(run_dir) == list(
        range(1024, 16384 + 1, 1024)
    )  # every evaluation once, none repeated


@pytest.mark.parametrize("value", ["-1", "nan", "lots"])
def test_a_bad_ray_resource_count_is_one_line_before_ray_starts(value: str, tmp_path: Path) -> None:
    result = run_cli(
        "-m", "hydra/launcher=ray", f"+hydra.launcher.ray.init.num_cpus={value}", "seed=0,1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: invalid config: hydra.launcher.ray.init.num_cpus=")
    assert lines[0].endswith("must be a number >= 0")
    assert not (tmp_path / "sweep").exists()
