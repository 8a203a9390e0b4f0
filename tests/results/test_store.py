from __future__ import annotations

import json

import pytest
from fake_records import latency

from harness.errors import ResultsError
from harness.results import RESULTS_SCHEMA, RecordWriter, create_run_dir, load_run, write_manifest
from harness.results.records import FailedRecord, PeakRecord, RecordBase, TimedRecord

EPOCH = {"test_acc": 0.5, "img_per_s": 100.0}


def test_manifest_records_roundtrip_and_last_record_wins(tmp_path):
    run_dir = create_run_dir(tmp_path, "suite")
    write_manifest(run_dir, {"suite_name": "suite"})
    with RecordWriter(run_dir) as writer:
        writer.write({"task_id": "a", "kind": "peak", "status": "error", "error": {"type": "E", "message": "m"}})
        writer.write({"task_id": "a", "kind": "peak", "status": "ok", "dtype": "fp32", "peak_gmacs_per_s": 3.0})
        writer.write({"task_id": "t", "kind": "train_epoch", "epoch": 1, "status": "ok", **EPOCH})
        writer.write({"task_id": "t", "kind": "train_epoch", "epoch": 2, "status": "ok", **EPOCH})
    run = load_run(run_dir)
    assert run.manifest["schema"] == RESULTS_SCHEMA == 2
    assert [(r.task_id, getattr(r, "epoch", None), r.status) for r in run.records] == [
        ("a", None, "ok"), ("t", 1, "ok"), ("t", 2, "ok")]
    assert all(r.schema_ == 2 for r in run.records)


def test_newer_schema_is_refused(tmp_path):
    run_dir = create_run_dir(tmp_path, "s")
    (run_dir / "manifest.json").write_text(json.dumps({"schema": 9}))
    with pytest.raises(ResultsError, match="written with results schema 9, this harness reads up to 2; upgrade"):
        load_run(run_dir)


def test_version_0_records_migrate(tmp_path):
    run_dir = create_run_dir(tmp_path, "s")
    (run_dir / "manifest.json").write_text(json.dumps({"suite_name": "s"}))
    (run_dir / "records.jsonl").write_text(json.dumps({"task_id": "x", "kind": "note", "status": "ok"}) + "\n")
    run = load_run(run_dir)
    assert run.manifest["schema"] == 2 and run.records[0].schema_ == 2


