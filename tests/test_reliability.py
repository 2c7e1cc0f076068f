"""Reliability: exact resumption, signals, atomic and safe checkpoints, NaN guards, determinism,
bad input around resumption, and flat memory over a long run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mbrl_ai.core import checkpoint as ckpt_module
from mbrl_ai.core.checkpoint import CheckpointError, checkpoint_dirs, read_checkpoint
from mbrl_ai.core.errors import NonFiniteError, RunInterrupted
from mbrl_ai.core.utils import read_jsonl
from mbrl_ai.logger import RunLogger
from mbrl_ai.modules.world_model import EnsembleWorldModel
from mbrl_ai.runtime import context as context_module
from mbrl_ai.train import run
from tests.conftest import ROOT, assert_same_state, compose, run_cli

# Two envs, a small model, a checkpoint every third iteration: 8 iterations of 256 real steps.
SHORT = [
    "total_timesteps=2048",
    "n_real_steps=256",
    "n_envs=2",
    "batch_size=64",
    "n_epochs=2",
    "eval_every=512",
    "eval_episodes=2",
    "checkpoint_every=768",
    "world_model.train_steps=10",
    "logger.progress=off",
]
VARIANTS = {
    "ppo": ["algo=ppo", "ppo.normalize_obs=true", "ppo.normalize_reward=true"],
    "mbppo": ["algo=mbppo", "curiosity.warmup_steps=0"],
    "mbppo-intrinsic-head-pendulum": [
        "algo=mbppo",
        "env=Pendulum-v1",
        "curiosity.warmup_steps=0",
        "curiosity.intrinsic_head=true",
    ],
    # the trust gate's state, and a world that changed before the stop (at 1,024)
    "mbppo-trust-gate-change": [
        "algo=mbppo",
        "trust.gate=true",
        "trust.warmup=0",
        "env_change.at=[900,1000]",
        "+env_change.set.force_mag=-10",
    ],
}


def _comparable(rows: list[dict]) -> list[dict]:
    """Metrics without wall-clock timings and memory, which legitimately differ between runs."""
    return [{k: v for k, v in r.items() if not k.endswith("_s") and k != "rss_mb"} for r in rows]


def _signal_at(monkeypatch: pytest.MonkeyPatch, env_steps: int, signum: int) -> None:
    """Deliver ``signum`` to this process right after the iteration that ends at ``env_steps``
    is logged (mid-loop, between two checkpoints)."""
    log_iteration = RunLogger.log_iteration

    def log_then_signal(self: RunLogger, steps: int, record: dict) -> None:
        log_iteration(self, steps, record)
        if steps == env_steps:
            signal.raise_signal(signum)

    monkeypatch.setattr(RunLogger, "log_iteration", log_then_signal)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_resume_equals_the_uninterrupted_run(
    variant: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = compose(*SHORT, *VARIANTS[variant])
    run(cfg, tmp_path / "straight")

    with monkeypatch.context() as m:
        _signal_at(m, 1280, signal.SIGTERM)  # iteration 5 of 8; the last periodic one was at 768
        with pytest.raises(RunInterrupted) as stopped:
            run(cfg, tmp_path / "resumed")
    assert stopped.value.exit_code == 143 and stopped.value.env_steps == 1280
    assert [p.name for p in checkpoint_dirs(tmp_path / "resumed")] == [
        "step_000000000768",
        "step_000000001280",  # written on the signal
    ]
    run(cfg, tmp_path / "resumed")  # the same call again: resumes from 1280

    for name in ("metrics.jsonl", "eval.jsonl"):
        straight = _comparable(read_jsonl(tmp_path / "straight" / name))
        resumed = _comparable(read_jsonl(tmp_path / "resumed" / name))
        assert resumed == straight, name
    a, arrays_a = read_checkpoint(tmp_path / "straight")
    b, arrays_b = read_checkpoint(tmp_path / "resumed")
    for key in ("objects", "rng", "run_rng", "collect", "envs", "loop", "iteration"):
        assert_same_state(a[key], b[key], key)
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key])


def test_sigint_checkpoints_and_gives_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT)
    _signal_at(monkeypatch, 512, signal.SIGINT)
    with pytest.raises(RunInterrupted) as stopped:
        run(compose(*SHORT, "algo=ppo"), tmp_path)
    assert stopped.value.exit_code == 130
    state, _ = read_checkpoint(tmp_path)
    assert state["env_steps"] == 512 and state["iteration"] == 2
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back


class _Requeued(Exception):
    """What a job manager's handler ends the job with (submitit: sys.exit after requeueing)."""


