"""Run directories on disk: the record types, the store (manifest, records, load), merging shards, and schema
migrations."""

from harness.results.merge import merge_runs
from harness.results.records import Record, parse_record
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
    "Record",
    "RecordWriter",
    "RunData",
    "Runs",
    "create_run_dir",
    "load_run",
    "load_runs",
    "merge_runs",
    "parse_record",
    "read_records",
    "record_key",
    "utc_now",
    "write_manifest",
]
