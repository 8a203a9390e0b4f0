"""Run directories: ``manifest.json`` (written first, atomically) + ``records.jsonl`` (appended per task), and
``RunLock``, the one writer of a run dir at a time.

Records keep raw data (exact counts, per-iteration samples, per-epoch curves); summaries are computed when
reading. Every line carries a ``schema`` version (``harness.results.schema``): older versions are migrated
on load, newer ones refused.

A crash or a full disk can leave the last line of ``records.jsonl`` unterminated. Readers and the writer
agree on one rule: an unterminated last line that parses as a JSON object is a record (only its newline was
lost); any other unterminated tail is torn. Readers skip a torn tail; the writer, on opening the file for
append, moves its bytes to ``records.jsonl.torn`` (never deleting data) and cuts the file back to its last
complete line, so the next record starts on a line of its own.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from filelock import FileLock, Timeout

from harness import fileio
from harness.errors import RecordWriteError, ResultsError, printable
from harness.fileio import JSONInputError, parse_json, read_input, require_folder_name, write_json_atomic
from harness.results.records import SAMPLED_KINDS, Manifest, RecordBase, check_manifest, check_new, parse_record
from harness.results.schema import RESULTS_SCHEMA, migrate_record

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
TORN_SUFFIX = ".torn"
# What ``RunData.frame(kind)`` can tabulate (the columns of each: ``harness.results.frames.COLUMNS``).
FRAME_KINDS = ("complexity", "modules", *SAMPLED_KINDS, "peak", "train_epoch", "train")

log = logging.getLogger(__name__)

R = TypeVar("R", bound=RecordBase)


@dataclass(frozen=True)
class RunData:
    """A run dir as read: its manifest and its records, each the typed record its line validated into
    (``harness.results.records``: ``TimedRecord``, ``EvalRecord`` …; a kind this version does not know is a
    ``RecordBase`` with its fields in ``model_extra``)."""

    path: Path
    manifest: dict[str, Any]
    records: list[RecordBase]
    # frames computed so far: a report's sections ask for the same frame more than once
    _frames: dict[tuple[str, bool], pd.DataFrame] = field(default_factory=dict, init=False, repr=False,
                                                          compare=False)

    def of_kind(self, *kinds: str, status: str | None = "ok") -> list[RecordBase]:
        """Records of ``kinds`` with ``status`` (None: any status), in file order."""
        return [r for r in self.records if r.kind in kinds and (status is None or r.status == status)]

    def of_type(self, *types: type[R]) -> list[R]:
        """Records whose type is one of ``types`` exactly (``of_type(TimedRecord)`` is latency, not its subclasses
        ``ReferenceRecord`` and ``ThroughputRecord``), in file order."""
        return [r for r in self.records if type(r) in types]  # type: ignore[misc]

    @cached_property
    def typed_manifest(self) -> Manifest:
        """The manifest's fields the readers use, typed (``harness.results.records.Manifest``)."""
        return Manifest.model_validate(self.manifest)

    def frame(self, kind: str, *, by_round: bool = False) -> pd.DataFrame:
        """Tidy pandas DataFrame of this run's ``kind`` records (``harness.results.frames``), computed once per
        ``RunData`` (each call gets its own copy)."""
        from harness.results.frames import frame  # pandas is imported only when a frame is asked for

        key = (kind, by_round)
        if key not in self._frames:
            self._frames[key] = frame(self, kind, by_round=by_round)
        return self._frames[key].copy()


@dataclass(frozen=True)
class Runs(Sequence[RunData]):
    """Several runs; ``frame(kind)`` concatenates theirs (each row carries its ``run_id``)."""

    runs: tuple[RunData, ...]

    def __getitem__(self, index: Any) -> Any:
        return self.runs[index]

    def __len__(self) -> int:
        return len(self.runs)

    def frame(self, kind: str, *, by_round: bool = False) -> pd.DataFrame:
        import pandas as pd

        frames = [run.frame(kind, by_round=by_round) for run in self.runs]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


