"""Errors with a message of one line: ``ConfigError`` (bad input, refused before any work) and the
two that end a run early during training (``CheckpointError`` lives in ``checkpoint.py``)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any


class NonFiniteError(RuntimeError):
    """A NaN or inf where the run cannot go on: an environment output or the policy loss."""


class RunInterrupted(Exception):  # noqa: N818 - an event, not a fault
    """SIGINT or SIGTERM arrived; the run finished its iteration and wrote ``checkpoint``."""

    def __init__(self, signum: int, checkpoint: Path | None, env_steps: int) -> None:
        self.signum, self.checkpoint, self.env_steps = signum, checkpoint, env_steps
        super().__init__(
            f"{signal.Signals(signum).name} at real step {env_steps}: checkpoint {checkpoint}"
        )

    @property
    def exit_code(self) -> int:
        """The shell convention: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class EndRun(Exception):  # noqa: N818 - an event, not a fault
    """Raised by an iteration watcher (:func:`mbrl_ai.runtime.watch_iterations`) to end a run at
    the end of an iteration, e.g. once it is solved or when a tuning pruner stops its trial;
    ``result`` is the run's :class:`~mbrl_ai.runtime.RunResult` up to there."""

    def __init__(self, result: object, why: str = "stopped") -> None:
        self.result, self.why = result, why
        super().__init__(why)


class ConfigError(ValueError):
    """A config value that cannot be used; the message is one line: key, value, what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"invalid config: {key}={value!r}: {allowed}")

    def __reduce__(self) -> tuple[type, tuple[str, Any, str]]:
        # rebuilt from its three fields: it crosses process pools (joblib sweeps, study scripts)
        return (ConfigError, (self.key, self.value, self.allowed))
