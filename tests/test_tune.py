"""Scoring, multi-seed trials and the Optuna sweeper (``mbrl_ai.tune``)."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import optuna
import pytest
import yaml

from mbrl_ai.config import ConfigError, TuneConfig
from mbrl_ai.core.errors import NonFiniteError
from mbrl_ai.runtime import RunResult
from mbrl_ai.train import run
from mbrl_ai.tune.objective import aggregate, direction, score
from mbrl_ai.tune.sweeper import override_text, search_space, sweep_lock
from mbrl_ai.tune.trial import TrialOutcome, run_trial
from tests.conftest import compose, run_cli, start_cli_until


def curve(*means: float, every: int = 100) -> list[dict]:
    return [{"env_steps": every * (i + 1), "mean_return": m} for i, m in enumerate(means)]


# ---- scores -------------------------------------------------------------------------------------


def test_steps_to_threshold_is_the_first_of_the_consecutive_evaluations() -> None:
    tune = TuneConfig(consecutive=2)
    assert score(curve(10, 500, 100, 500, 500, 10), tune, 475, 1000) == 400
    assert direction("steps_to_threshold") == "minimize"


def test_unsolved_scores_the_budget_plus_the_penalty() -> None:
    assert score(curve(10, 500, 10), TuneConfig(unsolved_penalty=0.5), 475, 1000) == 1500
    with pytest.raises(ValueError, match="threshold"):
        score(curve(10), TuneConfig(), None, 1000)


def test_auc_and_final_return() -> None:
    evals = curve(0, 10, 20, 30)
    assert score(evals, TuneConfig(objective="auc"), None, 400) == 15
    assert score(evals, TuneConfig(objective="final_return", consecutive=2), None, 400) == 25
    assert direction("auc") == direction("final_return") == "maximize"
    assert math.isnan(score([], TuneConfig(objective="auc"), None, 400))


def test_aggregates() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 100.0]
    assert aggregate(values, "median") == 3.0
    assert aggregate(values, "mean") == 22.0
    assert aggregate(values, "iqm") == 3.0  # 2, 3, 4 after cutting one at each end
    assert math.isnan(aggregate([1.0, float("nan")], "median"))


# ---- search spaces ------------------------------------------------------------------------------


def test_search_space_from_hydra_sweeps() -> None:
    space, fixed = search_space(
        [
            "lr=tag(log,interval(1e-4,1e-2))",
            "layers=tag(int,interval(1,4))",
            "clip=interval(0.1,0.3)",
            "n=range(1,7,2)",
            "act=choice(relu,tanh)",
            "gamma=0.9,0.99",
            "env=CartPole-v1",
        ]
    )
    d = optuna.distributions
    assert space["lr"] == d.FloatDistribution(1e-4, 1e-2, log=True)
    assert space["layers"] == d.IntDistribution(1, 4)
    assert space["clip"] == d.FloatDistribution(0.1, 0.3)
    assert space["n"] == d.CategoricalDistribution([1, 3, 5])
    assert space["act"] == d.CategoricalDistribution(["relu", "tanh"])
    assert space["gamma"] == d.CategoricalDistribution([0.9, 0.99])
    assert fixed == {"env": "CartPole-v1"}


def test_override_text_round_trips_through_hydra() -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for value in (3, 0.000123, True, None, "relu", "a b'c", "sqlite:////tmp/x.db"):
        parsed = parser.parse_overrides([f"k={override_text(value)}"])[0].value()
        assert parsed == value


def test_a_second_sweeper_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    with (
        sweep_lock(tmp_path),
        pytest.raises(ConfigError, match="another sweep is running there"),
        sweep_lock(tmp_path),
    ):
        pass
    with sweep_lock(tmp_path):  # free again once the first is done
        pass


# ---- multi-seed trials --------------------------------------------------------------------------


def fake_run(solved_at: dict[int, int | None], calls: list[int]):  # noqa: ANN201
    """A run function whose result solves (three evaluations >= 475) at the given real step."""

    def run_one(cfg, out_dir: Path) -> RunResult:  # noqa: ANN001
        calls.append(cfg.seed)
        assert cfg.tune.seeds == [] and cfg.tune.trial is None  # each seed is a plain run
        if solved_at[cfg.seed] is None:
            raise NonFiniteError("policy loss is nan")
        means = [0.0 if (i + 1) * 100 < solved_at[cfg.seed] else 500.0 for i in range(10)]
        return RunResult(out_dir, 1000, 1.0, curve(*means), threshold=475.0)

    return run_one


def test_a_trial_scores_each_seed_and_skips_the_ones_it_has(tmp_path: Path) -> None:
    cfg = compose("experiment=ppo_cartpole", "total_timesteps=1000", "tune.seeds=[3,1,2]")
    calls: list[int] = []
    solved = {3: 300, 1: 500, 2: None}
    # a first attempt that ended after seed 3 (as an interrupted trial would)
    TrialOutcome("steps_to_threshold", "minimize", "median", [3, 1, 2], {3: 300.0}).write(tmp_path)
    outcome = run_trial(cfg, tmp_path, fake_run(solved, calls))
    assert calls == [1, 2]
    assert outcome.scores == {3: 300.0, 1: 500.0, 2: 2000.0}  # seed 2 diverged: unsolved
    assert outcome.diverged == [2]
    assert outcome.value == 500.0
    assert TrialOutcome.read(tmp_path) == outcome
    assert run_trial(cfg, tmp_path, fake_run(solved, calls)) == outcome and calls == [1, 2]


def test_a_solved_seed_stops_at_the_evaluation_that_solves_it(tmp_path: Path) -> None:
    cfg = compose(
        "experiment=ppo_cartpole", "total_timesteps=8192", "eval_every=512", "eval_episodes=2",
        "eval_threshold=100", "tune.seeds=[0]",
    )  # fmt: skip
    outcome = run_trial(cfg, tmp_path, run)
    evals = yaml.safe_load((tmp_path / "seed=0" / "eval.jsonl").read_text().splitlines()[-1])
    assert outcome.scores[0] < 8192
    assert evals["env_steps"] == outcome.scores[0] + 2 * 512  # the third good evaluation


def test_the_pruner_stops_a_trial_worse_than_the_finished_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="minimize")
    for _ in range(4):  # four finished trials that solved at 1024 real steps
        t = study.ask()
        for step in range(0, 8192 + 1, 512):
            t.report(1024.0, step)
        study.tell(t, 1024.0)
    number = study.ask().number
    cfg = compose(
        "experiment=ppo_cartpole", "total_timesteps=8192", "eval_every=512", "eval_episodes=2",
        "tune.seeds=[0,1]", f"tune.trial={number}", f"tune.storage='{url}'", "tune.study=s",
        "tune.pruner_warmup_evals=2",
    )  # fmt: skip
    outcome = run_trial(cfg, tmp_path / "trial", run)
    assert outcome.pruned_at is not None and 1024 <= outcome.pruned_at <= 2048
    assert outcome.scores == {}  # seed 0 ended early, seed 1 never ran
    assert not (tmp_path / "trial" / "seed=1").exists()
    assert study.trials[number].user_attrs["pruned_at"] == outcome.pruned_at


# ---- the sweeper, through the CLI ---------------------------------------------------------------

SWEEP = (
    "-m", "experiment=ppo_cartpole", "hydra/sweeper=optuna", "total_timesteps=2048",
    "eval_every=512", "eval_episodes=2", "eval_threshold=60", "checkpoint_every=512",
    "tune.seeds=[0,1]", "hydra.sweeper.n_trials=4", "hydra.sweeper.startup_trials=2",
    "lr_actor_critic=tag(log,interval(3e-4,3e-3))", "n_epochs=choice(2,5)",
    "hydra.sweeper.holdout_seeds=[5]", "hydra.sweeper.enqueue_current=true",
)  # fmt: skip


def test_a_sweep_where_no_trial_completed_exits_non_zero(tmp_path: Path) -> None:
    """Every trial's run dies on a NaN observation: the sweep says so in one line, exit 1."""
    result = run_cli(
        "-m", "algo=ppo", "env=tests.fake_envs:NaNObs-v0", "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=2", "tune.objective=final_return", "total_timesteps=256",
        "n_real_steps=128", "batch_size=64", "eval_every=128", "logger.progress=off",
        "lr_actor_critic=tag(log,interval(3e-4,3e-3))", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"error: no trial completed (2 ended without a score); see the trial " \
        f"folders in {tmp_path}"  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["hydra.sweeper.n_trials=-2"], "hydra.sweeper.n_trials=-2: must be an integer >= 1"),
        (["hydra.sweeper.sampler=bogus"], "hydra.sweeper.sampler='bogus': allowed: tpe, random"),
        (["lr_actor_critic=interval(0.9,0.1)"], "needs its low end below its high end"),
        (["lr_actor_critic=tag(log,interval(0,0.1))"], "a log-scale interval needs a low end > 0"),
        (["env=Pendulum-v1"], "Pendulum-v1 has no reward threshold"),
    ],
)
def test_the_sweepers_settings_and_space_are_checked_first(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    result = run_cli(
        "-m", "hydra/sweeper=optuna", "lr_actor_critic=tag(log,interval(3e-4,3e-3))", *args,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not (tmp_path / "sweep").exists()


def test_a_second_sweeper_on_a_folder_in_use_is_one_line(tmp_path: Path) -> None:
    with sweep_lock(tmp_path):
        result = run_cli(
            "-m", "hydra/sweeper=optuna", "lr_actor_critic=tag(log,interval(3e-4,3e-3))",
            f"hydra.sweep.dir={tmp_path}",
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "another sweep is running there" in lines[0], result.stderr


@pytest.mark.integration
def test_an_interrupted_sweep_resumes_to_its_trial_count(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    first = start_cli_until(
        *SWEEP, f"hydra.sweep.dir={sweep}",
        done=lambda: bool(list(sweep.glob("trial_1/seed=0/checkpoints/step_*"))),
    )  # fmt: skip
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out
    study = optuna.load_study(study_name="tune", storage=f"sqlite:///{sweep / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert states[-1] == optuna.trial.TrialState.RUNNING and len(states) == 2  # cut off

    second = run_cli(*SWEEP, f"hydra.sweep.dir={sweep}")
    assert second.returncode == 0, second.stderr
    assert "running again 1 trial(s) cut off earlier: [1]" in second.stderr + second.stdout
    study = optuna.load_study(study_name="tune", storage=f"sqlite:///{sweep / 'optuna.db'}")
    # trial 0 ran the preset's own values where they lie in the space (n_epochs=20 does not)
    assert study.trials[0].params["lr_actor_critic"] == compose(
        "experiment=ppo_cartpole").lr_actor_critic  # fmt: skip
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(study.trials) == len(finished) == 4
    best = yaml.safe_load((sweep / "best.yaml").read_text())
    assert best["best_trial"] == study.best_trial.number
    assert best["best_params"] == study.best_trial.params
    config = yaml.safe_load((sweep / "best_config.yaml").read_text())
    for key, value in study.best_trial.params.items():
        assert config[key] == value
    for t in finished:  # each trial's seeds in its own folder, scored in trial.json
        outcome = TrialOutcome.read(sweep / f"trial_{t.number}")
        assert outcome is not None and outcome.trial == t.number
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert outcome.value == t.value and sorted(outcome.scores) == [0, 1]
    report = run_cli(str(sweep), "--out", str(tmp_path / "report"), module="mbrl_ai.report")
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "tuning.md").read_text()
    assert f"Best trial {study.best_trial.number}:" in text
    assert "| held-out [5] |" in text
    assert list(best["holdout"]["scores"]) == [5]  # the best configuration, on seed 5
    assert (sweep / "holdout" / "part_0" / "seed=5" / "eval.jsonl").is_file()
    for figure in ("parallel_coordinates.png", "history.png"):
        assert (tmp_path / "report" / figure).stat().st_size > 0
    mixed = run_cli(str(sweep), str(tmp_path), module="mbrl_ai.report")
    assert mixed.returncode == 2 and "report it alone" in mixed.stderr
