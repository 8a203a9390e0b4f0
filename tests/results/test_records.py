"""The record types: one definition of every field (harness.results.records), used by writer, reader and docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import committed_runs, run_cli

from harness.errors import HarnessError, ResultsError
from harness.results import load_run
from harness.results.records import (
    KIND_SHAPES,
    FailedRecord,
    RecordBase,
    SkippedRecord,
    TrainRecord,
    check_new,
    json_schema,
    markdown,
    parse_record,
)

ROOT = Path(__file__).resolve().parents[2]


def test_docs_records_md_is_generated_from_the_types() -> None:
    assert (ROOT / "docs" / "records.md").read_text(encoding="utf-8") == markdown() + "\n", \
        "regenerate: python -m harness schema --markdown > docs/records.md"


@pytest.mark.parametrize("run_dir", committed_runs())
def test_every_committed_record_has_its_kinds_type(run_dir: Path) -> None:
    for typed in load_run(run_dir).records:
        expected = {"error": FailedRecord, "skipped": SkippedRecord}.get(typed.status) or KIND_SHAPES[typed.kind]
        assert type(typed) is expected
        assert not typed.model_extra, f"{typed.task_id}: undeclared {sorted(typed.model_extra or ())}"


def test_the_union_dispatches_on_status_then_kind() -> None:
    base = {"task_id": "t", "model": "m", "label": "m"}
    error = parse_record({**base, "kind": "latency", "status": "error", "error": {"type": "E", "message": "x"}},
                         where="w")
    assert type(error) is FailedRecord and error.error.message == "x"
    with pytest.raises(ResultsError, match="a 'latency' record with status 'ok' has a bad field 'samples_ms'"):
        parse_record({**base, "kind": "latency", "status": "ok", "batch_size": 1}, where="w")
    with pytest.raises(ResultsError, match="'reason': field required"):
        parse_record({**base, "kind": "train", "status": "skipped"}, where="w")
    assert type(parse_record({**base, "kind": "future", "status": "ok"}, where="w")) is RecordBase
    with pytest.raises(ResultsError, match="bad field 'batch_size': input should be a valid integer"):
        parse_record({**base, "kind": "latency", "status": "ok", "batch_size": "1", "samples_ms": [1.0]}, where="w")


def test_nested_undeclared_fields_are_refused_on_write() -> None:
    record = {"task_id": "p", "kind": "latency", "status": "ok", "model": "m", "label": "m", "batch_size": 1,
              "samples_ms": [1.0], "load": {"wall_s": 1.0, "other_cores": 0.0, "own_cores": 1.0, "loadavg_1m": 0.1,
                                            "involuntary_switches": 0, "cores": 2, "gpu_busy": 0.5}}
    with pytest.raises(HarnessError, match=r"load\.gpu_busy are not declared on TimedRecord"):
        check_new(record)


def test_undeclared_fields_in_typed_lists_and_maps_are_refused_on_write() -> None:
    point = {"epoch": 1, "test_acc": 0.5, "img_per_s": 10.0}
    train = {"task_id": "t", "kind": "train", "status": "ok", "model": "m", "label": "m", "top1_err": 50.0,
             "train_time_s": 1.0, "dataset": "cifar10", "curve": [point, {**point, "epoch": 2, "grad_norm": 1.0}]}
    with pytest.raises(HarnessError, match=r"curve\.1\.grad_norm are not declared on TrainRecord"):
        check_new(train)
    typed = check_new({**train, "curve": [point]})
    assert isinstance(typed, TrainRecord) and typed.curve[0].test_acc == 0.5


def test_a_task_field_written_by_an_executor_is_a_harness_error() -> None:
    from harness.runner import _ok_record

    with pytest.raises(HarnessError, match="the latency executor wrote the task's field.s. batch_size, device"):
        _ok_record({"task_id": "t", "kind": "latency", "batch_size": 1, "device": "cpu"},
                   {"batch_size": 2, "device": "cpu", "samples_ms": [1.0]})


def test_schema_command_prints_the_json_schema_and_the_reference(capsys) -> None:
    code, out, _ = run_cli(capsys, "schema")
    schema = json.loads("\n".join(out))
    assert code == 0 and {"TimedRecord", "FailedRecord", "ComplexityRecord"} <= set(schema["$defs"])
    code, out, _ = run_cli(capsys, "schema", "--markdown")
    assert code == 0 and "\n".join(out) == markdown()


@pytest.mark.parametrize("run_dir", committed_runs())
def test_every_committed_record_matches_exactly_one_branch_of_the_published_schema(run_dir: Path) -> None:
    """`harness schema` is for other tools (jsonschema, editors): its oneOf must pick one branch per record, as the
    typed reader does, and hold every record the harness wrote."""
    import jsonschema

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for line in (run_dir / "records.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)  # as other tools read it: the line, not the harness's typed record
        errors = list(validator.iter_errors(record))
        assert not errors, f"{record['task_id']}: {errors[0].message[:200]}"


def test_the_published_schema_refuses_a_known_kind_with_a_bad_field_and_admits_an_unknown_kind() -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(json_schema())
    base = {"task_id": "latency:x:0", "status": "ok", "model": "x", "label": "x"}
    assert not validator.is_valid({**base, "kind": "latency", "samples_ms": "fast"})  # the typed branch decides
    assert validator.is_valid({**base, "kind": "a_later_kind", "anything": 1})  # forward compatibility


@pytest.mark.parametrize("run_dir", committed_runs())
def test_a_committed_record_read_as_its_type_is_its_line(run_dir: Path) -> None:
    """Every field of every committed line is an attribute of the typed record (nested parts typed too), and
    nothing is lost or added on the way: ``to_json()`` gives the line back (what a merge writes)."""
    lines = [json.loads(line) for line in (run_dir / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    for line in lines:
        typed = parse_record(line, where=str(run_dir))
        assert typed.to_json() == line
        for name in line:
            assert getattr(typed, "schema_" if name == "schema" else name) is not None or line[name] is None
