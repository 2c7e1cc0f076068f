"""Errors that end a run early, each with a message of one line.

``ConfigError`` (bad input, before any work) lives in ``config.py``; ``CheckpointError`` in
``checkpoint.py``. These two arise during training.
"""

from __future__ import annotations

import signal
from pathlib import Path


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
