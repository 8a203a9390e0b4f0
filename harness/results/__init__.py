"""Run directories on disk: the store (manifest, records, load), merging shards, and schema migrations."""

from harness.results.merge import merge_runs
from harness.results.schema import RESULTS_SCHEMA
from harness.results.store import (
    MANIFEST,
    RECORDS,
    RecordWriter,
    RunData,
    Runs,
    create_run_dir,
    load_run,
    load_runs,
    read_records,
    record_key,
    utc_now,
    write_manifest,
)

__all__ = [
    "MANIFEST",
    "RECORDS",
    "RESULTS_SCHEMA",
    "RecordWriter",
    "RunData",
    "Runs",
    "create_run_dir",
    "load_run",
    "load_runs",
    "merge_runs",
    "read_records",
    "record_key",
    "utc_now",
    "write_manifest",
]
