"""Run directories: ``manifest.json`` (written first, atomically) + ``records.jsonl`` (appended per task).

Records keep raw data (exact counts, per-iteration samples, per-epoch curves); summaries are computed
when reading. Every file carries a ``schema`` version: older versions are migrated on load, newer ones are
refused with a message saying which harness version is needed.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import ResultsError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"


@dataclass(frozen=True)
class RunData:
    path: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]

    def of_kind(self, *kinds: str, status: str | None = "ok") -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") in kinds and (status is None or r.get("status") == status)]


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON atomically (see ``write_text_atomic``)."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def create_run_dir(root: Path, suite_name: str, run_id: str | None = None) -> Path:
    run_dir = Path(root) / suite_name / (run_id or new_run_id())
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(Path(run_dir) / MANIFEST, {"schema": SCHEMA_VERSION, **manifest})


class RecordWriter:
    """Appends one JSON line per record and flushes + fsyncs it, so a killed run loses nothing written."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / RECORDS
        self._handle = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {"schema": SCHEMA_VERSION, **record}
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


def _check_schema(obj: dict[str, Any], where: str) -> dict[str, Any]:
    version = obj.get("schema", 0)
    if not isinstance(version, int):
        raise ResultsError(f"{where}: 'schema' must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{where}: written with results schema {version}, this harness reads up to {SCHEMA_VERSION}; "
            "upgrade harness to read it"
        )
    return migrate(obj)


def migrate(obj: dict[str, Any]) -> dict[str, Any]:
    """Bring a manifest or record to the current schema. Version 0 (no field) only lacked ``schema``."""
    if obj.get("schema", 0) < 1:
        obj = {**obj, "schema": 1}
    return obj


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
            out.append(_check_schema(json.loads(line), f"{path}:{number}"))
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
    manifest = _check_schema(manifest, str(manifest_path))
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in read_records(path / RECORDS):
        latest.pop(record_key(record), None)
        latest[record_key(record)] = record
    return RunData(path=path, manifest=manifest, records=list(latest.values()))


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge_runs(run_dirs: list[Path], *, out_root: Path) -> Path:
    """Join shard run dirs of one suite into a new run dir (records de-duplicated by ``record_key``)."""
    runs = [load_run(p) for p in run_dirs]
    suites = {json.dumps(r.manifest.get("suite"), sort_keys=True) for r in runs}
    if len(suites) != 1:
        raise ResultsError("merge: the run dirs come from different suites; merge shards of one suite only")
    first = runs[0].manifest
    run_dir = create_run_dir(out_root, first.get("suite_name", "merged"))
    merged = {k: v for k, v in first.items() if k != "schema"}
    merged.update(run_id=run_dir.name, shard=None, created_utc=utc_now(),
                  merged_from=[{"path": str(r.path), "shard": r.manifest.get("shard")} for r in runs])
    write_manifest(run_dir, merged)
    seen: set[tuple[Any, ...]] = set()
    with RecordWriter(run_dir) as writer:
        for run in runs:
            for record in run.records:
                if record_key(record) not in seen:
                    seen.add(record_key(record))
                    writer.write({k: v for k, v in record.items() if k != "schema"})
    return run_dir