def test_a_job_managers_signal_during_start_up_or_after_the_end_is_held(tmp_path: Path) -> None:
    """submitit requeues a preempted job from its SIGUSR2 handler; arriving while the config is
    built it must wait for the loop (stop after one iteration, checkpointed, then the manager),
    and after the last checkpoint it finds nothing to save and the task ends normally."""
    from mbrl_ai.runtime.checkpointer import hold_stop_signals

    calls: list[int] = []

    def manager(signum: int, frame: Any) -> None:
        calls.append(signum)
        raise _Requeued

    before = signal.signal(signal.SIGUSR2, manager)
    try:
        with hold_stop_signals():
            os.kill(os.getpid(), signal.SIGUSR2)  # "while the config is built"
            assert calls == []  # held, not run in the middle of whatever was going on
            with pytest.raises(_Requeued):
                run(compose(*SHORT, "algo=ppo"), tmp_path / "start")
            assert calls == [signal.SIGUSR2]  # handed on once the first iteration checkpointed
            state, _ = read_checkpoint(tmp_path / "start")
            assert state["iteration"] == 1 and state["env_steps"] == 256
            run(compose(*SHORT, "algo=ppo", "total_timesteps=256"), tmp_path / "end")
            os.kill(os.getpid(), signal.SIGUSR2)  # "while the report is written"
        assert calls == [signal.SIGUSR2]  # dropped: the run had ended
        with pytest.raises(_Requeued):
            os.kill(os.getpid(), signal.SIGUSR2)
        assert calls == [signal.SIGUSR2, signal.SIGUSR2]  # the manager has it back
    finally:
        signal.signal(signal.SIGUSR2, before)


@pytest.mark.integration
def test_sigterm_to_the_cli_checkpoints_exits_143_and_the_same_command_completes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "mbrl_ai.train",
        "algo=mbppo",
        "total_timesteps=12800",
        "n_real_steps=256",
        "batch_size=64",
        "n_epochs=2",
        "eval_every=2560",
        "eval_episodes=2",
        "checkpoint_every=2560",
        "world_model.train_steps=10",
        "logger.progress=off",
        f"hydra.run.dir={out}",
    ]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr.decode()
    assert "the same command" in stderr.decode()
    state, arrays = read_checkpoint(out)  # loadable, weights-only
    stopped_at = state["env_steps"]
    assert 512 <= stopped_at < 12800 and len(arrays["replay/obs"]) == stopped_at

    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    steps = [m["env_steps"] for m in read_jsonl(metrics)]
    assert steps == list(range(256, 12800 + 1, 256))  # every iteration once, none repeated
    assert read_checkpoint(out)[0]["env_steps"] == 12800


