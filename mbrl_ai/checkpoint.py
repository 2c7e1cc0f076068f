"""Checkpoints: written atomically, read without unpickling.

A checkpoint is a dict of tensors, state dicts and plain Python values. ``save_checkpoint`` writes
to a temporary file in the same directory and ``os.replace``s it into place, so a crash leaves
either the old file or the new one, never half of one. ``load_checkpoint`` uses
``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is refused.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read safely."""


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
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


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        return torch.load(Path(path), map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # an unpickling error or a corrupted archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"refusing to load {path}: not a plain weights-only checkpoint ({first})"
        ) from None
