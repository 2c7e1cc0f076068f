"""``evaluate video=true`` writes a GIF of the trained policy; ``cli_help.help_text`` lists every
config key with its type, default and docstring."""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mbrl_ai import algos, evaluate
from mbrl_ai.cli.help import attribute_docs, help_text
from mbrl_ai.envs import make_vec_env
from tests.conftest import TINY, run_cli

TINY_PPO = ["algo=ppo", *TINY]


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained CartPole PPO run directory, made by ``python -m mbrl_ai.train``."""
    out = tmp_path_factory.mktemp("video") / "run"
    result = run_cli(*TINY_PPO, f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr
    return out


def test_evaluate_writes_a_gif_of_the_policy(ppo_run: Path) -> None:
    result = run_cli(
        f"run={ppo_run}", "episodes=2", "video=true", "fps=25", module="mbrl_ai.evaluate"
    )
    assert result.returncode == 0, result.stderr
    assert "over 2 episodes" in result.stdout
    gifs = list((ppo_run / "videos").iterdir())
    assert len(gifs) == 1 and gifs[0].suffix == ".gif", gifs  # no temporary file left
    assert str(gifs[0]) in result.stdout
    with Image.open(gifs[0]) as gif:
        assert gif.format == "GIF" and gif.n_frames > 1 and gif.size[0] > 1
        assert gif.info["duration"] >= 40  # 1000 ms / 25 fps (identical frames merge)


def test_an_env_that_cannot_render_is_refused_before_evaluating(
    ppo_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pygame", None)  # `import pygame` fails as if not installed
    monkeypatch.setattr(evaluate, "evaluate_policy", lambda *a, **k: pytest.fail("evaluated"))
    assert evaluate.main([f"run={ppo_run}", "video=true"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: video=true: CartPole-v1 needs pygame")
    assert "pip install 'mbrl_ai[video]'" in lines[0]


def test_the_env_says_why_it_cannot_render() -> None:
    problem = evaluate.rendering_problem("tests.fake_envs:Counter-v0", {})
    assert problem is not None and "takes no render_mode" in problem
    assert evaluate.rendering_problem("CartPole-v1", {}) is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["video=maybe"], "video='maybe': allowed: true, false"),
        (["video=true", "video_episodes=0"], "video_episodes='0': must be an integer >= 1"),
        (["video=true", "fps=0"], "fps='0': must be an integer >= 1"),
        (["video_episodes=2"], "video_episodes='2': needs video=true"),
    ],
)
def test_bad_video_arguments_fail_with_one_line(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    result = run_cli(f"run={tmp_path}", *args, module="mbrl_ai.evaluate", timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run=x", "vidoe=true"], "error: 'vidoe=true': unknown argument; allowed: run, episodes"),
        (["run=x", "video"], "error: 'video': not key=value; allowed: run, episodes"),
        (["episodes=2"], "error: run=<run dir> is required; usage: python -m mbrl_ai.evaluate"),
        (["run=x", "run=y"], "error: an argument repeats; usage:"),
    ],
)
def test_a_bad_argument_is_named_in_one_line(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluate.main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_a_video_that_cannot_be_written_is_refused_before_evaluating(
    tmp_path: Path, ppo_run: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    run = tmp_path / "run"
    shutil.copytree(ppo_run, run, ignore=shutil.ignore_patterns("videos"))
    (run / "videos").write_text("a file where the folder should be")
    monkeypatch.setattr(evaluate, "evaluate_policy", lambda *a, **k: pytest.fail("evaluated"))
    assert evaluate.main([f"run={run}", "video=true"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: video=true: cannot write into {run}")


def test_evaluate_uses_the_runs_torch_threads(
    ppo_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []

    def spy(*a: object, **k: object) -> np.ndarray:
        threads.append(torch.get_num_threads())
        return np.zeros(1)

    monkeypatch.setattr(evaluate, "evaluate_policy", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert evaluate.main([f"run={ppo_run}", "episodes=1"]) == 0
    finally:
        torch.set_num_threads(before)
    assert threads == [1]  # the run's torch_threads (its default)


def test_help_lists_groups_and_every_key_with_its_docstring() -> None:
    text = help_text()
    assert "  planning_horizon: int = 5\n      Steps per imagined rollout." in text
    for key in ("world_model.ensemble_size", "sac.tau", "mbpo.rollout_length"):
        assert f"\n  {key}: " in text, key
    # the experiment group's options, wrapped onto continuation lines
    listing = re.search(r"\n  experiment: (.*(?:\n {6}.*)*)", text)
    assert listing is not None
    experiments = listing.group(1).replace("\n", " ").split(", ")
    assert {"ppo_cartpole", "sac_pendulum", "dyna_maze"} <= {e.strip() for e in experiments}
    assert "algo: dreamer, dyna_dqn, dyna_q, mbpo, mbppo (default)" in text
    assert max(len(line) for line in text.splitlines()) <= 100

    schema = algos.config_schema()
    for f in dataclasses.fields(schema):
        node = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(node):
            keys = [f"{f.name}.{g.name}" for g in dataclasses.fields(node)]
        else:
            keys = [f.name]
        for key in keys:
            assert f"\n  {key}: " in text, key


def test_attribute_docstrings_are_read_through_the_generated_schema() -> None:
    docs = attribute_docs(algos.config_schema())
    assert docs["planning_horizon"] == "Steps per imagined rollout."
    assert "\n" not in docs["eval_max_steps"] and "  " not in docs["eval_max_steps"]


def test_a_video_of_several_episodes_holds_each_of_them_once(ppo_run: Path) -> None:
    """One frame per reset and per step of each episode: as many frames as the episodes' steps
    plus one first frame each (the vector env's own reset between episodes shows nothing)."""
    actor, obs_rms, cfg = algos.load_policy(ppo_run)
    frames = evaluate.record_video(actor, obs_rms, cfg, 2, cfg.seed + 10_000)
    envs = make_vec_env(cfg.env, 1, cfg.seed, "sync", cfg.env_kwargs)
    steps = []
    for j in range(2):  # the same two episodes, counted one by one
        obs, _ = envs.reset(seed=cfg.seed + 10_000 + j)
        n, done = 0, False
        while not done:
            obs_t = torch.as_tensor(obs, dtype=torch.float32)
            if obs_rms is not None:
                obs_t = obs_rms.normalize(obs_t).float()
            obs, _, term, trunc, _ = envs.step(actor.mode(obs_t).numpy())
            n, done = n + 1, bool(term[0] or trunc[0])
        steps.append(n)
    envs.close()
    assert len(frames) == sum(steps) + 2, (len(frames), steps)