def test_wandb_resumes_the_same_run_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose(*SHORT, "algo=ppo", "logger=wandb", "logger.mode=offline")
    with monkeypatch.context() as m:
        _signal_at(m, 1024, signal.SIGTERM)
        with pytest.raises(RunInterrupted):
            run(cfg, tmp_path)
    run_id = read_checkpoint(tmp_path)[0]["logger"]["wandb_id"]
    run(cfg, tmp_path)
    assert run_id and read_checkpoint(tmp_path)[0]["logger"]["wandb_id"] == run_id
    offline = sorted((tmp_path / "wandb").glob("offline-run-*"))
    # two starts in the same second get the folder name with "-1" appended
    named = re.compile(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?")
    assert len(offline) == 2 and all(named.fullmatch(p.name) for p in offline), offline


# -- checkpoints ---------------------------------------------------------------------------------


def test_a_crash_while_writing_leaves_the_previous_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    arrays = {"replay/obs": np.arange(6.0).reshape(3, 2)}
    ckpt_module.write_checkpoint(tmp_path, 100, {"config": {}, "x": 1}, arrays)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt_module.write_checkpoint(tmp_path, 200, {"config": {}, "x": 2}, arrays)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_000000000100"]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    state, loaded = read_checkpoint(tmp_path)
    assert state["x"] == 1
    np.testing.assert_array_equal(loaded["replay/obs"], arrays["replay/obs"])


def test_only_the_newest_checkpoints_are_kept(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        ckpt_module.write_checkpoint(tmp_path, step, {"config": {}}, {}, keep=2)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == [
        "step_000000000003",
        "step_000000000004",
    ]


def test_pickled_payloads_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):  # noqa: ANN204 - executing this would create the marker file
            return (Path.touch, (marker,))

    ckpt = tmp_path / "run" / "checkpoints" / "step_000000000256"
    ckpt.mkdir(parents=True)
    torch.save({"config": {}, "objects": {"actor": Payload()}}, ckpt / "state.pt")
    np.savez(ckpt / "arrays.npz", ok=np.zeros(2))
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_checkpoint(tmp_path / "run")

    torch.save({"config": {}}, ckpt / "state.pt")  # a clean state, but object arrays
    np.savez(ckpt / "arrays.npz", bad=np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="not plain arrays"):
        read_checkpoint(tmp_path / "run")

    result = run_cli(f"resume={tmp_path / 'run'}")
    assert result.returncode == 2 and "refusing to load" in result.stderr
    assert not marker.exists()


# -- bad input around resumption and output ------------------------------------------------------


def _damaged_run(tmp_path: Path) -> Path:
    ckpt = tmp_path / "damaged" / "checkpoints" / "step_000000000256"
    ckpt.mkdir(parents=True)
    (ckpt / "state.pt").write_bytes(b"\x00 not a checkpoint")
    return tmp_path / "damaged"


def _finished_run(tmp_path: Path) -> Path:
    out = tmp_path / "finished"
    run(compose(*SHORT, "algo=ppo", "total_timesteps=256"), out)
    return out


RESUME_BAD_INPUT = [
    # (arguments built from tmp_path, text the one error line must contain)
    (lambda t: [f"resume={t / 'missing'}"], "no such directory"),
    (lambda t: [f"resume={t}"], "no checkpoint in that directory"),
    (lambda t: [f"resume={_damaged_run(t)}"], "damaged"),
    (lambda t: [f"hydra.run.dir={_damaged_run(t)}"], "damaged"),
    (
        lambda t: [f"resume={_finished_run(t)}", "gamma=0.9"],
        "cannot change with resume",
    ),
    (
        lambda t: [f"hydra.run.dir={_finished_run(t)}", "algo=ppo", "gamma=0.9"],
        "was written with",
    ),
    (
        lambda t: [f"resume={_finished_run(t)}", "total_timesteps=128"],
        "total_timesteps=128: must be >= the 256 real steps the run in",
    ),
    (lambda t: [f"hydra.run.dir={t / 'a_file' / 'run'}"], "not a writable directory"),
    (
        lambda t: ["-m", "seed=0,1", f"hydra.sweep.dir={t / 'a_file' / 'sweep'}"],
        "not a writable",
    ),
]


@pytest.mark.parametrize(
    ("make_args", "expected"),
    RESUME_BAD_INPUT,
    ids=[
        "missing",
        "empty",
        "damaged",
        "damaged-run-dir",
        "resume-change",
        "run-dir-other",
        "resume-shorter",
        "unwritable",
        "unwritable-sweep",
    ],
)
def test_bad_resume_and_output_input_fails_first_with_one_line(
    make_args: Any, expected: str, tmp_path: Path
) -> None:
    (tmp_path / "a_file").write_text("a file, not a directory")
    args = make_args(tmp_path)
    if not any(a.startswith("hydra.run.dir") for a in args):
        args.append(f"hydra.run.dir={tmp_path / 'out'}")
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid config:"), result.stderr
    assert expected in lines[0]
    assert not (tmp_path / "out" / "metrics.jsonl").exists()


def test_resume_dir_continues_with_a_longer_budget(tmp_path: Path) -> None:
    out = _finished_run(tmp_path)
    result = run_cli(f"resume={out}", "total_timesteps=768", f"hydra.run.dir={tmp_path / 'h'}")
    assert result.returncode == 0, result.stderr
    assert [m["env_steps"] for m in read_jsonl(out / "metrics.jsonl")] == [
        256,
        512,
        768,
    ]
    assert read_checkpoint(out)[0]["config"]["total_timesteps"] == 768


# -- non-finite values ---------------------------------------------------------------------------


def test_nan_in_world_model_targets_skips_that_update_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    targets = EnsembleWorldModel.normalized_targets
    calls = {"fit": 0}

    def poisoned_in_iteration_3(self: EnsembleWorldModel, *args: Any) -> torch.Tensor:
        out = targets(self, *args)
        return out * float("nan") if calls["fit"] == 3 else out

    import mbrl_ai.fit_model as fit_model

    fit = fit_model.fit_world_model

    def counting_fit(*args: Any, **kwargs: Any) -> dict:
        calls["fit"] += 1
        return fit(*args, **kwargs)

    monkeypatch.setattr(EnsembleWorldModel, "normalized_targets", poisoned_in_iteration_3)
    monkeypatch.setattr("mbrl_ai.fit_model.fit_world_model", counting_fit)
    result = run(compose(*SHORT, "algo=mbppo", "total_timesteps=1280"), tmp_path)
    assert result.env_steps == 1280

    metrics = read_jsonl(tmp_path / "metrics.jsonl")
    bad = metrics[2]
    assert bad["model/update_skipped"] == 1.0
    assert bad["confidence"] == 0.0 and bad["imagined_rollouts"] == 0
    assert bad["imagined_transitions"] == 0
    for good in (metrics[1], metrics[3], metrics[4]):
        assert good["model/update_skipped"] == 0.0 and good["confidence"] > 0.0
        assert good["imagined_rollouts"] > 0
    state, _ = read_checkpoint(tmp_path)
    assert all(torch.isfinite(v).all() for v in state["objects"]["world_model"].values())


def test_a_non_finite_environment_output_stops_with_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "env=tests.fake_envs:NaNObs-v0",
        "algo=ppo",
        "total_timesteps=512",
        "n_real_steps=64",
        "batch_size=32",
        "logger.progress=off",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "non-finite observation" in lines[0], result.stderr
    assert "NaNObs-v0" in lines[0] and "Traceback" not in result.stderr


def test_a_non_finite_policy_or_value_loss_names_the_iteration(tmp_path: Path) -> None:
    cfg = compose(
        "env=tests.fake_envs:HugeReward-v0",
        "algo=ppo",
        "total_timesteps=512",
        "n_real_steps=64",
        "batch_size=32",
        "checkpoint_every=64",
        "logger.progress=off",
    )
    with pytest.raises(
        NonFiniteError,
        match=r"(policy|value) loss is (inf|nan) in the update of iteration 1",
    ):
        run(cfg, tmp_path)
    assert checkpoint_dirs(tmp_path) == []  # nothing broken was written


def test_debug_turns_on_anomaly_detection_for_the_run_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mbrl_ai.runtime import Checkpointer

    seen = {}
    begin = Checkpointer.begin

    def spy(self: Checkpointer) -> dict:
        seen["anomaly"] = torch.is_anomaly_enabled()
        return begin(self)

    monkeypatch.setattr(Checkpointer, "begin", spy)
    run(compose(*SHORT, "algo=ppo", "total_timesteps=256", "debug=true"), tmp_path)
    assert seen["anomaly"] and not torch.is_anomaly_enabled()


# -- determinism ---------------------------------------------------------------------------------


def test_one_seed_gives_identical_runs_and_two_seeds_differ(tmp_path: Path) -> None:
    base = [*SHORT, "algo=mbppo", "total_timesteps=768"]
    run(compose(*base, "seed=1"), tmp_path / "a")
    run(compose(*base, "seed=1", "deterministic=true"), tmp_path / "b")
    run(compose(*base, "seed=2"), tmp_path / "c")
    metrics = {k: _comparable(read_jsonl(tmp_path / k / "metrics.jsonl")) for k in "abc"}
    states = {k: read_checkpoint(tmp_path / k)[0]["objects"] for k in "abc"}
    assert metrics["a"] == metrics["b"]
    assert_same_state(states["a"], states["b"])
    assert metrics["a"] != metrics["c"]
    actor_a, actor_c = states["a"]["actor"], states["c"]["actor"]
    assert any(not torch.equal(actor_a[k], actor_c[k]) for k in actor_a)
    assert not torch.are_deterministic_algorithms_enabled()  # switched back after the run


# -- memory --------------------------------------------------------------------------------------

SOAK_GROWTH_BOUND_MB = 16.0


@pytest.mark.slow
def test_memory_is_flat_after_warm_up_over_200_iterations(tmp_path: Path) -> None:
    cfg = compose(
        "algo=mbppo",
        "total_timesteps=12800",  # 200 iterations of 64 real steps
        "n_real_steps=64",
        "batch_size=32",
        "n_epochs=1",
        "eval_every=3200",
        "eval_episodes=2",
        "checkpoint_every=640",
        "world_model.train_steps=5",
        "world_model.replay_capacity=2000",  # full after ~30 iterations
        "imagination.start_window=500",
        "logger.progress=off",
    )
    run(cfg, tmp_path)
    rss = [m["rss_mb"] for m in read_jsonl(tmp_path / "metrics.jsonl")]
    assert len(rss) == 200
    warm = rss[49]  # after warm-up: replay full, allocator pools settled
    growth = max(rss[50:]) - warm
    print(f"resident memory: {warm:.1f} MB at iteration 50, growth after {growth:.1f} MB")
    assert growth < SOAK_GROWTH_BOUND_MB


@pytest.mark.parametrize(
    "env_id",
    ["CartPole-v1", "Pendulum-v1", "MountainCar-v0", "Acrobot-v1", "HalfCheetah-v5"],
)
def test_environment_state_survives_a_checkpoint_exactly(env_id: str, tmp_path: Path) -> None:
    """Saved mid-episode, through torch.save / weights-only load, into envs built with another
    seed: the next 200 steps are bit-identical."""
    from mbrl_ai.envs import get_env_state, make_vec_env, set_env_state

    if env_id.startswith("HalfCheetah"):
        pytest.importorskip("mujoco")
    a = make_vec_env(env_id, 2, 0)
    a.reset(seed=0)
    for _ in range(37):
        a.step(a.action_space.sample())
    torch.save({"envs": get_env_state(a)}, tmp_path / "s.pt")
    b = make_vec_env(env_id, 2, 5)
    b.reset(seed=5)
    set_env_state(b, torch.load(tmp_path / "s.pt", weights_only=True)["envs"])
    for _ in range(200):
        action = a.action_space.sample()
        obs_a, rew_a, *_ = a.step(action)
        obs_b, rew_b, *_ = b.step(action)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)