def create_run_dir(root: Path, suite_name: str, run_id: str | None = None) -> Path:
    """``root/<suite_name>/<run_id>``; names that are not one plain folder name ('..', 'a/b') are refused."""
    require_folder_name(suite_name, where="the suite name")
    if run_id is not None:
        require_folder_name(run_id, where="the run id")
    run_dir = Path(root) / suite_name / (run_id or new_run_id())
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise ResultsError(f"cannot create the run dir {run_dir} ({exc.strerror or exc}); "
                           "pass --out DIR, a folder you can write to") from None
    return run_dir


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(Path(run_dir) / MANIFEST, {"schema": RESULTS_SCHEMA, **manifest})


def as_written(record: dict[str, Any]) -> tuple[str, RecordBase]:
    """``record``'s line and the typed record a reader will see in it (tuples are lists, numpy scalars numbers),
    checked as the writer checks every record (``harness.results.records.check_new``)."""
    text = json.dumps({"schema": RESULTS_SCHEMA, **record}, sort_keys=True, default=_json_default)
    return text, check_new(json.loads(text))


class RecordWriter:
    """Appends one JSON line per record and fsyncs it, so a killed run loses nothing written.

    Opening it first sets aside a torn tail (see the module docstring). A failed write (a full disk) is a
    ``RecordWriteError``; the partial line it may leave is set aside by the next writer.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / RECORDS
        _repair_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def write(self, record: dict[str, Any]) -> RecordBase:
        """Append ``record`` after checking it against its type (``harness.results.records.check_new``): a record
        the reader would refuse, or a field no type declares, is never written. Returns the typed record, as a
        reader will see it."""
        text, typed = as_written(record)
        data = (text + "\n").encode("utf-8")
        try:
            while data:
                data = data[os.write(self._fd, data):]
            os.fsync(self._fd)
        except OSError as exc:
            raise RecordWriteError(f"{self.path}: cannot write a record ({exc.strerror or exc})") from exc
        return typed

    def append(self, record: RecordBase) -> None:
        """Append a record read from another run dir (a merge), as its line held it."""
        self.write({k: v for k, v in record.to_json().items() if k != "schema"})

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_object(line: bytes) -> dict[str, Any] | None:
    try:
        value = parse_json(line)
    except JSONInputError:
        return None
    return value if isinstance(value, dict) else None


def _repair_tail(path: Path) -> None:
    """Before appending: end a complete unterminated last record, or move a torn tail to ``<file>.torn``."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    start = data.rfind(b"\n") + 1
    tail = data[start:]
    with path.open("r+b") as handle:
        if _parse_object(tail) is not None:
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
        else:
            side = path.with_name(path.name + TORN_SUFFIX)
            with side.open("ab") as kept:
                kept.write((b"\n" if side.exists() and side.stat().st_size else b"") + tail)
                kept.flush()
                os.fsync(kept.fileno())
            log.warning("%s: moved a torn last line (%d bytes, from an interrupted write) to %s",
                        path, len(tail), side)
            handle.truncate(start)
        handle.flush()
        os.fsync(handle.fileno())


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def record_key(record: RecordBase) -> tuple[Any, ...]:
    """Identity of a record: a later line with the same key replaces an earlier one (resume, retries)."""
    return (record.task_id, record.kind, getattr(record, "epoch", None), record.round)


def read_records(path: Path) -> list[RecordBase]:
    """All records of a ``records.jsonl`` in file order, read a line at a time (``fileio.input_lines``); a torn last
    line (see the module docstring) is skipped."""
    if not path.exists():
        return []
    out = []
    try:
        for number, line in enumerate(fileio.input_lines(path, limit=fileio.MAX_RECORDS_BYTES), start=1):
            if line.endswith(b"\n"):
                if line.strip():
                    out.append(_record(line[:-1], path, number))
            elif line.strip():  # the unterminated last line
                out += _tail(line, path, number)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return out


def _tail(tail: bytes, path: Path, number: int) -> list[RecordBase]:
    record = _parse_object(tail)
    if record is None:
        log.warning("%s: skipped an unterminated last line (%d bytes): a run was cut off mid-write; "
                    "the next --resume moves it to %s%s", path, len(tail), path.name, TORN_SUFFIX)
        return []
    record = migrate_record(record, where=f"{path}:{number}")
    return [parse_record(record, where=f"{path}:{number}")]


