"""Writing files safely, and the one canonical JSON form.

Every file the harness writes whole (manifests, reports, baselines, checkpoints) goes through
``write_atomic``: a temporary file in the same folder, then a rename, so a reader never sees half a file
and a crash mid-write leaves the previous version intact. ``canonical_json`` is how dicts and lists become
comparable, hashable keys (task ids, benchmark keys, paper-row matching, resume checks).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pydantic_core

# A name the harness turns into a folder (results/<suite>/): one plain path component, never "." or "..".
FOLDER_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
MAX_FOLDER_NAME = 100


def is_folder_name(name: object) -> bool:
    if not isinstance(name, str) or len(name) > MAX_FOLDER_NAME:
        return False
    return re.fullmatch(FOLDER_NAME_PATTERN, name) is not None


def require_folder_name(name: object, *, where: str, error: type[Exception] | None = None) -> str:
    """``name`` if it is one plain folder name (``is_folder_name``), else a one-line error naming ``where``.

    Every name that becomes a path (suite names and run ids from suites, manifests, records or the command line)
    goes through here: a run dir is untrusted input (shared, downloaded, merged).
    """
    if is_folder_name(name):
        return str(name)
    from harness.errors import ResultsError

    raise (error or ResultsError)(
        f"{where}: {_shown(name)} is not a folder name (letters, digits, '_', '-', '.', not starting with '.', at "
        f"most {MAX_FOLDER_NAME} characters); refusing to write outside the output folder")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def under_root(root: Path, path: Path, *, what: str) -> Path:
    """``path`` if, resolved, it lies under ``root`` resolved (checked before anything is written), else a
    one-line ``ResultsError``: a default output path built from a run dir's contents must stay in its root."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if not resolved.is_relative_to(base):
        from harness.errors import ResultsError

        raise ResultsError(f"{what} {path} lies outside {root}; refusing to write there (pass -o FILE to choose)")
    return Path(path)


# The largest file the harness reads whole: a JSON document (manifest, baseline, launch.json, pytest-benchmark). A
# reader that gets a bigger file (or an endless one like /dev/zero) says so instead of running out of memory.
MAX_INPUT_BYTES = 256 * 2**20
# A run's records.jsonl is read a line at a time (``input_lines``), never whole: its bound is three 100,000-record
# runs (about 310 MB each, 3 GB of memory once read), past which a reader says so instead of running out of memory.
MAX_RECORDS_BYTES = 2**30


def read_input(path: Path, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes, else a one-line ``ResultsError``.

    Checked before opening: a FIFO would block ``open()`` forever and a device (``/dev/zero``) never ends. An
    ``OSError`` (missing file, no permission) is left to the caller, who knows what the file was for.
    """
    from harness.errors import ResultsError

    path = Path(path)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ResultsError(f"{path}: not a regular file; pass a file written by the harness (or pytest-benchmark)")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ResultsError(f"{path}: larger than {limit // 2**20} MiB, more than any run or baseline the harness "
                           "writes; refusing to read it")
    return data


def input_lines(path: Path, *, limit: int) -> Iterator[bytes]:
    """The lines of ``path``, each with its newline (the last one perhaps without), if it is a regular file of at
    most ``limit`` bytes when opened, else a one-line ``ResultsError``; checked as ``read_input`` checks. Bytes
    appended after the check are read up to ``limit`` (a run may be writing)."""
    from harness.errors import ResultsError

    path = Path(path)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ResultsError(f"{path}: not a regular file; pass a file written by the harness (or pytest-benchmark)")
    if info.st_size > limit:
        raise ResultsError(f"{path}: larger than {limit // 2**20} MiB, more than any run the harness writes; refusing "
                           "to read it")
    read = 0
    with path.open("rb") as handle:
        for line in handle:
            read += len(line)
            if read > limit:
                raise ResultsError(f"{path}: larger than {limit // 2**20} MiB, more than any run the harness writes; "
                                   "refusing to read it")
            yield line


# Deeper JSON than any file the harness writes (a record nests about 4 levels) is refused on read: Python's
# reader, and everything that walks the value after it, would end in a RecursionError.
MAX_JSON_DEPTH = 32


class JSONInputError(ValueError):
    """Text that is not JSON, or is nested deeper than ``MAX_JSON_DEPTH``."""


def parse_json(data: str | bytes) -> Any:
    """``json.loads`` for untrusted files: malformed text and nesting deeper than ``MAX_JSON_DEPTH`` are one
    ``JSONInputError`` (never a ``RecursionError``).

    Read with pydantic's JSON parser (``pydantic_core.from_json``, 0.46 s for a 25,000-record run's 79 MB where
    ``json.loads`` takes 1.18 s), the same values; on anything it refuses (malformed text, a UTF-8 BOM, a lone
    surrogate, deep nesting) with ``json.loads``, whose value or message is the answer."""
    try:
        value = pydantic_core.from_json(data)
    except ValueError:
        value = _json_loads(data)
    # each level of nesting opens with a bracket: a text with at most MAX_JSON_DEPTH of them is not walked
    if _openings(data) > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
        raise JSONInputError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _openings(data: str | bytes) -> int:
    """Opening brackets in ``data`` (those inside strings too): at least the depth of the JSON value it holds."""
    if isinstance(data, bytes):
        return data.count(b"[") + data.count(b"{")
    return data.count("[") + data.count("{")


def _json_loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise JSONInputError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JSONInputError(str(exc)) from None


_JSON_CONTAINER = frozenset({dict, list}).__contains__


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0), without recursion; past ``MAX_JSON_DEPTH`` it stops counting
    (anything above it is refused alike).

    Level by level, each container's child containers are picked out in C (``itertools.compress`` over their
    types), so a record's thousands of samples are never visited one by one in Python.
    """
    level = [value] if _JSON_CONTAINER(type(value)) else []
    depth = 0
    while level and depth <= MAX_JSON_DEPTH:
        depth += 1
        deeper: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            deeper.extend(itertools.compress(children, map(_JSON_CONTAINER, map(type, children))))
        level = deeper
    return depth


def canonical_json(value: Any) -> str:
    """Sorted keys (json's default separators, which task ids were first hashed with): equal values give
    equal strings."""
    if isinstance(value, dict) and not value:  # most models have no options: a report of a large run asks 10^5 times
        return "{}"
    return json.dumps(value, sort_keys=True, default=str)


def _mode_for(path: Path) -> int:
    """An existing file keeps its mode; a new one gets what ``open()`` would give it (0o666 minus the umask).

    ``mkstemp`` creates 0600 files, which a colleague or a CI artifact step could not read.
    """
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # reading the umask means setting it; put it straight back
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(handle)`` on a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    data = text.encode("utf-8")

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return write_atomic(path, write)


def write_between_markers(path: Path, markers: tuple[str, str], text: str) -> Path:
    """Replace what stands between the two marker lines of a markdown file (a table a benchmark script keeps in the
    docs) by ``text``; the file keeps everything else. A file without both markers is a one-line ``ConfigError``."""
    from harness.errors import ConfigError

    try:
        content = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc}); pass the markdown file "
                          "that holds the table's markers") from None
    start, end = markers
    if start not in content or end not in content.split(start, 1)[-1]:
        raise ConfigError(f"{path}: no {start} … {end} markers to write the table between; add them where it goes")
    head, rest = content.split(start, 1)
    return write_text_atomic(Path(path), head + start + "\n" + text.rstrip("\n") + "\n" + end
                             + rest.split(end, 1)[1])


def write_json_atomic(path: Path, payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
