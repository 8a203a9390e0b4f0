"""Versions of the files the harness writes, and the migrations that bring older ones up to date.

Every manifest, record and baseline carries a ``schema`` integer. Older versions are migrated on load (the
file on disk is never rewritten); newer ones are refused with a message saying to upgrade.

Results schema history:
- 0: no ``schema`` field.
- 1: ``schema`` added. The reference workload's records had kind ``calibration``, peak records the model
  name ``matmul``.
- 2: kind ``calibration`` is ``reference`` (the fixed timing yardstick), and peak records have no model
  (``model: null``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import ResultsError

RESULTS_SCHEMA = 2


def check_schema(doc: Mapping[str, Any], *, where: str, current: int, what: str, minimum: int = 0,
                 default: int | None = None, hint: str = "upgrade harness to read it") -> int:
    """The ``schema`` of ``doc``; a non-integer, one below ``minimum`` (0 or 1) or one newer than ``current`` is
    a ``ResultsError`` naming ``where`` (the one schema check of results and baseline files)."""
    version = doc.get("schema", default)
    if not isinstance(version, int) or isinstance(version, bool) or version < minimum:
        kind = "a non-negative" if minimum == 0 else "a positive"
        raise ResultsError(f"{where}: 'schema' must be {kind} integer, got {version!r}")
    if version > current:
        raise ResultsError(f"{where}: written with {what} schema {version}, this harness reads up to {current}; {hint}")
    return version


def migrate_record(record: dict[str, Any], *, where: str) -> dict[str, Any]:
    """A record (or manifest) of any supported version, in the current schema."""
    version = check_schema(record, where=where, current=RESULTS_SCHEMA, what="results", default=0)
    if version < 2:
        record = dict(record)
        if record.get("kind") == "calibration":
            record["kind"] = "reference"
            task_id = record.get("task_id")
            if isinstance(task_id, str) and task_id.startswith("calibration:"):
                record["task_id"] = "reference:" + task_id[len("calibration:"):]
        if record.get("kind") == "peak" and record.get("model") == "matmul":
            record["model"] = None
    if version < RESULTS_SCHEMA:
        record = {**record, "schema": RESULTS_SCHEMA}
    return record