def test_a_checkpoint_older_than_a_config_key_resumes_if_the_key_kept_its_default(
    tiny: list[str], tmp_path: Path
) -> None:
    from mbrl_ai.config import ConfigError
    from mbrl_ai.runtime.rundir import check_resumable

    cfg = compose(*tiny, "algo=ppo", "total_timesteps=256")
    run(cfg, tmp_path)
    path = checkpoint_dirs(tmp_path)[-1] / "state.pt"
    state = torch.load(path, weights_only=True)
    del state["config"]["ppo"]["kl_stop_factor"]  # as if written before the key existed
    torch.save(state, path)
    check_resumable(cfg, tmp_path)  # the key has its default now: the same run
    changed = compose(*tiny, "algo=ppo", "total_timesteps=256", "ppo.kl_stop_factor=2.0")
    with pytest.raises(ConfigError, match="written with ppo.kl_stop_factor=1.5"):
        check_resumable(changed, tmp_path)


@pytest.mark.integration
def test_a_second_process_on_a_run_directory_in_use_is_refused_and_the_first_is_unaffected(
    tmp_path: Path,
) -> None:
    def args(out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mbrl_ai.train",
            "algo=ppo",
            "curiosity=none",
            "total_timesteps=196608",
            "n_real_steps=512",
            "batch_size=128",
            "n_epochs=2",
            "eval_every=65536",
            "eval_episodes=2",
            "logger.progress=off",
            f"hydra.run.dir={out}",
        ]  # fmt: skip  (~10 s: long enough for a second process to start and be refused)

    shared, lone = tmp_path / "shared", tmp_path / "lone"
    first = subprocess.Popen(args(shared), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = shared / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.05)
    second = subprocess.run(args(shared), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.poll() is None, "the first run ended before the second could be refused"
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"in use by process {first.pid} on" in lines[0], second.stderr
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr.decode()
    alone = subprocess.run(args(lone), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr

    def curve(out: Path) -> list[tuple[int, float, float]]:
        return [
            (m["env_steps"], m["policy_loss"], m["value_loss"])
            for m in read_jsonl(out / "metrics.jsonl")
        ]

    assert curve(shared) == curve(lone)  # identical to a run that was never disturbed
    # a dead holder leaves no lock behind: the same command resumes (here: finds it finished)
    again = subprocess.run(args(shared), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr


def test_a_reward_that_overflows_float32_is_named_as_such(tmp_path: Path) -> None:
    cfg = compose(
        "env=tests.fake_envs:OverflowReward-v0", "algo=ppo", "total_timesteps=512",
        "n_real_steps=64", "batch_size=32", "logger.progress=off",
    )  # fmt: skip
    with pytest.raises(NonFiniteError, match=r"float32-overflowing \(\|x\| > 3.4e38\) reward"):
        run(cfg, tmp_path)


def test_non_finite_evaluation_returns_stop_the_run_instead_of_being_logged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mbrl_ai.runtime.context as context

    monkeypatch.setattr(context, "evaluate_policy", lambda *a, **k: np.array([1.0, np.nan]))
    cfg = compose(
        "algo=ppo", "curiosity=none", "total_timesteps=512", "n_real_steps=256", "batch_size=64",
        "eval_every=256", "logger.progress=off",
    )  # fmt: skip
    with pytest.raises(NonFiniteError, match="evaluation at real step 256: non-finite"):
        run(cfg, tmp_path)
    assert read_jsonl(tmp_path / "eval.jsonl")[1:] == []  # nothing invalid was written


@pytest.mark.integration
def test_a_second_sigterm_stops_at_once_with_143_and_no_traceback(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        sys.executable, "-m", "mbrl_ai.train", "algo=mbppo", "total_timesteps=200000",
        "n_real_steps=256", "batch_size=64", "world_model.train_steps=3000", "world_model.stop_check_every=0", "checkpoint_every=256",
        "logger.progress=off", f"hydra.run.dir={out}",
    ]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.05)
    time.sleep(1.0)  # well inside the second iteration (its model fit alone takes seconds)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 143, stderr.decode()
    text = stderr.decode()
    assert "Traceback" not in text and "SIGTERM again: stopped at once" in text
    read_checkpoint(out)  # the checkpoint on disk still loads


@pytest.mark.slow
def test_sigterm_to_mbpo_pendulum_acts_within_seconds_and_resumes_exactly(tmp_path: Path) -> None:
    """The preset's iterations take ~25 s (250 real steps of 10 SAC updates each after a model
    fit): the stop is honoured after the current real step, not at the iteration's end."""
    budget = ["experiment=mbpo_pendulum", "total_timesteps=750", "logger.progress=off"]

    def args(out: Path) -> list[str]:
        return [sys.executable, "-m", "mbrl_ai.train", *budget, f"hydra.run.dir={out}"]

    straight = subprocess.run(args(tmp_path / "straight"), cwd=ROOT, capture_output=True)
    assert straight.returncode == 0, straight.stderr.decode()

    out = tmp_path / "stopped"
    proc = subprocess.Popen(args(out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.05)
    time.sleep(6.0)  # inside iteration 2: its model fit, then SAC updates
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert time.monotonic() - sent < 10, "the stop took longer than 10 s"
    assert proc.returncode == 143, stderr.decode()
    state, _ = read_checkpoint(out)
    assert 250 < state["env_steps"] < 500  # mid-iteration, at the step the signal came in

    again = subprocess.run(args(out), cwd=ROOT, capture_output=True)
    assert again.returncode == 0, again.stderr.decode()
    for name in ("metrics.jsonl", "eval.jsonl"):
        assert _comparable(read_jsonl(out / name)) == _comparable(
            read_jsonl(tmp_path / "straight" / name)
        ), name
    a, b = read_checkpoint(tmp_path / "straight")[0], read_checkpoint(out)[0]
    assert_same_state(a["objects"], b["objects"], "objects")


FAULTS = [
    # (MBRL_AI_TEST_FAULT, what the one error line must say)
    ("ENOSPC:2", "No space left on device"),
    ("EROFS:2", "Read-only file system"),
    ("EACCES:2", "Permission denied"),
    ("EIO:2", "Input/output error"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("fault", "says"), FAULTS, ids=[f for f, _ in FAULTS])
def test_a_file_system_fault_mid_run_is_one_line_and_keeps_the_last_checkpoint(
    fault: str, says: str, tiny: list[str], tmp_path: Path
) -> None:
    """The second checkpoint cannot be written: exit 1, one line naming the cause, the file and
    the checkpoint that is kept; that checkpoint loads and the same command then completes."""
    args = [
        "algo=ppo", *tiny, "total_timesteps=1024", "checkpoint_every=256",
        f"hydra.run.dir={tmp_path}",
    ]  # fmt: skip
    faulty = {"MBRL_AI_PLUGINS": "tests.fault_plugin", "MBRL_AI_TEST_FAULT": fault}
    result = run_cli(*args, env=faulty)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert says in errors[0] and "state.pt" in errors[0]
    assert "step_000000000256, is intact" in errors[0]
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_000000000256"]
    assert read_checkpoint(tmp_path)[0]["env_steps"] == 256
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert read_checkpoint(tmp_path)[0]["env_steps"] == 1024


def test_a_file_size_limit_is_one_line_not_a_traceback(tiny: list[str], tmp_path: Path) -> None:
    """A real write failure (RLIMIT_FSIZE: the kernel refuses writes past 40 kB, as a full disk
    refuses any): torch's zip writer turns it into a RuntimeError, reported as the OSError."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    cmd = [
        sys.executable, "-m", "mbrl_ai.train", "algo=ppo", *tiny, "checkpoint_every=256",
        "logger.mode=disabled", f"hydra.run.dir={tmp_path}",
    ]  # fmt: skip
    result = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, preexec_fn=limit, timeout=300
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "File too large" in errors[0] and "no checkpoint had been written yet" in errors[0]
    assert checkpoint_dirs(tmp_path) == []  # and no half-written one
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def _stop_inside_evaluations(m: pytest.MonkeyPatch, which: set[int]) -> None:
    """SIGTERM a few steps into the evaluations numbered in ``which`` (1 = the first this
    process runs)."""
    evaluate = context_module.evaluate_policy
    count = 0

    def evaluate_and_stop(*args, stop, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        nonlocal count
        count += 1
        asked = 0

        def stop_on_the_third_step() -> bool:
            nonlocal asked
            asked += 1
            if count in which and asked == 3:
                signal.raise_signal(signal.SIGTERM)
            return stop()

        return evaluate(*args, stop=stop_on_the_third_step, **kwargs)

    m.setattr(context_module, "evaluate_policy", evaluate_and_stop)


def test_a_pending_evaluation_survives_a_second_stop_and_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Stopped inside an evaluation; resumed and stopped again inside the evaluation it owed;
    resumed, the evaluation done, then a crash before the next checkpoint; resumed once more:
    the logs and the final state are those of the run never stopped (no evaluation lost or
    logged twice)."""
    cfg = compose(*SHORT, "algo=ppo")
    run(cfg, tmp_path / "straight")
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _stop_inside_evaluations(m, {1})
        with pytest.raises(RunInterrupted):
            run(cfg, out)
    pending_at = read_checkpoint(out)[0]["env_steps"]
    with monkeypatch.context() as m:
        _stop_inside_evaluations(m, {1})  # the pending one, first thing on resuming
        with pytest.raises(RunInterrupted) as again:
            run(cfg, out)
    assert again.value.env_steps == pending_at and read_checkpoint(out)[0]["eval_pending"]

    log_iteration = RunLogger.log_iteration

    def crash(self: RunLogger, steps: int, record: dict) -> None:
        raise OSError("simulated crash after the owed evaluation was logged")

    with monkeypatch.context() as m:
        m.setattr(RunLogger, "log_iteration", crash)
        with pytest.raises(OSError, match="simulated crash"):
            run(cfg, out)
    evals = [r["env_steps"] for r in read_jsonl(out / "eval.jsonl") if "env_steps" in r]
    assert evals[-1] == pending_at  # logged by the crashed process
    monkeypatch.setattr(RunLogger, "log_iteration", log_iteration)
    run(cfg, out)
    for name in ("metrics.jsonl", "eval.jsonl"):
        assert _comparable(read_jsonl(out / name)) == _comparable(
            read_jsonl(tmp_path / "straight" / name)
        ), name
    a, b = read_checkpoint(tmp_path / "straight")[0], read_checkpoint(out)[0]
    assert_same_state(a["objects"], b["objects"], "objects")
    assert not b["eval_pending"]
