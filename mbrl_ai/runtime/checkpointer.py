"""Checkpoints of a run and of the objects its loop tracks; exact resumption; stop signals.

A checkpoint holds everything the next iteration depends on, so a resumed run continues exactly
as the uninterrupted one would have: every tracked module, optimiser, normaliser and buffer (large
numpy state as arrays), the run context (counters, evaluations, collection state, the
environments' own state and generators, the loop's generator, the logger's clocks and W&B run
id), the global RNG states of python, numpy and torch, the loop's own values (β ...), the
resolved config and the package version.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

import mbrl_ai
from mbrl_ai.config import config_dict
from mbrl_ai.core.checkpoint import latest_checkpoint, misfit, read_checkpoint, write_checkpoint
from mbrl_ai.core.errors import RunInterrupted
from mbrl_ai.core.utils import decode_plain, encode_plain, rng_state, set_rng_state
from mbrl_ai.runtime.context import RunContext

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 1
# signals after which a run finishes its iteration, writes a checkpoint and stops
STOP_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


class _Held:
    """Stop signals a job manager handles, held back while no Checkpointer has them."""

    active = False
    manager: dict[int, Any] = {}  # the job manager's handlers, by signal
    pending: int | None = None  # the first such signal that arrived while held


def _hold(signum: int, frame: FrameType | None) -> None:
    if _Held.pending is None:
        _Held.pending = signum
    log.warning("%s before the run's loop took it over: held", signal.Signals(signum).name)


def _is_manager(handler: Any) -> bool:
    """A job manager's own handler (submitit's requeue on SIGUSR2), not Python's default."""
    return callable(handler) and handler is not signal.default_int_handler and handler is not _hold


@contextmanager
def hold_stop_signals() -> Iterator[None]:
    """For a whole task (config, run, report): a stop signal that a job manager handles in Python
    (submitit requeues a preempted job on SIGUSR2) is held back wherever no
    :class:`Checkpointer` has taken it over, so that it never runs in the middle of building the
    config or writing the report. One that arrives before the loop starts is handed to the
    Checkpointer, which stops at the end of the first iteration with a checkpoint; one that arrives
    after the run's last checkpoint finds nothing left to save, and the task ends normally.
    Signals with their default handling (Ctrl-C in a terminal) act at once, as always."""
    if _Held.active or threading.current_thread() is not threading.main_thread():
        yield
        return
    _Held.active, _Held.pending = True, None
    _Held.manager = {s: h for s in STOP_SIGNALS if _is_manager(h := signal.getsignal(s))}
    for signum in _Held.manager:
        signal.signal(signum, _hold)
    try:
        yield
    finally:
        for signum, handler in _Held.manager.items():
            signal.signal(signum, handler)
        if _Held.pending is not None:
            log.warning(
                "%s after the run's last checkpoint: nothing left to save, the task ends normally",
                signal.Signals(_Held.pending).name,
            )
        _Held.active, _Held.manager, _Held.pending = False, {}, None


# called with the run at the end of every iteration (see watch_iterations)
_WATCHERS: list[Callable[[RunContext], None]] = []


@contextmanager
def watch_iterations(watcher: Callable[[RunContext], None]) -> Iterator[None]:
    """Within the block, every training loop of the package calls ``watcher(run)`` at the end of
    each iteration, after evaluating, logging and any checkpoint that was due. The watcher may
    raise :class:`~mbrl_ai.core.errors.EndRun` to end the run there (what early stopping and tuning
    pruners do); it must draw no random numbers, so that a stopped run is the same run as the
    full one up to the stop. It holds for this process only."""
    _WATCHERS.append(watcher)
    try:
        yield
    finally:
        _WATCHERS.remove(watcher)


