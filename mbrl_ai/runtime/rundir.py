"""The rules of a run directory: one process trains into it at a time (:func:`run_lock`), and a
directory with a checkpoint resumes only the config that wrote it (:func:`check_resumable`)."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mbrl_ai.config import RESUME_MAY_CHANGE, SCORING_KEYS, Config, ConfigError, config_dict
from mbrl_ai.core.checkpoint import CheckpointError, latest_checkpoint, read_checkpoint
from mbrl_ai.core.utils import flatten_dict

# held by the process that trains into a run directory (``run_lock``)
LOCK_FILE = ".lock"


@contextmanager
def run_lock(out_dir: Path, record: bool = True) -> Iterator[None]:
    """Hold ``out_dir/.lock`` for the run's life, so that no second process trains into the same
    directory (``record``: write this process into the file, for the next one's error line). The
    operating system drops the lock when its process dies, however it dies."""
    path = out_dir / LOCK_FILE
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(
            "hydra.run.dir", str(out_dir), f"in use by {holder}: wait for it or choose another"
        ) from None
    if record:
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def check_resumable(cfg: Config, out_dir: Path) -> None:
    """A run directory with a checkpoint resumes only the config that wrote it (the keys in
    ``RESUME_MAY_CHANGE`` aside); its checkpoint, both parts, must be readable."""
    if latest_checkpoint(out_dir) is None:
        return
    try:
        state, _ = read_checkpoint(out_dir)
    except CheckpointError as exc:
        raise ConfigError("hydra.run.dir", str(out_dir), str(exc)) from None
    saved, now = flatten_dict(state["config"]), flatten_dict(config_dict(cfg))
    # a key the checkpoint predates ran with the value that is now its default
    defaults = flatten_dict(config_dict(type(cfg)()))
    for key in sorted(set(saved) | set(now)):
        was = saved.get(key, defaults.get(key))
        if key.split(".")[0] in (*RESUME_MAY_CHANGE, *SCORING_KEYS) or was == now.get(key):
            continue
        raise ConfigError(
            key,
            now.get(key),
            f"the checkpoint in {out_dir} was written with {key}={was!r}; a run "
            f"directory resumes its own config only (use another hydra.run.dir to start afresh)",
        )
