"""One configuration trained on several seeds and scored (``tune.seeds``, ``tune.objective``).

The seeds run one after the other into ``<trial dir>/seed=<s>``; ``<trial dir>/trial.json``
records each seed's score as it finishes, so a trial that was interrupted (and is run again with
the same directory, as the Optuna sweeper does on resuming) skips the seeds it has and resumes
the seed it was in from that run's checkpoint. Inside an Optuna trial (``tune.trial``) every
evaluation's score so far goes to the study, and the study's pruner may end the trial there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mbrl_ai.config import Config, TuneConfig
from mbrl_ai.core.errors import EndRun, NonFiniteError
from mbrl_ai.runtime import RunContext, RunResult, watch_iterations
from mbrl_ai.tune.objective import aggregate, direction, diverged_score, score

TRIAL_FILE = "trial.json"


@dataclass
class TrialOutcome:
    """What ``trial.json`` holds: the scores so far and, once every seed is in, the value."""

    objective: str
    direction: str
    aggregate: str
    seeds: list[int]
    scores: dict[int, float] = field(default_factory=dict)
    solved: dict[int, bool] = field(default_factory=dict)
    diverged: list[int] = field(default_factory=list)
    pruned_at: int | None = None  # the reported step at which the pruner stopped the trial
    value: float | None = None  # the aggregate; for a pruned trial, its last reported score
    trial: int | None = None

    @property
    def finished(self) -> bool:
        return self.value is not None

    def write(self, trial_dir: Path) -> None:
        """Atomically: a reader never sees half a file."""
        path = trial_dir / TRIAL_FILE
        tmp = path.with_suffix(".json.tmp")
        data = dataclasses.asdict(self)
        data["scores"] = {str(k): v for k, v in self.scores.items()}
        data["solved"] = {str(k): v for k, v in self.solved.items()}
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)

    @classmethod
    def read(cls, trial_dir: Path) -> TrialOutcome | None:
        path = trial_dir / TRIAL_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        data["scores"] = {int(k): float(v) for k, v in data["scores"].items()}
        data["solved"] = {int(k): bool(v) for k, v in data["solved"].items()}
        return cls(**data)


class StudyLink:
    """The job's end of an Optuna trial: reports intermediate scores, asks the pruner."""

    def __init__(self, tune: TuneConfig, eval_every: int) -> None:
        import optuna

        assert tune.trial is not None and tune.storage is not None and tune.study is not None
        self.study = optuna.load_study(
            study_name=tune.study,
            storage=open_storage(tune.storage),
            pruner=pruner(tune, eval_every),
        )
        storage = self.study._storage
        self.trial_id = storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, tune.trial
        )
        self.trial = optuna.trial.Trial(self.study, self.trial_id)
        self.reported = set(storage.get_trial(self.trial_id).intermediate_values)

    def report(self, value: float, step: int) -> bool:
        """Report ``value`` at ``step`` (once per step); True if the pruner stops the trial."""
        if step not in self.reported:
            self.trial.report(value, step)
            self.reported.add(step)
        return bool(self.trial.should_prune())


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``; SQLite gets a long lock timeout, since several jobs of one
    sweep write to the same file."""
    import optuna

    if url.startswith("sqlite:"):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})
    return url


def pruner(tune: TuneConfig, eval_every: int) -> Any:
    """``tune.pruner`` as an Optuna pruner; steps are real steps (see :func:`run_trial`)."""
    import optuna

    warmup = tune.pruner_warmup_evals * eval_every
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=tune.pruner_startup_trials, n_warmup_steps=warmup
        )
    if tune.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, warmup))
    return optuna.pruners.NopPruner()


def seed_config(cfg: Config, seed: int) -> Config:
    """The plain one-seed run of a trial: ``cfg`` with ``seed`` and no tuning of its own."""
    tune = dataclasses.replace(cfg.tune, seeds=[], trial=None, storage=None, study=None)
    return dataclasses.replace(cfg, seed=seed, tune=tune)


def run_trial(
    cfg: Config, trial_dir: Path, run_one: Callable[[Config, Path], RunResult]
) -> TrialOutcome:
    """Train ``cfg`` on each of ``tune.seeds`` (or on ``seed``) with ``run_one(cfg, run_dir)`` and
    score it. A run stopped by a non-finite value scores as :func:`diverged_score`.

    Reported steps (Optuna's) run on across seeds: seed i's evaluation due at real step t is
    step ``i x total_timesteps + t``, so every trial reports at the same points. A seed ended
    early because it was solved reports its (final) score at its remaining points too, so that
    the pruner compares it with trials still running there.
    """
    tune, budget, every = cfg.tune, cfg.total_timesteps, cfg.eval_every
    seeds = list(tune.seeds) or [cfg.seed]
    outcome = TrialOutcome.read(trial_dir)
    if outcome is None or outcome.seeds != seeds:
        outcome = TrialOutcome(
            tune.objective, direction(tune.objective), tune.aggregate, seeds, trial=tune.trial
        )
    if outcome.finished:
        return outcome
    link = StudyLink(tune, every) if tune.trial is not None else None
    stop_solved = tune.stop_when_solved and tune.objective == "steps_to_threshold"

    for i, seed in enumerate(seeds):
        if seed in outcome.scores:
            continue
        offset = i * budget
        reported_evals = 0

        def watcher(run: RunContext, offset: int = offset) -> None:
            nonlocal reported_evals
            if len(run.evals) == reported_evals:
                return
            reported_evals = len(run.evals)
            now = score(run.evals, tune, run.logger.threshold, budget)
            point = offset + (run.evals[-1]["env_steps"] // every) * every
            if link is not None and link.report(now, point):
                outcome.pruned_at, outcome.value = point, now
                raise EndRun(run.result(), f"pruned at reported step {point}")
            if stop_solved and now <= budget:  # solved: its score stays what it is
                if link is not None:
                    for later in range(point + every, offset + budget + 1, every):
                        link.report(now, later)
                raise EndRun(run.result(), f"solved at real step {int(now)}")

        with watch_iterations(watcher), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # Optuna's experimental notes
            try:
                result = run_one(seed_config(cfg, seed), trial_dir / f"seed={seed}")
            except EndRun as ended:
                result = ended.result  # type: ignore[assignment]
            except NonFiniteError:
                outcome.diverged.append(seed)
                result = None
        if outcome.pruned_at is not None:
            break
        if result is None:
            outcome.scores[seed] = diverged_score(tune, budget)
            outcome.solved[seed] = False
        else:
            outcome.scores[seed] = score(result.evals, tune, result.threshold, budget)
            outcome.solved[seed] = (
                tune.objective == "steps_to_threshold" and outcome.scores[seed] <= budget
            )
        outcome.write(trial_dir)

    if outcome.pruned_at is None:
        outcome.value = aggregate([outcome.scores[s] for s in seeds], tune.aggregate)
    if link is not None and outcome.pruned_at is not None:
        link.trial.set_user_attr("pruned_at", outcome.pruned_at)
    outcome.write(trial_dir)
    return outcome