class Checkpointer:
    """Writes and restores checkpoints of ``run`` and of the tracked objects; turns SIGINT and
    SIGTERM into a checkpoint and a clean stop at the end of the iteration."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.cfg = run.cfg
        self.tracked: dict[str, Any] = {}
        self.last_checkpoint: Path | None = None
        self.stop_signal: int | None = None
        self._next_checkpoint = 0
        self._stale = False  # the run moved on (a pending evaluation) since the last checkpoint
        self._previous_handlers: dict[int, Any] = {}  # to hand a signal on to
        self._restore_handlers: dict[int, Any] = {}  # to give the signals back to

    def track(self, **objects: Any) -> None:
        """Checkpoint these objects too (anything with ``state_dict`` / ``load_state_dict``;
        ``arrays`` / ``load_arrays`` for large numpy state). ``None`` values are skipped."""
        self.tracked.update({k: v for k, v in objects.items() if v is not None})

    def begin(self) -> dict[str, Any]:
        """Resume from the newest checkpoint in the run directory if there is one; open the logs;
        take over the stop signals. Returns the loop values saved by :meth:`end_iteration`
        (``{}`` for a fresh run)."""
        loop: dict[str, Any] = {}
        logger_state = None
        self._set_last(latest_checkpoint(self.run.out_dir))
        if self.last_checkpoint is not None:
            state, arrays = read_checkpoint(self.last_checkpoint)
            try:
                logger_state = state["logger"]
                loop = self._restore(state, arrays)
            except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
                # a weights-only file with entries missing or of other shapes: nothing has been
                # written yet, so the run directory stays as it was
                raise misfit(self.last_checkpoint, exc) from None
        self.run.open_logs(logger_state)
        self._next_checkpoint = self._following_checkpoint()
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                restore = signal.signal(signum, self._on_signal)
                self._restore_handlers[signum] = restore
                self._previous_handlers[signum] = _Held.manager.get(signum, restore)
            if _Held.pending is not None:  # arrived while the task was starting: stop after one
                self.stop_signal, _Held.pending = _Held.pending, None  # iteration, checkpointed
        self.run.stop_requested = lambda: self.stop_signal is not None
        self._evaluate_pending()
        if self.run.eval_pending:  # stopped again: the checkpoint on disk is still the one
            self._stop()
            self._evaluate_pending()  # a job manager's handler let the run go on
        return loop

    def _evaluate_pending(self) -> None:
        """Run an evaluation a stop cut short, before anything trains."""
        if self.run.evaluate_pending() and not self.run.eval_pending:
            self._stale = True  # the checkpoint on disk no longer holds the run's state

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        """Give the stop signals back to whoever had them before."""
        for signum, handler in self._restore_handlers.items():
            signal.signal(signum, handler)
        self._restore_handlers.clear()
        self._previous_handlers.clear()

    @property
    def stop_requested(self) -> bool:
        """A stop signal arrived: a loop with long iterations calls :meth:`end_iteration` at its
        next consistent point (with what the rest of the iteration needs in ``loop``)."""
        return self.stop_signal is not None

    def end_iteration(self, **loop: Any) -> None:
        """Write a checkpoint when one is due; after SIGINT / SIGTERM, write one and stop. Then
        call the watchers of :func:`watch_iterations` (which may end the run with ``EndRun``).

        ``loop`` holds the loop's own values that the next iteration needs (plain values or
        dataclasses of them); :meth:`begin` hands them back on resumption.
        """
        due = self.cfg.checkpoint_every > 0 and self.run.env_steps >= self._next_checkpoint
        if due or self.stop_signal is not None:
            self.checkpoint(**loop)
        if self.stop_signal is None:
            for watcher in list(_WATCHERS):
                watcher(self.run)
            return
        self._stop()
        self._evaluate_pending()  # the run goes on: evaluate what the stop cut short

    def _stop(self) -> None:
        """Act on the stop signal, the checkpoint on disk being the run's state: raise
        ``RunInterrupted``, or hand the signal on to a job manager's handler (which may let the
        run go on: then this returns)."""
        signum, self.stop_signal = self.stop_signal, None
        assert signum is not None
        handler = self._previous_handlers.get(signum)
        if callable(handler) and handler is not signal.default_int_handler:
            # A job manager handled this signal before the run began (submitit requeues a
            # preempted SLURM job on SIGUSR2 and ignores SIGTERM): now that the checkpoint is
            # safe, hand the signal on. If the manager returns, the run goes on.
            self.run.handed_on = signum
            handler(signum, None)
            self.run.handed_on = None
            return
        raise RunInterrupted(signum, self.last_checkpoint, self.run.env_steps)

    def finish(self, **loop: Any) -> None:
        """The final checkpoint (unless the last iteration just wrote it)."""
        if (
            self._stale
            or self.last_checkpoint is None
            or not self.last_checkpoint.name.endswith(f"{self.run.env_steps:012d}")
        ):
            self.checkpoint(**loop)

    def checkpoint(self, **loop: Any) -> Path:
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": mbrl_ai.__version__,
            "config": config_dict(self.cfg),
            **self.run.state_dict(),
            "rng": rng_state(),
            "loop": encode_plain(
                {
                    k: (
                        dataclasses.asdict(v)
                        if dataclasses.is_dataclass(v) and not isinstance(v, type)
                        else v
                    )
                    for k, v in loop.items()
                }
            ),
            "objects": {name: obj.state_dict() for name, obj in self.tracked.items()},
        }
        arrays = {
            f"{name}/{key}": value
            for name, obj in self.tracked.items()
            if hasattr(obj, "arrays")
            for key, value in obj.arrays().items()
        }
        self._stale = False
        self._set_last(
            write_checkpoint(
                self.run.out_dir, self.run.env_steps, state, arrays, self.cfg.keep_checkpoints
            )
        )
        self._next_checkpoint = self._following_checkpoint()
        assert self.last_checkpoint is not None
        return self.last_checkpoint

    def _set_last(self, path: Path | None) -> None:
        self.last_checkpoint = self.run.last_checkpoint = path

    def _following_checkpoint(self) -> int:
        every = self.cfg.checkpoint_every
        return (self.run.env_steps // every + 1) * every if every > 0 else 0

    def _restore(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        if set(state["objects"]) != set(self.tracked):
            raise ValueError(
                f"the checkpoint holds {sorted(state['objects'])}, this run has "
                f"{sorted(self.tracked)}: it was written by another configuration"
            )
        for name, obj in self.tracked.items():
            obj.load_state_dict(state["objects"][name])
            if hasattr(obj, "load_arrays"):
                prefix = f"{name}/"
                obj.load_arrays(
                    {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
                )
        self.run.load_state_dict(state)
        set_rng_state(state["rng"])  # last: nothing above may draw from them
        log.info("resumed from %s at real step %d", self.last_checkpoint, self.run.env_steps)
        return decode_plain(state["loop"])

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is not None:  # the second one: stop now, without a checkpoint
            kept = self.last_checkpoint or "none yet"
            sys.stderr.write(
                f"{signal.Signals(signum).name} again: stopped at once; last checkpoint: {kept}\n"
            )
            sys.stderr.flush()
            os._exit(128 + signum)  # the checkpoints on disk are complete (written atomically)
        self.stop_signal = signum
        log.warning(
            "%s: writing a checkpoint where the run can next stop (send again to abort)",
            signal.Signals(signum).name,
        )
