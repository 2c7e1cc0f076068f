"""Checkpoints: one directory each, written atomically, read without unpickling.

    <run dir>/checkpoints/step_000000020480/
        state.pt      networks, optimisers, normalisers, RNG states, counters, config, version
        arrays.npz    large numpy state (the real-transition replay), no pickled objects

A checkpoint is written into a hidden temporary directory beside the others, flushed to disk, and
renamed into place. A rename is atomic, so a crash leaves the earlier checkpoints intact and at
worst a temporary directory, which the next write removes. Only the newest ``keep`` are kept.

Reading never runs code from the file: ``state.pt`` is loaded with
``torch.load(weights_only=True)`` (tensors, numbers, strings and containers only) and
``arrays.npz`` with ``np.load(allow_pickle=False)``. Anything else is refused with a
:class:`CheckpointError`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.pt"
ARRAYS_FILE = "arrays.npz"
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, damaged or not safe to read."""


def save_state(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)``; a file that needs unpickling is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is damaged
        raise CheckpointError(f"refusing to load {path}: damaged (not a torch.save archive)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # an unpickling error or a damaged archive
        raise CheckpointError(
            f"refusing to load {path}: not a plain weights-only checkpoint ({_first_line(exc)})"
        ) from None


def write_checkpoint(
    run_dir: Path,
    step: int,
    state: dict[str, Any],
    arrays: dict[str, np.ndarray],
    keep: int = 2,
) -> Path:
    """Write ``<run_dir>/checkpoints/step_<step>`` atomically; keep the newest ``keep``."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):  # left by a run killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    final = root / f"step_{step:012d}"
    try:
        _write_synced(tmp / STATE_FILE, lambda f: torch.save(state, f))
        # numpy's stubs let **arrays bind savez's allow_pickle: bool; the keys are array names
        _write_synced(tmp / ARRAYS_FILE, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
        if final.exists():  # the same step written again (a resumed run that stops at once)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or None."""
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def read_checkpoint(
    path: Path, map_location: str | torch.device = "cpu", with_arrays: bool = True
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(state, arrays) of a checkpoint directory, or of a run directory's newest checkpoint."""
    path = Path(path)
    ckpt = path if (path / STATE_FILE).exists() else latest_checkpoint(path)
    if ckpt is None:
        raise CheckpointError(f"no checkpoint in {path}")
    state = load_state(ckpt / STATE_FILE, map_location)
    if not isinstance(state, dict) or "config" not in state:
        raise CheckpointError(f"refusing to load {ckpt / STATE_FILE}: not an mbrl_ai checkpoint")
    if not with_arrays:
        return state, {}
    if (ckpt / ARRAYS_FILE).exists() and not zipfile.is_zipfile(ckpt / ARRAYS_FILE):
        raise CheckpointError(  # np.savez writes a zip archive; anything else is damaged
            f"refusing to load {ckpt / ARRAYS_FILE}: damaged (not an np.savez archive)"
        )
    try:
        with np.load(ckpt / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {ckpt} has no {ARRAYS_FILE}") from None
    except Exception as exc:  # pickled object arrays, a damaged zip
        raise CheckpointError(
            f"refusing to load {ckpt / ARRAYS_FILE}: not plain arrays ({_first_line(exc)})"
        ) from None
    return state, arrays


def _write_synced(path: Path, write: Any) -> None:
    try:
        with path.open("wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        cause = os_error(exc)
        if cause is None:
            raise
        # the file is named however the writer failed (a zip writer's error names none)
        if cause.errno is None:  # no errno to rebuild it from: keep its words
            raise OSError(f"{cause}: {path}") from None
        raise OSError(cause.errno, cause.strerror, str(path)) from None


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def os_error(exc: BaseException | None) -> OSError | None:
    """The OSError behind ``exc`` (itself, or what it was raised from or while handling)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def misfit(where: Path | str, exc: BaseException) -> CheckpointError:
    """A checkpoint whose contents do not fit the run reading it (missing entries, other shapes)
    as one line."""
    if isinstance(exc, KeyError):
        reason = f"missing entry {exc}"
    else:  # torch's load_state_dict: a header line, then one line per missing key or shape
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = [
            line for line in lines[1:] if re.match(r"(size mismatch|Missing|Unexpected)", line)
        ]
        reason = " ".join(lines[:1] + detail[:1]) if lines else type(exc).__name__
    return CheckpointError(f"refusing to load {where}: it does not fit this run ({reason})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