def _record(line: bytes, path: Path, number: int) -> RecordBase:
    try:
        value = parse_json(line)
    except JSONInputError as exc:
        raise ResultsError(f"{path}:{number}: malformed JSON ({exc}); fix or delete that line") from None
    if not isinstance(value, dict):
        raise ResultsError(f"{path}:{number}: a record must be a JSON object, got {type(value).__name__}; "
                           "fix or delete that line")
    return parse_record(migrate_record(value, where=f"{path}:{number}"), where=f"{path}:{number}")


def load_run(path: Path) -> RunData:
    """Read a run dir, keeping the last record per ``record_key``."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ResultsError(f"{path}: no {MANIFEST}; pass a run dir like results/<suite>/<run_id>")
    try:
        manifest = parse_json(read_input(manifest_path))
    except (OSError, JSONInputError) as exc:
        raise ResultsError(f"{manifest_path}: not readable JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ResultsError(f"{manifest_path}: a manifest must be a JSON object, got {type(manifest).__name__}")
    manifest = migrate_record(manifest, where=str(manifest_path))
    check_manifest(manifest, where=str(manifest_path))
    latest: dict[tuple[Any, ...], RecordBase] = {}
    for record in read_records(path / RECORDS):
        latest.pop(record_key(record), None)
        latest[record_key(record)] = record
    return RunData(path=path, manifest=manifest, records=list(latest.values()))


def load_runs(paths: Iterable[Path]) -> Runs:
    """``load_run`` of each path, in the order given."""
    return Runs(tuple(load_run(Path(p)) for p in paths))


# --- one writer per run dir ----------------------------------------------------------------------------------
# ``RunLock`` is an exclusive lock (``filelock``) held while a run, a resume or a merge writes into the dir, with a
# note of who holds it, so a second process is refused with one line naming the holder instead of recording every
# task a second time.

LOCK_FILE = ".lock"
HOLDER_FILE = ".lock.holder.json"

# A run dir's own files (and a launch's, a shard's), written only by that run's writer: a command's output file
# (``-o``, ``--output``) may never be one of them, or a run's records are overwritten by an export of themselves.
RUN_FILES = frozenset({MANIFEST, RECORDS, RECORDS + TORN_SUFFIX, LOCK_FILE, HOLDER_FILE, "done.json",
                       "launch.json", "suite.yaml"})
_RUN_MARKERS = (MANIFEST, RECORDS, "launch.json", "done.json")


def refuse_run_file(path: Path, *, what: str) -> Path:
    """``path`` unless it is (or a symlink leads to) one of a run dir's own files (``RUN_FILES`` in a folder that
    holds a manifest, records, a launch or a shard's done marker); then a one-line ``ResultsError``."""
    resolved = Path(path).resolve()
    if resolved.name in RUN_FILES and any((resolved.parent / marker).exists() for marker in _RUN_MARKERS):
        raise ResultsError(f"{what} {printable(path)} is a file of the run dir {printable(resolved.parent)} (only "
                           "its run writes it); refusing to overwrite it: choose another file name")
    return Path(path)


class RunLock:
    """``with RunLock(run_dir, argv=sys.argv):`` — raises ``ResultsError`` if another process holds it."""

    def __init__(self, run_dir: Path, *, argv: list[str], utc: str = "") -> None:
        self.run_dir = Path(run_dir)
        self.argv = list(argv)
        self.utc = utc
        self._lock = FileLock(str(self.run_dir / LOCK_FILE))

    def _holder(self) -> str:
        try:
            info = json.loads((self.run_dir / HOLDER_FILE).read_text(encoding="utf-8"))
            return printable(f"process {info['pid']} on {info['host']} since {info['since'] or '?'} "
                             f"({' '.join(map(str, info['argv']))})")
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def __enter__(self) -> RunLock:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise ResultsError(
                f"{self.run_dir} is in use by {self._holder()}; wait for it to end, or resume into another copy"
            ) from None
        write_json_atomic(self.run_dir / HOLDER_FILE, {"pid": os.getpid(), "host": socket.gethostname(),
                                                       "since": self.utc, "argv": self.argv})
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        (self.run_dir / HOLDER_FILE).unlink(missing_ok=True)
        self._lock.release()
