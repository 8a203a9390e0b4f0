"""Run directories: ``manifest.json`` (written first, atomically) + ``records.jsonl`` (appended per task).

Records keep raw data (exact counts, per-iteration samples, per-epoch curves); summaries are computed when
reading. Every line carries a ``schema`` version (``harness.results.schema``): older versions are migrated
on load, newer ones refused.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ResultsError
from harness.fileio import write_json_atomic
from harness.results.schema import RESULTS_SCHEMA, migrate_record

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
# What ``RunData.frame(kind)`` can tabulate (the columns of each: ``harness.results.frames.COLUMNS``).
FRAME_KINDS = ("complexity", "modules", "latency", "reference", "throughput", "train_throughput", "peak",
               "train_epoch", "train")


@dataclass(frozen=True)
class RunData:
    path: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]

    def of_kind(self, *kinds: str, status: str | None = "ok") -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") in kinds and (status is None or r.get("status") == status)]

    def frame(self, kind: str, *, by_round: bool = False) -> pd.DataFrame:
        """Tidy pandas DataFrame of this run's ``kind`` records (``harness.results.frames``)."""
        from harness.results.frames import frame  # pandas is imported only when a frame is asked for

        return frame(self, kind, by_round=by_round)


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
    run_dir = Path(root) / suite_name / (run_id or new_run_id())
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(Path(run_dir) / MANIFEST, {"schema": RESULTS_SCHEMA, **manifest})


class RecordWriter:
    """Appends one JSON line per record and flushes + fsyncs it, so a killed run loses nothing written."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / RECORDS
        self._handle = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {"schema": RESULTS_SCHEMA, **record}
        self._handle.write(json.dumps(record, sort_keys=True, default=_json_default) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return record

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """Identity of a record: a later line with the same key replaces an earlier one (resume, retries)."""
    return (record.get("task_id"), record.get("kind"), record.get("epoch"), record.get("round"))


def read_records(path: Path) -> list[dict[str, Any]]:
    """All records of a ``records.jsonl`` in file order (a torn last line from a kill is skipped)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(migrate_record(json.loads(line), where=f"{path}:{number}"))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                continue  # the process was killed mid-write; the task will be re-run on resume
            raise ResultsError(f"{path}:{number}: malformed JSON ({exc}); fix or delete that line") from None
    return out


def load_run(path: Path) -> RunData:
    """Read a run dir, keeping the last record per ``record_key``."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ResultsError(f"{path}: no {MANIFEST}; pass a run dir like results/<suite>/<run_id>")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{manifest_path}: malformed JSON ({exc})") from None
    manifest = migrate_record(manifest, where=str(manifest_path))
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in read_records(path / RECORDS):
        latest.pop(record_key(record), None)
        latest[record_key(record)] = record
    return RunData(path=path, manifest=manifest, records=list(latest.values()))


def load_runs(paths: Iterable[Path]) -> Runs:
    """``load_run`` of each path, in the order given."""
    return Runs(tuple(load_run(Path(p)) for p in paths))
