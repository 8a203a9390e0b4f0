from __future__ import annotations

import json

import pytest

from harness.errors import ResultsError
from harness.results import RecordWriter, create_run_dir, load_run, write_manifest


def test_manifest_records_roundtrip_and_last_record_wins(tmp_path):
    run_dir = create_run_dir(tmp_path, "suite")
    write_manifest(run_dir, {"suite_name": "suite"})
    with RecordWriter(run_dir) as writer:
        writer.write({"task_id": "a", "kind": "complexity", "status": "error"})
        writer.write({"task_id": "a", "kind": "complexity", "status": "ok", "params": 3})
        writer.write({"task_id": "t", "kind": "train_epoch", "epoch": 1, "status": "ok"})
        writer.write({"task_id": "t", "kind": "train_epoch", "epoch": 2, "status": "ok"})
    run = load_run(run_dir)
    assert run.manifest["schema"] == 1
    assert [(r["task_id"], r.get("epoch"), r["status"]) for r in run.records] == [
        ("a", None, "ok"), ("t", 1, "ok"), ("t", 2, "ok")]
    assert all(r["schema"] == 1 for r in run.records)


def test_newer_schema_is_refused(tmp_path):
    run_dir = create_run_dir(tmp_path, "s")
    (run_dir / "manifest.json").write_text(json.dumps({"schema": 9}))
    with pytest.raises(ResultsError, match="written with results schema 9, this harness reads up to 1; upgrade"):
        load_run(run_dir)


def test_version_0_records_migrate(tmp_path):
    run_dir = create_run_dir(tmp_path, "s")
    (run_dir / "manifest.json").write_text(json.dumps({"suite_name": "s"}))
    (run_dir / "records.jsonl").write_text(json.dumps({"task_id": "x", "kind": "complexity", "status": "ok"}) + "\n")
    run = load_run(run_dir)
    assert run.manifest["schema"] == 1 and run.records[0]["schema"] == 1


def test_torn_last_line_is_ignored_but_a_torn_middle_line_is_an_error(tmp_path):
    run_dir = create_run_dir(tmp_path, "s")
    write_manifest(run_dir, {})
    good = json.dumps({"task_id": "x", "kind": "complexity", "status": "ok"})
    (run_dir / "records.jsonl").write_text(good + "\n" + '{"task_id": "y", "kin')
    assert [r["task_id"] for r in load_run(run_dir).records] == ["x"]
    (run_dir / "records.jsonl").write_text('{"task_id": "y", "kin\n' + good + "\n")
    with pytest.raises(ResultsError, match=r"records.jsonl:1: malformed JSON"):
        load_run(run_dir)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(ResultsError, match="no manifest.json"):
        load_run(tmp_path)
