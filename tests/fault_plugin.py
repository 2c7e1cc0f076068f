"""Fault injection through the real CLI: imported as a plugin (``MBRL_AI_PLUGINS``), it makes
checkpoint writes fail the way a full disk or a read-only folder does.

``MBRL_AI_TEST_FAULT=ENOSPC:2``: the checkpoint files written after the first two (one
checkpoint: ``state.pt`` and ``arrays.npz``) fail with that errno.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from mbrl_ai.core import checkpoint

_name, _, _after = os.environ.get("MBRL_AI_TEST_FAULT", "").partition(":")
if _name:
    _code, _written = getattr(errno, _name), [0]
    _write_synced = checkpoint._write_synced

    def _failing_write(path: Path, write: Any) -> None:
        if _written[0] >= int(_after or 0):
            raise OSError(_code, os.strerror(_code), str(path))
        _written[0] += 1
        _write_synced(path, write)

    checkpoint._write_synced = _failing_write
