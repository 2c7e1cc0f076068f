"""The real CLI: bad input fails first with one line and exit code 2; a good run writes its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mbrl_ai.core.checkpoint import CheckpointError, load_state, read_checkpoint
from mbrl_ai.core.utils import read_jsonl
from tests.conftest import run_cli

BAD_INPUT = [
    # (arguments, text the one error line must contain)
    (["+typo=1"], "typo"),
    (["typo=1"], "typo"),
    (["ppo.entcoef=0.1"], "did you mean 'ppo.ent_coef'"),
    (["seed=abc"], "seed='abc': expected int"),
    (["ppo.ent_coef=high"], "expected float"),
    (["planning_horizon=0"], "planning_horizon=0"),
    (
        ["min_planning_rollouts=50", "max_planning_rollouts=10"],
        "max_planning_rollouts=10",
    ),
    (["gamma=1.5"], "gamma=1.5"),
    (["-m", "--cfg", "job"], "choose one of -m, --cfg"),
    (["tune.objective=speed"], "tune.objective='speed'"),
    (["tune.seeds=[0,0]"], "must not repeat a seed"),
    (["env=Pendulum-v1", "algo=sac", "curiosity=none", "tune.seeds=[0,1]"], "no reward threshold"),
    (["tune.trial=3"], "set together"),
    (["-m", "hydra/sweeper=optuna", "gamma=interval(0.9,1.2)"], "gamma=1.2: must be in [0, 1]"),
    (["-m", "hydra/sweeper=optuna", "lr_actr=interval(0.1,0.2)"], "did you mean 'lr_actor_critic'"),
    (["-m", "tune=ppo_cartpole", "hydra.sweeper.params.gamma=choice(0.9,1.5)"], "not swept"),
    (["-m", "tune=ppo_cartpole", "hydra.sweeper.params.gamma='choice(0.9,1.5)'"], "gamma=1.5"),
    (["n_real_steps=100", "n_envs=3"], "multiple of n_envs"),
    (["device=gpu"], "device='gpu'"),
    (["ppo.minibatches=some"], "ppo.minibatches='some': allowed: per_sample, per_real"),
    (["algo=nope"], "algo='nope'"),
    (["logger.mode=sometimes"], "online, offline, disabled"),
    (["env=CartPol-v1"], "Did you mean: `CartPole`"),
    (["env=NoSuchEnv-v0"], "NoSuchEnv"),
    (["env=tests.fake_envs:MultiDiscreteToy-v0"], "does not support action space"),
    (["-m", "seed=0,1", "gamma=0.9,2.0"], "gamma=2.0"),
    (["algo=sac", "env=CartPole-v1"], "does not support action space"),
    (["algo=mbpo", "env=Pendulum-v1", "mbpo.elites=9"], "mbpo.elites=9"),
    (
        ["algo=mbpo", "env=Pendulum-v1", "mbpo.rollout_length=sometimes"],
        "fixed, linear, adaptive",
    ),
    (["algo=sac", "env=Pendulum-v1", "sac.tau=0"], "sac.tau=0"),
    (["algo=ppo", "planning_horizon=3"], "algo=ppo does not read this key"),
    (["mbpo.horizon=3"], "algo=mbppo does not read this key"),
    (
        ["algo=sac", "env=Pendulum-v1", "world_model.ensemble_size=3"],
        "algo=sac does not read this key",
    ),
    (["seed=-1", "--cfg", "job"], "seed=-1"),
    (["--info", "gamma=2"], "gamma=2"),
    (["lr_actor_critic=inf"], "must be a finite number"),
    (["eval_threshold=nan"], "must be a finite number"),
    (["algo=sac", "env=Pendulum-v1", "sac.target_entropy=nan"], "must be a finite number"),
    (
        ["algo=mpc", "mpc.planner=icem"],
        "for discrete actions (CartPole-v1) allowed: cem, exhaustive",
    ),
    (["algo=mpc", "env=Acrobot-v1", "mpc.reward=known"], "no known reward function"),
    (["algo=mpc", "mpc.particles=3"], "must be a multiple of world_model.ensemble_size (5)"),
    (["algo=mpc", "mpc.planner=exhaustive", "mpc.horizon=20"], "exceeds"),
    (["algo=mpc", "planning_horizon=3"], "algo=mpc does not read this key"),
    (
        ["env=tests.fake_envs:Counter-v0", "world_model.termination=known"],
        "no known termination function",
    ),
    (["seed=-1"], "seed=-1"),
    (["env=tests.fake_envs:NeedsLicence-v0"], "cannot be built: simulator licence not found"),
    (["env=tests.fake_broken_module:Any-v0"], "needs a licence server"),
    (["seed=99999999999"], "must be in [0, 2147483647]"),
    (["algo=ppo", "curiosity=icm"], "algo=ppo has no curiosity bonus"),
    (["algo=sac", "env=Pendulum-v1", "curiosity.name=rnd"], "algo=sac has no curiosity bonus"),
    (["world_model.confidence=oracle"], "world_model.confidence='oracle'"),
    (["world_model.done_input=action"], "world_model.done_input='action'"),
    (["world_model.forget_factor=0.5"], "must be > 1 or null"),
    (["world_model.stop_check_size=0"], "world_model.stop_check_size"),
    (["imagination.mode=steve", "imagination.recent_share=2"], "imagination.recent_share=2"),
    (
        ["env=mbrl_ai/CartPoleShift-v1", "+env_kwargs.length=nan"],
        "refused them: length=nan: must be a finite number > 0",
    ),
    (
        ["env=mbrl_ai/CartPoleShift-v1", "+env_kwargs.length=-0.5"],
        "refused them: length=-0.5: must be a finite number > 0",
    ),
    (
        ["env=mbrl_ai/CartPoleShift-v1", "+env_kwargs.at=abc"],
        "refused them: at='abc': the real step of the change must be an integer >= 0",
    ),
    (
        ["env=mbrl_ai/CartPoleObsNoise-v1", "+env_kwargs.scale=inf"],
        "refused them: scale=inf: must be a finite number >= 0",
    ),
    (
        ["env=FrozenLake-v1", "+env_kwargs.map_name=9x9"],
        "FrozenLake-v1 refused them: KeyError '9x9'",
    ),
    (
        ["algo=mpc", "env=Pendulum-v1", "mpc.planner=random", "mpc.population=1000000000000"],
        "mpc.population=1000000000000: the planner would hold at least",
    ),
    (
        ["algo=dyna_dqn", "dyna_dqn.batch_size=500", "dyna_dqn.buffer_size=100"],
        "dyna_dqn.batch_size=500: must be <= dyna_dqn.buffer_size (100)",
    ),
    (["algo=dyna_dqn", "total_timesteps=512"], "dyna_dqn.learning_starts=1000: must be <= total"),
    (["algo=dreamer", "total_timesteps=500"], "dreamer.learning_starts=1000: must be <= total"),
    (
        ["algo=sac", "env=Pendulum-v1", "sac.batch_size=300", "sac.buffer_size=200"],
        "sac.batch_size=300: must be <= sac.buffer_size (200)",
    ),
    (
        ["algo=mbpo", "env=Pendulum-v1", "sac.learning_starts=800", "total_timesteps=750"],
        "sac.learning_starts=800: must be <= total_timesteps (750)",
    ),
]
if not torch.cuda.is_available():
    BAD_INPUT.append((["device=cuda"], "no CUDA device"))
if not torch.backends.mps.is_available():
    BAD_INPUT.append((["device=mps"], "MPS is not available"))


@pytest.mark.parametrize(("args", "expected"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_fails_first_with_one_line(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    result = run_cli(*args, f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: invalid config:")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()  # no work started


PSEUDOCODE_LOG_KEYS = (  # section 2.8, verbatim
    "confidence",
    "imagined_rollouts",
    "beta",
    "policy_loss",
    "value_loss",
    "model_loss",
    "mean_real_reward",
)


@pytest.mark.integration
@pytest.mark.parametrize("algo", ["mbppo", "ppo"])
def test_a_run_writes_config_metrics_evals_and_checkpoint(
    algo: str, tiny: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = run_cli(*tiny, f"algo={algo}", "seed=3", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr

    assert "seed: 3" in (out / "config.yaml").read_text()
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [m["env_steps"] for m in metrics] == [256, 512]
    for key in (
        "policy_loss",
        "value_loss",
        "mean_real_reward",
        "approx_kl",
        "clip_fraction",
    ):
        assert key in metrics[0]
    if algo == "mbppo":
        for key in (
            *PSEUDOCODE_LOG_KEYS,
            "approx_kl_real",
            "approx_kl_imagined",
            "imagine_s",
        ):
            assert key in metrics[0], key
        assert 0.0 < metrics[-1]["confidence"] <= 1.0

    meta, *evals = read_jsonl(out / "eval.jsonl")
    assert meta["meta"] and meta["method"] == algo and meta["env_id"] == "CartPole-v1"
    assert meta["seed"] == 3 and meta["threshold"] == 475.0 and "torch" in meta["versions"]
    assert [e["env_steps"] for e in evals] == [256, 512]
    for e in evals:
        assert len(e["returns"]) == 2 and e["train_wall_s"] <= e["wall_s"]
        assert set(e) >= {
            "mean_return",
            "std_return",
            "returns",
            "wall_s",
            "train_wall_s",
        }

    ckpt, arrays = read_checkpoint(out)
    assert ckpt["env_steps"] == 512 and ckpt["config"]["seed"] == 3
    assert (algo == "mbppo") == ("replay/obs" in arrays)

    reloaded = run_cli(f"run={out}", "episodes=3", module="mbrl_ai.evaluate")
    assert reloaded.returncode == 0, reloaded.stderr
    assert "over 3 episodes" in reloaded.stdout


@pytest.mark.integration
def test_multirun_sweep_runs_every_job(tiny: list[str], tmp_path: Path) -> None:
    result = run_cli("-m", *tiny, "seed=0,1", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    # one folder per configuration, named by the overrides without the seed and the logger's
    folder = (
        tmp_path
        / "batch_size=64,eval_episodes=2,eval_every=256,n_epochs=2,n_real_steps=256,total_timesteps=512"
    )
    for seed in ("0", "1"):
        cfg = (folder / f"seed={seed}" / "config.yaml").read_text()
        assert f"seed: {seed}" in cfg
        meta = read_jsonl(folder / f"seed={seed}" / "eval.jsonl")[0]
        assert meta["group"] == folder.name.replace("=", ":")  # the W&B group, filter-safe


def test_checkpoint_with_a_pickle_payload_is_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):  # noqa: ANN204 - executing this would create the marker file
            return (Path.touch, (tmp_path / "executed",))

    path = tmp_path / "evil.pt"
    torch.save({"actor": Payload()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_state(path)
    assert not (tmp_path / "executed").exists()


def test_progress_bar_is_quiet_off_a_terminal(tiny: list[str], tmp_path: Path) -> None:
    args = [a for a in tiny if not a.startswith("logger.progress")]
    result = run_cli(*args, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0
    assert "step/s" not in result.stderr and "it/s" not in result.stderr
    assert json.loads((tmp_path / "eval.jsonl").read_text().splitlines()[0])["meta"]
    # ... but the run still says what happens: a line per evaluation, a start and an end line
    assert "[256/512 real steps] eval return" in result.stderr
    out = result.stdout.strip().splitlines()
    assert out[0] == f"mbppo on CartPole-v1, seed 0: a new run in {tmp_path}"
    assert out[-1].startswith("done: 512 real steps; final eval return ")
    assert "not solved (3 evaluations >= 475)" in out[-1]
    assert out[-1].endswith(f"run directory {tmp_path}; checkpoint step_000000000512")


@pytest.mark.parametrize(
    ("module", "args", "expected"),
    [
        ("mbrl_ai.evaluate", ["episodes=0"], "episodes='0': must be an integer >= 1"),
        ("mbrl_ai.evaluate", ["episodes=-3"], "episodes='-3'"),
        ("mbrl_ai.evaluate", ["episodes=abc"], "episodes='abc'"),
        ("mbrl_ai.evaluate", ["seed=x"], "seed='x'"),
    ],
)
def test_evaluate_refuses_bad_counts_before_loading(
    module: str, args: list[str], expected: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run(
        [sys.executable, "-m", module, f"run={tmp_path}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_report_refuses_zero_consecutive_evaluations(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run(
        [sys.executable, "-m", "mbrl_ai.report", str(tmp_path), "--consecutive", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--consecutive: '0': must be an integer >= 1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_a_module_named_in_a_saved_run_is_not_imported_without_trust(tmp_path: Path) -> None:
    """`evaluate`, `visualize` and `resume=` on a run whose env id is ``module:Env-v0`` refuse to
    import the module (a marker file proves it never ran) unless told to trust it; `report` reads
    the saved config and never imports anything."""
    import os
    import subprocess
    import sys

    from mbrl_ai.train import run
    from tests.conftest import ROOT, compose

    out = tmp_path / "run"
    run(compose("env=tests.fake_envs:Counter-v0", "algo=mbppo", "total_timesteps=256",
                "n_real_steps=128", "batch_size=64", "eval_every=128", "eval_episodes=1",
                "world_model.train_steps=2", "logger.progress=off"), out)  # fmt: skip
    workdir, marker = tmp_path / "elsewhere", tmp_path / "imported.txt"
    workdir.mkdir()
    (workdir / "evil_envs.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (out / "checkpoints").rename(out / "checkpoints_real")  # swap in a config naming that module
    state_file = next((out / "checkpoints_real").glob("step_*/state.pt"))
    state = torch.load(state_file, weights_only=True)
    state["config"]["env"] = "evil_envs:Counter-v0"
    target = out / "checkpoints" / state_file.parent.name
    target.mkdir(parents=True)
    torch.save(state, target / "state.pt")
    for other in state_file.parent.iterdir():
        if other.name != "state.pt":
            (target / other.name).write_bytes(other.read_bytes())

    (out / "config.yaml").write_text(
        (out / "config.yaml")
        .read_text()
        .replace("tests.fake_envs:Counter-v0", "evil_envs:Counter-v0")
    )
    env = {"PYTHONPATH": f"{workdir}:{ROOT}"}
    for cmd, how in (
        ([sys.executable, "-m", "mbrl_ai.evaluate", f"run={out}", "episodes=1"], "trust=true"),
        ([sys.executable, "-m", "mbrl_ai.visualize", str(out)], "trust=true"),
        ([sys.executable, "-m", "mbrl_ai.train", f"resume={out}"], "env=evil_envs:Counter-v0"),
    ):
        result = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, timeout=120,
            env={**os.environ, **env},
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "would be imported and run" in lines[0] and how in lines[0]
        assert not marker.exists()
    report = subprocess.run(
        [sys.executable, "-m", "mbrl_ai.report", str(out), "--out", str(tmp_path / "report")],
        cwd=workdir, capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "evil_envs" in (tmp_path / "report" / "report.md").read_text()  # read, never imported
    assert not marker.exists()
    named = subprocess.run(
        [sys.executable, "-m", "mbrl_ai.train", f"resume={out}", "env=evil_envs:Counter-v0"],
        cwd=workdir, capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip
    assert marker.exists() and named.returncode == 2  # named: imported (it registers no env)
    assert "Traceback" not in named.stderr
    marker.unlink()
    trusted = subprocess.run(
        [sys.executable, "-m", "mbrl_ai.evaluate", f"run={out}", "episodes=1", "trust=true"],
        cwd=workdir, capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip
    assert marker.exists()  # with trust it is imported (then fails: it registers no env)
    assert trusted.returncode == 2 and "Traceback" not in trusted.stderr


@pytest.mark.integration
@pytest.mark.parametrize(
    ("damage", "expected"),
    [("garbage", "damaged (not an np.savez archive)"), ("missing", "has no arrays.npz")],
)
def test_a_damaged_replay_file_is_refused_before_resuming_in_place(
    damage: str, expected: str, tiny: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert run_cli(*tiny, "algo=ppo", "curiosity=none", f"hydra.run.dir={out}").returncode == 0
    arrays = next((out / "checkpoints").glob("step_*/arrays.npz"))
    if damage == "garbage":
        arrays.write_bytes(b"PK\x03\x04 not a zip at all")
    else:
        arrays.unlink()
    again = run_cli(*tiny, "algo=ppo", "curiosity=none", f"hydra.run.dir={out}")
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], again.stderr


def test_help_lists_every_key_with_its_docstring() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert "planning_horizon: int = 5" in result.stdout
    assert "Steps per imagined rollout." in result.stdout
    assert "mpc.planner: str = cem" in result.stdout and "sac.tau" in result.stdout