def test_schema_1_reference_and_peak_records_migrate_to_schema_2(tmp_path):
    """Schema 1 named the reference workload's records ``calibration`` and the peak's model ``matmul``."""
    run_dir = create_run_dir(tmp_path, "s")
    write_manifest(run_dir, {})
    old = [
        {"schema": 1, "task_id": "calibration:reference:1a2b3c4d:bs1:fp32:cpu:r0", "kind": "calibration",
         "model": "reference_convnet", "label": "reference", "status": "ok", "round": 0, "samples_ms": [1.0],
         "batch_size": 1},
        {"schema": 1, "task_id": "peak:peak fp32:5e6f7a8b:fp32:cpu", "kind": "peak", "model": "matmul",
         "label": "peak fp32", "status": "ok", "dtype": "fp32", "peak_gmacs_per_s": 50.0},
        {"schema": 1, "task_id": "latency:x:00000000:bs1:fp32:cpu:r0", "kind": "latency", "model": "x",
         "label": "x", "status": "ok", "round": 0, "samples_ms": [2.0], "batch_size": 1},
    ]
    (run_dir / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    ref, peak, lat = load_run(run_dir).records
    assert (ref.kind, ref.task_id) == ("reference", "reference:reference:1a2b3c4d:bs1:fp32:cpu:r0")
    assert ref.model == "reference_convnet" and ref.schema_ == 2
    assert (peak.kind, peak.model, peak.label) == ("peak", None, "peak fp32")
    assert {k: v for k, v in lat.to_json().items() if k != "schema"} == {k: v for k, v in old[2].items()
                                                                          if k != "schema"}


def test_torn_last_line_is_ignored_but_a_torn_middle_line_is_an_error(tmp_path):
    run_dir = create_run_dir(tmp_path, "s")
    write_manifest(run_dir, {})
    good = json.dumps({"task_id": "x", "kind": "note", "status": "ok"})
    (run_dir / "records.jsonl").write_text(good + "\n" + '{"task_id": "y", "kin')
    assert [r.task_id for r in load_run(run_dir).records] == ["x"]
    (run_dir / "records.jsonl").write_text('{"task_id": "y", "kin\n' + good + "\n")
    with pytest.raises(ResultsError, match=r"records.jsonl:1: malformed JSON"):
        load_run(run_dir)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(ResultsError, match="no manifest.json"):
        load_run(tmp_path)


def test_the_writer_refuses_a_field_no_record_type_declares(tmp_path):
    from harness.results.records import UndeclaredField

    run_dir = create_run_dir(tmp_path, "suite")
    write_manifest(run_dir, {"suite_name": "suite"})
    with RecordWriter(run_dir) as writer:
        with pytest.raises(UndeclaredField, match=r"field\(s\) flops_guess are not declared on PeakRecord"):
            writer.write({"task_id": "p", "kind": "peak", "status": "ok", "dtype": "fp32", "peak_gmacs_per_s": 1.0,
                          "flops_guess": 3})
        with pytest.raises(UndeclaredField, match="kind 'note' has no record type"):
            writer.write({"task_id": "n", "kind": "note", "status": "ok"})
        with pytest.raises(ResultsError, match="'peak_gmacs_per_s': input should be greater than or equal to 0"):
            writer.write({"task_id": "p", "kind": "peak", "status": "ok", "dtype": "fp32", "peak_gmacs_per_s": -1.0})
    assert load_run(run_dir).records == []  # nothing refused reached the file


def test_a_reader_keeps_kinds_and_fields_a_newer_harness_writes(tmp_path):
    run_dir = create_run_dir(tmp_path, "suite")
    write_manifest(run_dir, {"suite_name": "suite"})
    lines = [{"schema": 2, "task_id": "n", "kind": "note", "status": "ok", "text": "hi"},
             {"schema": 2, "task_id": "p", "kind": "peak", "status": "ok", "dtype": "fp32", "peak_gmacs_per_s": 1.0,
              "new_field": [1]}]
    (run_dir / "records.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    note, peak = load_run(run_dir).records
    assert type(note) is RecordBase and note.kind == "note" and note.model_extra == {"text": "hi"}
    assert type(peak) is PeakRecord and peak.peak_gmacs_per_s == 1.0 and peak.model_extra == {"new_field": [1]}
    assert [note.to_json(), peak.to_json()] == lines  # what a merge writes back: the lines as they were


def test_a_run_holds_typed_records_with_a_typed_accessor(tmp_path):
    run_dir = create_run_dir(tmp_path, "suite")
    write_manifest(run_dir, {"suite_name": "suite"})
    with RecordWriter(run_dir) as writer:
        written = writer.write(latency("a", "sknet50", [1.0, 2.0]))
        writer.write({"task_id": "p", "kind": "peak", "status": "ok", "dtype": "fp32", "peak_gmacs_per_s": 3.0})
        writer.write({"task_id": "latency:b", "kind": "latency", "status": "error", "model": "senet50",
                      "error": {"type": "E", "message": "m"}})
    run = load_run(run_dir)
    (timed,) = run.of_type(TimedRecord)
    assert timed.samples_ms == [1.0, 2.0] and timed.label == "a"
    assert [p.peak_gmacs_per_s for p in run.of_type(PeakRecord)] == [3.0]
    (failed,) = run.of_type(FailedRecord)
    assert failed.error.type == "E" and run.of_kind("latency") == [timed]
    assert written == timed  # the writer returns the typed record a reader sees

