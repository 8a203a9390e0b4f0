"""Join the run dirs of ``--shard I/N`` runs of one suite into one run dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import ResultsError
from harness.fileio import canonical_json
from harness.results.records import Manifest
from harness.results.store import RecordWriter, create_run_dir, load_run, record_key, utc_now, write_manifest


def machine(manifest: Manifest) -> dict[str, Any]:
    """Where a run was measured: host, CPU model, GPU names (a merged run keeps one per shard)."""
    env = manifest.environment
    return {"hostname": env.hostname if env else None, "cpu": env.cpu.model if env and env.cpu else None,
            "gpus": [g.name for g in (env.gpus if env else None) or []]}


def merge_runs(run_dirs: list[Path], *, out_root: Path, run_id: str | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Join shard run dirs of one suite into a new run dir (records de-duplicated by ``record_key``).

    ``extra`` adds manifest fields (a launch: its shards and job ids, the ``incomplete`` shards).
    """
    runs = [load_run(p) for p in run_dirs]
    suites = {canonical_json(r.manifest.get("suite")) for r in runs}
    if len(suites) != 1:
        raise ResultsError("merge: the run dirs come from different suites; merge shards of one suite only")
    first = runs[0].manifest
    run_dir = create_run_dir(out_root, first.get("suite_name", "merged"), run_id)
    merged = {k: v for k, v in first.items() if k != "schema"}
    merged.update(run_id=run_dir.name, shard=None, created_utc=utc_now(),
                  merged_from=[{"path": str(r.path), "shard": r.manifest.get("shard"),
                                "machine": machine(r.typed_manifest)} for r in runs], **(extra or {}))
    write_manifest(run_dir, merged)
    seen: set[tuple[Any, ...]] = set()
    with RecordWriter(run_dir) as writer:
        for run in runs:
            for record in run.records:
                if record_key(record) not in seen:
                    seen.add(record_key(record))
                    writer.append(record)
    return run_dir
