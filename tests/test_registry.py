"""The algorithm registry: an algorithm added from outside the package (``tests/plugins``) trains,
checkpoints, resumes, evaluates and is visualised through the CLI with no edit anywhere else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mbrl_ai import algos
from mbrl_ai.algos import AlgorithmSpec, register
from mbrl_ai.config import ConfigError
from tests.conftest import ROOT, compose, run_cli

PLUGIN = {"MBRL_AI_PLUGINS": "tests.plugins.toy_algo"}
TINY = [
    "algo=toy",
    "curiosity=none",
    "n_real_steps=128",
    "batch_size=64",
    "n_epochs=2",
    "eval_every=256",
    "eval_episodes=2",
    "world_model.train_steps=10",
    "logger.progress=off",
]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.integration
def test_a_plugin_algorithm_trains_resumes_evaluates_and_visualises(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    done = run_cli(*TINY, "total_timesteps=512", f"hydra.run.dir={out}", env=PLUGIN)
    assert done.returncode == 0, done.stderr
    assert [r["iteration"] for r in _lines(out / "metrics.jsonl")] == [1, 2, 3, 4]
    assert "toy:\n  model_every: 2" in (out / "config.yaml").read_text()

    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    more = run_cli(f"resume={out}", "total_timesteps=768", cwd=elsewhere,
                   env={**PLUGIN, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert more.returncode == 0, more.stderr
    assert not any(elsewhere.iterdir())  # nothing under outputs/: the run goes on in place
    assert [r["iteration"] for r in _lines(out / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert (out / "checkpoints" / f"step_{768:012d}").is_dir()

    ev = run_cli(f"run={out}", "episodes=2", module="mbrl_ai.evaluate", env=PLUGIN)
    assert ev.returncode == 0, ev.stderr
    assert "CartPole-v1 toy: mean return" in ev.stdout

    fig = tmp_path / "fig"
    vis = run_cli(str(out), "--out", str(fig), "--horizon", "3", "--starts", "1",
                  module="mbrl_ai.visualize", env=PLUGIN)  # fmt: skip
    assert vis.returncode == 0, vis.stderr
    assert (fig / "trajectories.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.integration
def test_a_plugin_node_is_validated_like_every_other(tmp_path: Path) -> None:
    bad = run_cli(*TINY, "toy.model_every=0", f"hydra.run.dir={tmp_path}", env=PLUGIN)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: invalid config: toy.model_every=0: must be an integer >= 1"
    ]
    space = run_cli("algo=toy", "env=Pendulum-v1", f"hydra.run.dir={tmp_path}", env=PLUGIN)
    assert space.returncode == 2 and "algo=toy does not support action space" in space.stderr
    assert not any(tmp_path.iterdir())


def test_without_the_plugin_the_name_is_unknown(tmp_path: Path) -> None:
    done = run_cli("algo=toy", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2
    assert done.stderr.startswith("error: invalid config: algo='toy': no such option; allowed:")


def test_a_missing_plugin_module_is_one_line() -> None:
    done = run_cli("algo=ppo", env={"MBRL_AI_PLUGINS": "tests.plugins.nope"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: invalid config: MBRL_AI_PLUGINS='tests.plugins.nope': cannot import it: "
        "No module named 'tests.plugins.nope'"
    ]


def test_the_built_in_algorithms_are_registered() -> None:
    assert {"mbppo", "ppo", "sac", "mbpo", "mpc", "dyna_q", "dyna_dqn", "dreamer"} <= set(
        algos.names()
    )
    assert algos.get("mbpo").world_model and not algos.get("sac").world_model
    with pytest.raises(
        ConfigError,
        match="algo.name='nope': allowed: dreamer, dyna_dqn, dyna_q, mbpo, mbppo, mpc, ppo, sac",
    ):
        algos.get("nope")
    assert compose("algo=sac").node(algos.get("sac").nodes[0]).tau == 0.005


def test_names_and_nodes_are_registered_once() -> None:
    ppo = algos.get("ppo")
    with pytest.raises(ValueError, match="already registered"):
        register(AlgorithmSpec("ppo", ppo.train, ppo.load_policy, ppo.action_spaces))
    register(ppo)  # the same spec again (a module imported twice) is fine
