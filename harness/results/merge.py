"""Join the run dirs of ``--shard I/N`` runs of one suite into one run dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import ResultsError
from harness.fileio import canonical_json
from harness.results.store import RecordWriter, create_run_dir, load_run, record_key, utc_now, write_manifest


def merge_runs(run_dirs: list[Path], *, out_root: Path) -> Path:
    """Join shard run dirs of one suite into a new run dir (records de-duplicated by ``record_key``)."""
    runs = [load_run(p) for p in run_dirs]
    suites = {canonical_json(r.manifest.get("suite")) for r in runs}
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
