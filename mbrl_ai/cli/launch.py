"""Training one config into one run directory, and the lines a run ends with.

:func:`run` is what ``python -m mbrl_ai.train`` calls after the pre-check, and what tests and
scripts call without Hydra: the environment and algorithm checks, the run directory's lock and
resume rules (``runtime.rundir``), the run's ``config.yaml``, then the algorithm's own training
function from the registry. :func:`run_errors` turns what ends a run early into one line and an
exit code.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mbrl_ai import algos
from mbrl_ai.algos import to_config
from mbrl_ai.cli.precheck import check_run
from mbrl_ai.config import RESUME_MAY_CHANGE, Config, ConfigError, config_dict, used_config_dict
from mbrl_ai.core.checkpoint import CheckpointError, latest_checkpoint, read_checkpoint
from mbrl_ai.core.errors import NonFiniteError, RunInterrupted
from mbrl_ai.core.stats import steps_to_threshold
from mbrl_ai.runtime.rundir import check_resumable, run_lock


def run(cfg: Config, out_dir: Path) -> Any:
    """Train ``cfg`` into ``out_dir`` (the function tests and scripts call without Hydra);
    resumes the run if ``out_dir`` holds a checkpoint of it."""
    check_run(cfg)
    out_dir = Path(out_dir)
    check_resumable(cfg, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(out_dir):
        check_resumable(cfg, out_dir)  # again: the lock's holder may have just checkpointed
        config_yaml = OmegaConf.to_yaml(OmegaConf.create(used_config_dict(cfg)))
        (out_dir / "config.yaml").write_text(config_yaml)
        return algos.get(cfg.algo.name).train(cfg, out_dir)


def resumed_config(cfg: Config, overrides: list[str]) -> Config:
    """For ``resume=<dir>``: the config saved in the checkpoint, with the keys of
    ``RESUME_MAY_CHANGE`` that the command line set taken from ``cfg``."""
    assert cfg.resume is not None
    state, _ = read_checkpoint(Path(cfg.resume), with_arrays=False)
    saved = OmegaConf.create(state["config"])
    given = OmegaConf.create(config_dict(cfg))
    for override in overrides:
        key = override.lstrip("+~").partition("=")[0]
        if key.split(".")[0] in RESUME_MAY_CHANGE:
            OmegaConf.update(saved, key, OmegaConf.select(given, key), merge=False)
    saved.resume = cfg.resume
    return to_config(saved)


@contextmanager
def run_errors(out_dir: Path, trial: bool = False) -> Iterator[None]:
    """What ends a run (``trial``: a trial's runs) early, each as one line and its exit code."""
    try:
        yield
    except ConfigError as exc:  # the run directory is in use
        fail(exc)
    except CheckpointError as exc:  # its entries do not fit the config (found on restoring)
        fail(exc)
    except RunInterrupted as exc:
        how = "the same command continues the trial" if trial else (
            f"the same command (or resume={out_dir}) continues the run")  # fmt: skip
        print(f"interrupted by {exc}; {how}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except NonFiniteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # a full disk, a folder made read-only, a file system gone
        print(io_error_line(exc, out_dir), file=sys.stderr)
        sys.exit(1)


def io_error_line(exc: OSError, out_dir: Path) -> str:
    """One line for a run stopped by the file system: the cause, the file, what is kept."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename else ""
    kept = latest_checkpoint(out_dir) if out_dir.is_dir() else None
    keeps = (
        f"the last checkpoint, {kept.name}, is intact: the same command continues from it once "
        "the cause is fixed"
        if kept is not None
        else "no checkpoint had been written yet"
    )
    return f"error: cannot write the run's files: {reason}{where}; {keeps}"


def summary_line(result: Any, out_dir: Path) -> str:
    """The line a finished run ends with: steps, final return, solved or not, time, where."""
    evals = getattr(result, "evals", None) or []
    parts = [f"done: {getattr(result, 'env_steps', '?')} real steps"]
    if evals:
        parts.append(f"final eval return {evals[-1]['mean_return']:.1f}")
        threshold = getattr(result, "threshold", None)
        if threshold is not None:
            steps = [e["env_steps"] for e in evals]
            means = [e["mean_return"] for e in evals]
            hit = steps_to_threshold(steps, means, threshold, consecutive=3)
            parts.append(
                f"solved (3 evaluations >= {threshold:g}) at {hit} real steps"
                if hit is not None
                else f"not solved (3 evaluations >= {threshold:g})"
            )
    seconds = getattr(result, "train_seconds", None)
    if seconds is not None:
        parts.append(f"{seconds:.0f} s of training")
    parts.append(f"run directory {out_dir}")
    checkpoint = latest_checkpoint(out_dir)
    if checkpoint is not None:
        parts.append(f"checkpoint {checkpoint.name}")
    return "; ".join(parts)


def fail(exc: ConfigError | CheckpointError) -> typing.NoReturn:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
