"""What every registered algorithm must do, parametrised over the registry (not a hand list), so
that an algorithm added to it is tested with no edit here: a stop signal at any point of an
iteration (between real steps, inside an evaluation) is honoured within seconds and the run
resumes bit-identically; kill -9 loses nothing; a damaged checkpoint is refused in one line.
Each runs the algorithm on its own ``smoke`` overrides (``AlgorithmSpec.smoke``). Its config
keys are covered by ``test_schema_keys.py``, which walks the schema the registry builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.vector import SyncVectorEnv

from mbrl_ai import algos
from mbrl_ai.algos import load_policy
from mbrl_ai.core.checkpoint import ARRAYS_FILE, STATE_FILE, checkpoint_dirs, read_checkpoint
from mbrl_ai.core.errors import RunInterrupted
from mbrl_ai.envs import make_vec_env
from mbrl_ai.runtime import context as context_module
from mbrl_ai.runtime.evaluation import evaluate_policy
from mbrl_ai.train import run
from tests.conftest import ROOT, assert_same_state, comparable, compose, run_cli

algos.load_plugins()
NAMES = algos.names()
STOP_WITHIN_S = 10.0


def _smoke(name: str) -> list[str]:
    smoke = algos.get(name).smoke
    assert smoke, f"algorithm {name!r} registers no smoke overrides (AlgorithmSpec.smoke)"
    return [f"algo={name}", *smoke, "logger.progress=off"]


def _assert_same_run(straight: Path, other: Path) -> None:
    """The same logs and the same final checkpoint, bit for bit (less wall-clock and memory, and
    the W&B group name, which the command line derives from its overrides)."""
    for name in ("metrics.jsonl", "eval.jsonl"):
        assert comparable(other / name, "group") == comparable(straight / name, "group"), name
    a, arrays_a = read_checkpoint(straight)
    b, arrays_b = read_checkpoint(other)
    assert a["env_steps"] == b["env_steps"]
    for key in ("objects", "rng", "run_rng", "collect", "envs", "loop", "iteration"):
        assert_same_state(a[key], b[key], key)
    untimed = [{k: v for k, v in e.items() if not k.endswith("_s")} for e in a["evals"]]
    assert untimed == [{k: v for k, v in e.items() if not k.endswith("_s")} for e in b["evals"]]
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)


@pytest.fixture(scope="module")
def straight_runs() -> dict[str, tuple[Path, int]]:
    """Each algorithm's smoke run straight through (trained once per module and test process),
    with the number of vector-env steps (training and evaluation) it took."""
    return {}


def _straight(name: str, cache: dict, factory: pytest.TempPathFactory) -> tuple[Path, int]:
    if name not in cache:
        out = factory.mktemp(f"straight_{name}")
        calls = 0
        step = SyncVectorEnv.step

        def counted(self: SyncVectorEnv, actions):  # noqa: ANN001, ANN202
            nonlocal calls
            calls += 1
            return step(self, actions)

        with pytest.MonkeyPatch.context() as m:
            m.setattr(SyncVectorEnv, "step", counted)
            run(compose(*_smoke(name)), out)
        cache[name] = (out, calls)
    return cache[name]


_SENT: list[float] = []


def _send_sigterm() -> None:
    _SENT.append(time.monotonic())
    signal.raise_signal(signal.SIGTERM)


@pytest.mark.parametrize("when", [0.45, 0.8])
@pytest.mark.parametrize("name", NAMES)
def test_a_stop_at_any_env_step_resumes_bit_identically(
    name: str,
    when: float,
    straight_runs: dict,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """SIGTERM right after the env step at 45% / 80% of the run (counting training and evaluation
    steps): stopped within seconds; resumed, the same run as one never stopped."""
    straight, calls = _straight(name, straight_runs, tmp_path_factory)
    at = int(calls * when)
    assert at > 1, f"{name}'s smoke run steps its envs {calls} times: too few to stop inside"
    seen = 0
    step = SyncVectorEnv.step

    def stop_after(self: SyncVectorEnv, actions):  # noqa: ANN001, ANN202
        nonlocal seen
        out = step(self, actions)
        seen += 1
        if seen == at:
            _send_sigterm()
        return out

    cfg, out = compose(*_smoke(name)), tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(SyncVectorEnv, "step", stop_after)
        with pytest.raises(RunInterrupted) as stopped:
            run(cfg, out)
    latency = time.monotonic() - _SENT[-1]
    assert stopped.value.exit_code == 143
    assert latency < STOP_WITHIN_S, f"{name} took {latency:.1f} s to stop"
    run(cfg, out)
    _assert_same_run(straight, out)


@pytest.mark.parametrize("name", NAMES)
def test_a_stop_inside_an_evaluation_resumes_bit_identically(
    name: str,
    straight_runs: dict,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The signal comes a few steps into the run's first evaluation: the evaluation is dropped,
    the checkpoint says it is pending, and the resumed run evaluates first."""
    straight, _ = _straight(name, straight_runs, tmp_path_factory)
    evaluate = context_module.evaluate_policy
    evaluations = 0

    def evaluate_and_stop(*args, stop, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        nonlocal evaluations
        evaluations += 1
        asked = 0

        def stop_on_the_third_step() -> bool:
            nonlocal asked
            asked += 1
            if evaluations == 1 and asked == 3:
                _send_sigterm()
            return stop()

        return evaluate(*args, stop=stop_on_the_third_step, **kwargs)

    cfg, out = compose(*_smoke(name)), tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(context_module, "evaluate_policy", evaluate_and_stop)
        with pytest.raises(RunInterrupted):
            run(cfg, out)
    latency = time.monotonic() - _SENT[-1]
    assert latency < STOP_WITHIN_S, f"{name} took {latency:.1f} s to stop"
    state, _ = read_checkpoint(out)
    assert state["eval_pending"] and state["evals"] == []  # stopped inside, nothing logged
    run(cfg, out)
    _assert_same_run(straight, out)


def _cli(name: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "mbrl_ai.train", *_smoke(name), f"hydra.run.dir={out}"]


@pytest.mark.integration
@pytest.mark.parametrize("name", NAMES)
def test_kill_9_loses_nothing(
    name: str, straight_runs: dict, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Killed without warning after its first checkpoint, the same command again finishes the
    run as if nothing had happened."""
    straight, _ = _straight(name, straight_runs, tmp_path_factory)
    out = tmp_path / "run"
    environ = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(_cli(name, out), cwd=ROOT, env=environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while not checkpoint_dirs(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=30)
    if proc.returncode == 0:  # it finished before the kill: a valid run, but nothing was tested
        pytest.fail(f"{name}'s smoke run ended before it could be killed")
    assert proc.returncode == -signal.SIGKILL
    again = subprocess.run(_cli(name, out), cwd=ROOT, env=environ, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    _assert_same_run(straight, out)


def _truncate_state(ckpt: Path) -> None:
    data = (ckpt / STATE_FILE).read_bytes()
    (ckpt / STATE_FILE).write_bytes(data[: len(data) // 2])


def _random_arrays(ckpt: Path) -> None:
    (ckpt / ARRAYS_FILE).write_bytes(np.random.default_rng(0).bytes(4096))


def _misshapen_tensor(ckpt: Path) -> None:
    """A loadable checkpoint whose first tensor has another shape (written by another config)."""
    state = torch.load(ckpt / STATE_FILE, weights_only=True)

    def first(x):  # noqa: ANN001, ANN202 - the path to the first tensor of the tracked objects
        if isinstance(x, torch.Tensor):
            return []
        items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
        for k, v in items:
            path = first(v)
            if path is not None:
                return [k, *path]
        return None

    path = first(state["objects"])
    assert path, "the checkpoint holds no tensor"
    parent = state["objects"]
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = torch.zeros(*parent[path[-1]].shape, 3)
    torch.save(state, ckpt / STATE_FILE)


DAMAGE = {
    "truncated_state": (_truncate_state, "damaged"),
    "random_arrays": (_random_arrays, "damaged"),
    "misshapen_tensor": (_misshapen_tensor, "refusing to load"),
}


@pytest.mark.integration
@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("name", NAMES)
def test_a_damaged_checkpoint_is_refused_in_one_line(
    name: str,
    damage: str,
    straight_runs: dict,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    straight, _ = _straight(name, straight_runs, tmp_path_factory)
    ckpt = checkpoint_dirs(straight)[-1]
    copy = tmp_path / "run" / "checkpoints" / ckpt.name
    copy.mkdir(parents=True)
    for f in ckpt.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    damage_it, says = DAMAGE[damage]
    damage_it(copy)
    result = run_cli(f"resume={tmp_path / 'run'}")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert says in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_evaluation_does_not_depend_on_how_many_envs_run_together(
    name: str, straight_runs: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Three episodes of the trained policy on one, two and three envs: the same returns, in
    the same order (episode j starts from seed + j; the policy acts on each env alone)."""
    straight, _ = _straight(name, straight_runs, tmp_path_factory)
    actor, obs_rms, cfg = load_policy(straight)
    returns = []
    for n_envs in (1, 2, 3):
        envs = make_vec_env(cfg.env, n_envs, cfg.seed, "sync", cfg.env_kwargs,
                            default_time_limit=cfg.eval_max_steps)  # fmt: skip
        returns.append(evaluate_policy(actor, envs, 3, cfg.seed + 7, obs_rms).tolist())
        envs.close()
    assert returns[0] == returns[1] == returns[2]
