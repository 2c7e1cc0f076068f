"""Small helpers shared by every loop: seeding, RNG state, device, versions, JSON lines, memory."""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

import mbrl_ai


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global random states of python, numpy and torch (CPU and every CUDA device), as
    values a weights-only checkpoint can hold."""
    state = np.random.get_state(legacy=True)
    assert isinstance(state, tuple)  # legacy=True: the tuple form, never the dict
    name, keys, pos, has_gauss, gauss = state
    return {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(_tuples(state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x: Any) -> Any:
    """Lists back to tuples (``random.setstate`` insists on tuples)."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def encode_plain(x: Any) -> Any:
    """Python and numpy values as values a weights-only checkpoint can hold (arrays become
    tensors, tagged so :func:`decode_plain` gives back the same numpy type); TypeError otherwise."""
    if isinstance(x, np.generic):  # before the plain types: np.float64 is a float subclass
        if x.dtype.kind not in "biuf":
            raise TypeError(f"cannot checkpoint a {type(x).__name__}")
        return {"__npscalar__": torch.from_numpy(np.array(x))}
    if x is None or isinstance(x, (bool, int, float, str, torch.Tensor)):
        return x
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        return {"__ndarray__": torch.from_numpy(np.array(x, copy=True))}
    if isinstance(x, (list, tuple)):
        return type(x)(encode_plain(v) for v in x)
    if isinstance(x, dict) and all(isinstance(k, str) for k in x):
        return {k: encode_plain(v) for k, v in x.items()}
    raise TypeError(f"cannot checkpoint a {type(x).__name__}")


def decode_plain(x: Any) -> Any:
    if isinstance(x, dict):
        if "__ndarray__" in x:
            return x["__ndarray__"].numpy().copy()
        if "__npscalar__" in x:
            return x["__npscalar__"].numpy()[()]
        return {k: decode_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(decode_plain(v) for v in x)
    return x


def resident_memory_mb() -> float:
    """Resident set size of this process (Linux: current; elsewhere: the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_unavailable(name: str) -> str | None:
    """Why this machine cannot run on ``name`` (``cuda``, ``cuda:N``, ``mps``); ``None`` if it can."""
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if int(name.partition(":")[2] or 0) >= count:
            return f"this machine has {count} CUDA device(s)" if count else "no CUDA device here"
    if name == "mps" and not torch.backends.mps.is_available():
        return "MPS is not available here"
    return None


def versions() -> dict[str, str]:
    """Versions that matter for reproducing a run."""
    return {
        "mbrl_ai": mbrl_ai.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
    }


class JsonlWriter:
    """Appends one JSON object per line and flushes, so a killed run keeps every line written."""

    def __init__(self, path: Path, fresh: bool = False) -> None:
        self.path = path
        self._file = path.open("w" if fresh else "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, default=_jsonable) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file; a line that is not JSON is a ``ValueError`` naming the
    file and the line."""
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {number}: not JSON ({exc.msg})") from None
    return rows


def filter_jsonl(path: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Rewrite a JSON-lines file atomically with only the objects ``keep`` accepts (a missing file
    stays missing; a last line cut short by a crash is dropped)."""
    path = Path(path)
    if not path.exists():
        return
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, default=_jsonable) + "\n" for r in rows if keep(r))
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, torch.Tensor):
        return x.tolist()
    return str(x)


def flatten_dict(d: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as one level of dotted keys (``{"ppo": {"ent_coef": 0}}`` → ``ppo.ent_coef``);
    tuples become lists, as they read back from YAML."""
    flat: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat |= flatten_dict(v, f"{prefix}{k}.")
        else:
            flat[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return flat


def unwritable(folder: Path | str) -> str | None:
    """Why files cannot be written into ``folder`` (made if missing), in one line; None when they
    can: its nearest existing ancestor must be a directory this process may write into (a
    read-only mount refuses even root)."""
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write into {folder}: {existing} is not a writable directory"
    return None
