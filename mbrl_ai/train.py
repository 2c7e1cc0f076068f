"""Entry point: compose → validate → dispatch on ``cfg.algo.name`` through ``mbrl_ai.algos``.

    python -m mbrl_ai.train env=CartPole-v1 planning_horizon=5
    python -m mbrl_ai.train experiment=ppo_cartpole seed=3
    python -m mbrl_ai.train -m seed=0,1,2 lr_actor_critic=3e-4,1e-3
    python -m mbrl_ai.train -m tune=ppo_cartpole
    python -m mbrl_ai.train resume=outputs/mbppo/CartPole-v1/<run> total_timesteps=200000

Bad input is refused before any work: every override (every value of a sweep) is composed and
checked first, and the first problem is printed as one line on stderr with exit code 2. So is an
output directory that cannot be written, a missing or damaged checkpoint to resume from, and a run
directory whose checkpoint was made with another config.

A run directory that holds a checkpoint is resumed, not overwritten: the same command with the same
``hydra.run.dir`` (what a requeued cluster job runs) continues where the run stopped. SIGINT and
SIGTERM finish the iteration, write a checkpoint and exit with 130 / 143; a non-finite policy loss
or environment output stops the run with one line and exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mbrl_ai.algos import to_config
from mbrl_ai.analysis.report import plot_run
from mbrl_ai.cli.compose import CONF_DIR, compose_config, prepare
from mbrl_ai.cli.help import help_text
from mbrl_ai.cli.launch import fail, io_error_line, resumed_config, run, run_errors, summary_line
from mbrl_ai.cli.precheck import check_one_mode, check_run, is_trial, precheck, resume_in_place
from mbrl_ai.config import Config, ConfigError
from mbrl_ai.core.checkpoint import latest_checkpoint
from mbrl_ai.runtime.checkpointer import hold_stop_signals
from mbrl_ai.runtime.rundir import check_resumable, run_lock
from mbrl_ai.tune.objective import score as objective_score
from mbrl_ai.tune.trial import TRIAL_FILE, run_trial

__all__ = ["compose_config", "main", "precheck", "run"]


class InvalidTrial(ValueError):
    """An Optuna trial sampled values that the config checks refuse (the sweeper marks it failed)."""


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _task(dcfg: DictConfig) -> float | None:
    with hold_stop_signals():  # a job manager's signal waits for a consistent point
        return _train(dcfg)


def _train(dcfg: DictConfig) -> float | None:
    try:
        prepare()  # again: a launcher's worker process may run this task alone
        cfg = to_config(dcfg)
        hydra_cfg = HydraConfig.get()
        out_dir = Path(hydra_cfg.runtime.output_dir)
        if cfg.logger.group is None and hydra_cfg.job.override_dirname:
            # the sweep folder's name, with ':' for '=' (W&B report filters read '=' as an operator)
            cfg.logger.group = hydra_cfg.job.override_dirname.replace("=", ":")
        if cfg.resume is not None:
            if is_trial(cfg):
                raise ConfigError("resume", cfg.resume, "resumes one run: drop tune.seeds (a "
                                  "trial continues when the same command runs again)")  # fmt: skip
            out_dir = Path(cfg.resume)
            cfg = resumed_config(cfg, list(hydra_cfg.overrides.task))
        check_run(cfg)
        check_resumable(cfg, out_dir)
    except ConfigError as exc:
        if OmegaConf.select(dcfg, "tune.trial") is not None:
            # a sampled combination the checks refuse: that trial fails, the study goes on
            raise InvalidTrial(str(exc)) from None
        fail(exc)
    if is_trial(cfg):
        return _trial_task(cfg, out_dir)
    saved = latest_checkpoint(out_dir) if out_dir.is_dir() else None
    start = f"resuming {saved}" if saved is not None else "a new run"
    print(f"{cfg.algo.name} on {cfg.env}, seed {cfg.seed}: {start} in {out_dir}", flush=True)
    with run_errors(out_dir):
        result = run(cfg, out_dir)
    evals = getattr(result, "evals", None) or []
    try:
        plot_run(out_dir)
    except OSError as exc:
        print(io_error_line(exc, out_dir), file=sys.stderr)
        sys.exit(1)
    print(summary_line(result, out_dir), flush=True)
    if cfg.tune.objective == "steps_to_threshold" and result.threshold is None:
        return None
    return objective_score(evals, cfg.tune, result.threshold, cfg.total_timesteps)


def _trial_task(cfg: Config, out_dir: Path) -> float | None:
    """Several seeds, or an Optuna trial: train each seed into ``<out_dir>/seed=<s>``, return the
    aggregate score (a pruned trial: its last reported score)."""
    seeds = list(cfg.tune.seeds) or [cfg.seed]
    what = f"Optuna trial {cfg.tune.trial}" if cfg.tune.trial is not None else "trial"
    print(f"{cfg.algo.name} on {cfg.env}, {what} on seeds {seeds} in {out_dir}", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_errors(out_dir, trial=True), run_lock(out_dir):
        outcome = run_trial(cfg, out_dir, run)
    if outcome.pruned_at is not None:
        state = f"pruned at reported step {outcome.pruned_at}"
    else:
        state = f"{cfg.tune.aggregate} {cfg.tune.objective} {outcome.value:g}"
    scores = ", ".join(f"{s}: {v:g}" for s, v in outcome.scores.items())
    print(f"done: {state}; per seed {{{scores}}}; {out_dir / TRIAL_FILE}", flush=True)
    return outcome.value


def main() -> None:
    if any(arg in ("--help", "-h") for arg in sys.argv[1:]):
        print(help_text())  # every key with its docstring; Hydra's own flags: --hydra-help
        return
    try:
        check_one_mode(sys.argv[1:])
        precheck(sys.argv[1:])
    except ConfigError as exc:
        fail(exc)
    sys.argv[1:] = resume_in_place(sys.argv[1:])
    _task()


if __name__ == "__main__":
    main()
