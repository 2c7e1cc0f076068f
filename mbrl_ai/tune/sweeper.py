"""``hydra/sweeper=optuna``: a Hydra sweeper that tunes with an Optuna study.

    python -m mbrl_ai.train -m tune=ppo_cartpole
    python -m mbrl_ai.train -m experiment=ppo_cartpole hydra/sweeper=optuna \\
        tune.seeds=[0,1,2] 'lr_actor_critic=tag(log,interval(3e-4,3e-3))' 'n_epochs=choice(5,10,20)'

Search spaces use Hydra's sweep syntax, on the command line or under ``hydra.sweeper.params``:
``interval(a,b)`` (a float; ``tag(log, ...)`` samples its logarithm, ``tag(int, ...)`` integers),
``range(a,b[,step])`` and ``choice(...)`` / ``a,b,c`` (categorical); any other override is fixed.

Each trial is one job of the launcher (``hydra/launcher=basic|joblib|submitit_*|ray``), in
``<sweep dir>/trial_<number>``; the job trains the configuration on ``tune.seeds`` and returns
its score (:mod:`mbrl_ai.tune.trial`), reporting every evaluation to the study so that its
pruner can stop it. The study lives in ``<sweep dir>/optuna.db`` (SQLite): the same command
continues an interrupted sweep, running again the trials that were cut off (each resumes its
seeds from their checkpoints), until ``n_trials`` trials have finished. Then the best trial's
values go to ``best.yaml`` and its whole config to ``best_config.yaml``, and with
``holdout_seeds`` the best configuration is trained again on those seeds, for the record.
"""

from __future__ import annotations

import fcntl
import logging
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from mbrl_ai.config import ConfigError
from mbrl_ai.tune.objective import direction
from mbrl_ai.tune.trial import TrialOutcome, open_storage

log = logging.getLogger(__name__)
SAMPLERS = ("tpe", "random")
STUDY_FILE = "optuna.db"
TUNING_FILE = "tuning.yaml"  # what was tuned, how; written when the sweep starts
BEST_FILE = "best.yaml"
BEST_CONFIG_FILE = "best_config.yaml"
HOLDOUT_DIR = "holdout"
LOCK_FILE = ".sweep.lock"
# overrides the sweeper adds to each job; not part of a trial's parameters
JOB_KEYS = ("tune.trial", "tune.storage", "tune.study", "tune.seeds", "hydra.sweep.subdir")


def search_space(overrides: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Hydra overrides → (Optuna distributions of the sweeps, the fixed overrides as text)."""
    import optuna.distributions as d

    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        key = o.get_key_element()
        value = o.value()
        if not o.is_sweep_override():
            fixed[key] = o.get_value_element_as_str()
        elif isinstance(value, IntervalSweep):
            assert value.start is not None and value.end is not None
            log_scale, as_int = "log" in value.tags, "int" in value.tags
            if as_int:
                space[key] = d.IntDistribution(int(value.start), int(value.end), log=log_scale)
            else:
                space[key] = d.FloatDistribution(value.start, value.end, log=log_scale)
        elif isinstance(value, RangeSweep):
            start, stop, step = value.start, value.stop, value.step
            assert start is not None and stop is not None and step is not None
            choices = [start + i * step for i in range(math.ceil((stop - start) / step))]
            space[key] = d.CategoricalDistribution(choices)
        elif isinstance(value, ChoiceSweep):
            space[key] = d.CategoricalDistribution(list(value.list))  # type: ignore[arg-type]
        else:
            raise ConfigError(key, str(value), "a sweep the Optuna sweeper cannot sample")
    return space, fixed


def override_text(value: Any) -> str:
    """A sampled value as Hydra override text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if text.replace("_", "").replace("-", "").replace(".", "").isalnum():
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_settings(**settings: Any) -> None:
    """The sweeper's own keys (``hydra.sweeper.<key>``) that are given: ConfigError naming the
    first one out of range."""
    sampler = settings.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise ConfigError("hydra.sweeper.sampler", sampler, f"allowed: {', '.join(SAMPLERS)}")
    for key, low in (("n_trials", 1), ("n_jobs", 1), ("startup_trials", 0)):
        value = settings.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"hydra.sweeper.{key}", value, f"must be an integer >= {low}")


def check_interval(key: str, text: str, start: float, end: float, log_scale: bool) -> None:
    """An Optuna interval ``interval(start, end)``: start < end, and start > 0 on a log scale."""
    if not start < end:
        raise ConfigError(key, text, "an interval needs its low end below its high end")
    if log_scale and not start > 0:
        raise ConfigError(key, text, "a log-scale interval needs a low end > 0")


@contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """One sweeper per sweep directory: while it holds the lock, a trial left RUNNING in the
    study was cut off by an earlier, interrupted sweep."""
    handle = (sweep_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            "hydra.sweep.dir", str(sweep_dir), "another sweep is running there: wait for it"
        ) from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class OptunaSweeper(Sweeper):
    """See the module's docstring; the keys are ``hydra.sweeper.*`` (``conf/hydra/sweeper``)."""

    def __init__(
        self,
        n_trials: int = 20,
        n_jobs: int = 1,
        sampler: str = "tpe",
        seed: int = 0,
        startup_trials: int = 8,
        study_name: str = "tune",
        storage: str | None = None,
        holdout_seeds: Sequence[int] = (),
        enqueue_current: bool = False,
        params: dict[str, Any] | None = None,
    ) -> None:
        check_settings(n_trials=n_trials, n_jobs=n_jobs, sampler=sampler,
                       startup_trials=startup_trials)  # fmt: skip
        self.n_trials, self.n_jobs, self.sampler_name = n_trials, n_jobs, sampler
        self.seed, self.startup_trials = seed, startup_trials
        self.study_name, self.storage = study_name, storage
        self.holdout_seeds = [int(s) for s in holdout_seeds]
        self.enqueue_current = bool(enqueue_current)
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Launcher | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()

    # ------------------------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> list[Any]:
        import optuna

        assert self.config is not None
        given = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        space, fixed = search_space(given)
        if not space:
            raise ConfigError("hydra.sweeper.params", "{}", "nothing to tune: give a sweep, "
                              "e.g. 'lr_actor_critic=tag(log,interval(1e-4,1e-2))'")  # fmt: skip
        objective = str(self.config.tune.objective)
        self.direction = direction(objective)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        url = self.storage or f"sqlite:///{self.sweep_dir / STUDY_FILE}"
        with sweep_lock(self.sweep_dir):
            study = optuna.create_study(
                study_name=self.study_name,
                storage=open_storage(url),
                sampler=self._sampler(),
                direction=self.direction,  # type: ignore[arg-type]
                load_if_exists=True,
            )
            if study.direction.name.lower() != self.direction:
                raise ConfigError("tune.objective", objective, f"the study in {url} was made "
                                  f"to {study.direction.name.lower()}: use another sweep dir")  # fmt: skip
            if self.enqueue_current and not study.trials:
                self._enqueue_current(study, space)
            self._write_tuning(space, fixed, url)
            common = [f"{k}={v}" for k, v in fixed.items()]
            common += [f"tune.storage={override_text(url)}", f"tune.study={self.study_name}"]
            returns: list[Any] = []
            stale = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
            if stale:
                log.info("running again %d trial(s) cut off earlier: %s", len(stale),
                         [t.number for t in stale])  # fmt: skip
            for trial in stale:  # one at a time: their numbers need not follow each other
                returns += self._run(study, [(trial.number, trial.params)], common)
            while (todo := self.n_trials - self._finished(study)) > 0:
                batch = []
                for _ in range(min(todo, self.n_jobs)):
                    asked = study.ask(space)
                    batch.append((asked.number, asked.params))
                returns += self._run(study, batch, common)
            self._write_best(study, common)
            complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if not complete:  # every trial failed or was pruned: the sweep did not work
                failed = len(study.trials)
                print(f"error: no trial completed ({failed} ended without a score); see the "
                      f"trial folders in {self.sweep_dir}", file=sys.stderr)  # fmt: skip
                sys.exit(1)
        return returns

    def _enqueue_current(self, study: Any, space: dict[str, Any]) -> None:
        """Trial 0 runs the values the config has now (the preset being tuned), for those keys of
        the space where they lie inside it; the others are sampled."""
        assert self.config is not None
        current: dict[str, Any] = {}
        for key, dist in space.items():
            value = OmegaConf.select(self.config, key.lstrip("+"), default=None)
            try:
                inside = value is not None and dist._contains(dist.to_internal_repr(value))
            except ValueError:  # not one of the choices
                inside = False
            if inside:
                current[key] = value
            else:
                log.warning("enqueue_current: %s=%s is outside its search space; sampled", key,
                            value)  # fmt: skip
        study.enqueue_trial(current)
        log.info("trial 0 runs the current values: %s", current)

    def _sampler(self) -> Any:
        import optuna

        if self.sampler_name == "random":
            return optuna.samplers.RandomSampler(seed=self.seed)
        return optuna.samplers.TPESampler(
            seed=self.seed, n_startup_trials=self.startup_trials, constant_liar=self.n_jobs > 1
        )

    @staticmethod
    def _finished(study: Any) -> int:
        import optuna

        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                optuna.trial.TrialState.FAIL)  # fmt: skip
        return len(study.get_trials(deepcopy=False, states=done))

    def _run(self, study: Any, batch: list[tuple[int, dict[str, Any]]], common: list[str]) -> Any:
        """Launch one job per (trial number, params) and tell the study how each ended."""
        import optuna

        jobs = [
            [
                *common,
                *(f"{k}={override_text(v)}" for k, v in params.items()),
                f"tune.trial={number}",
                f"hydra.sweep.subdir=trial_{number}",
            ]  # fmt: skip
            for number, params in batch
        ]
        assert self.launcher is not None
        returns = self.launcher.launch(jobs, initial_job_idx=batch[0][0])
        for (number, _), ret in zip(batch, returns, strict=True):
            frozen = study.trials[number]
            state, value = optuna.trial.TrialState.FAIL, None
            if ret.status.name == "COMPLETED" and ret.return_value is not None:
                value = float(ret.return_value)
                if "pruned_at" in frozen.user_attrs:
                    state = optuna.trial.TrialState.PRUNED
                elif not math.isnan(value):
                    state = optuna.trial.TrialState.COMPLETE
            else:
                try:
                    ret.return_value  # noqa: B018 - raises the job's exception
                except Exception as exc:
                    log.warning("trial %d failed: %s", number, exc)
            study.tell(number, value if state == optuna.trial.TrialState.COMPLETE else None,
                       state=state)  # fmt: skip
            log.info("trial %d: %s %s", number, state.name.lower(), value)
        return returns

    # ------------------------------------------------------------------------------------------

    def _write_tuning(self, space: dict[str, Any], fixed: dict[str, str], url: str) -> None:
        assert self.config is not None
        record = {
            "objective": str(self.config.tune.objective),
            "direction": self.direction,
            "aggregate": str(self.config.tune.aggregate),
            "seeds": list(self.config.tune.seeds) or [int(self.config.seed)],
            "holdout_seeds": self.holdout_seeds,
            "n_trials": self.n_trials,
            "sampler": self.sampler_name,
            "pruner": str(self.config.tune.pruner),
            "study": self.study_name,
            "storage": url,
            "space": {k: repr(v) for k, v in space.items()},
            "fixed": fixed,
        }
        (self.sweep_dir / TUNING_FILE).write_text(OmegaConf.to_yaml(OmegaConf.create(record)))

    def _write_best(self, study: Any, common: list[str]) -> None:
        """``best.yaml`` and ``best_config.yaml``; then the held-out re-run, if asked for."""
        import optuna

        assert self.config is not None and self.hydra_context is not None
        try:
            best = study.best_trial
        except ValueError:
            log.warning("no trial completed: nothing to call best")
            return
        overrides = [o for o in common if not o.startswith(JOB_KEYS)]
        overrides += [f"{k}={override_text(v)}" for k, v in best.params.items()]
        record: dict[str, Any] = {
            "best_trial": best.number,
            "best_value": best.value,
            "best_params": dict(best.params),
            "overrides": " ".join(overrides),
            "trials": {
                s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
                for s in (
                    optuna.trial.TrialState.COMPLETE,
                    optuna.trial.TrialState.PRUNED,
                    optuna.trial.TrialState.FAIL,
                )
            },  # fmt: skip
        }
        loaded = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with_hydra = OmegaConf.to_container(loaded, resolve=False)
        assert isinstance(with_hydra, dict)
        with_hydra.pop("hydra", None)
        (self.sweep_dir / BEST_CONFIG_FILE).write_text(OmegaConf.to_yaml(with_hydra))
        if self.holdout_seeds:
            record["holdout"] = self._holdout(overrides)
        (self.sweep_dir / BEST_FILE).write_text(OmegaConf.to_yaml(OmegaConf.create(record)))
        log.info("best trial %d: %s (%s); see %s", best.number, best.value,
                 record["overrides"], self.sweep_dir / BEST_FILE)  # fmt: skip

    def _holdout(self, overrides: list[str]) -> dict[str, Any]:
        """Train the best configuration on ``holdout_seeds``, split over ``n_jobs`` jobs."""
        parts = [self.holdout_seeds[i :: self.n_jobs] for i in range(self.n_jobs)]
        parts = [p for p in parts if p]
        jobs = [
            [
                *overrides,
                f"tune.seeds=[{','.join(map(str, p))}]",
                f"hydra.sweep.subdir={HOLDOUT_DIR}/part_{i}",
            ]  # fmt: skip
            for i, p in enumerate(parts)
        ]
        assert self.launcher is not None
        self.launcher.launch(jobs, initial_job_idx=10**6)
        scores: dict[int, float] = {}
        for i in range(len(parts)):
            outcome = TrialOutcome.read(self.sweep_dir / HOLDOUT_DIR / f"part_{i}")
            if outcome is not None:
                scores |= outcome.scores
        return {"seeds": self.holdout_seeds, "scores": scores}
