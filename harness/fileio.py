"""Writing files safely, and the one canonical JSON form.

Every file the harness writes whole (manifests, reports, baselines, checkpoints) goes through
``write_atomic``: a temporary file in the same folder, then a rename, so a reader never sees half a file
and a crash mid-write leaves the previous version intact. ``canonical_json`` is how dicts and lists become
comparable, hashable keys (task ids, benchmark keys, paper-row matching, resume checks).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def canonical_json(value: Any) -> str:
    """Sorted keys (json's default separators, which task ids were first hashed with): equal values give
    equal strings."""
    return json.dumps(value, sort_keys=True, default=str)


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(handle)`` on a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json_atomic(path: Path, payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
