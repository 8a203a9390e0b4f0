"""Records and manifests that are valid JSON but wrong are one line naming the file, the line and the field (exit
2) wherever they are read — report, compare, history, check, export — never an "internal error" later."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fake_records import MANIFEST, complexity, latency
from helpers import run_cli, write_run

from harness.fileio import MAX_JSON_DEPTH

SAMPLES = [1.0, 1.1, 1.2, 1.0, 1.1, 1.05]


def _throughput(**extra) -> dict:
    rec = {**latency("a", "sknet50", SAMPLES), "kind": "throughput", "task_id": "throughput:a", "images": 8,
           "loop_samples_s": [0.1, 0.1, 0.1], "samples_per_s": 80.0}
    return {**rec, **extra}


EVAL = {"task_id": "eval:a", "kind": "eval", "status": "ok", "model": "sknet50", "label": "a", "dataset": "imagenet",
        "images": 10, "top1_correct": 5, "top1_err": 50.0, "top5_err": 10.0, "weights": None}

BAD_RECORDS = {
    "eval weights string": ({**EVAL, "weights": "w.pt"}, "weights", "valid dictionary"),
    "eval weights ref list": ({**EVAL, "weights": {"source": "file", "ref": ["w.pt"]}}, "weights.ref", "valid string"),
    "eval images 0": ({**EVAL, "images": 0}, "images", "greater than 0"),
    "eval top1 nan": ({**EVAL, "top1_err": math.nan}, "top1_err", "finite number"),
    "nan sample": ({**latency("a", "sknet50", [1.0, math.nan], check=False)}, "samples_ms.1", "finite number"),
    "inf sample": ({**latency("a", "sknet50", [math.inf], check=False)}, "samples_ms.0", "finite number"),
    "negative sample": ({**latency("a", "sknet50", [1.0, -2.0], check=False)}, "samples_ms.1",
                        "greater than or equal to 0"),
    "no samples": ({**latency("a", "sknet50", [], check=False)}, "samples_ms", "at least 1 item"),
    "reference nan": ({**latency("a", "sknet50", SAMPLES), "reference_samples_ms": [math.nan]},
                      "reference_samples_ms.0", "finite number"),
    "images 0": (_throughput(images=0), "images", "greater than 0"),
    "loop 0 s": (_throughput(loop_samples_s=[0.0]), "loop_samples_s.0", "greater than 0"),
    "model list": ({**latency("a", "sknet50", SAMPLES), "model": ["sknet50"]}, "model", "valid string"),
    "label number": ({**latency("a", "sknet50", SAMPLES), "label": 3}, "label", "valid string"),
    "batch 0": ({**latency("a", "sknet50", SAMPLES), "batch_size": 0}, "batch_size", "greater than 0"),
    "batch true": ({**latency("a", "sknet50", SAMPLES), "batch_size": True}, "batch_size", "valid integer"),
    "options string": ({**latency("a", "sknet50", SAMPLES), "options": "x"}, "options", "valid dictionary"),
    "threads string": ({**latency("a", "sknet50", SAMPLES), "threads": "2"}, "threads", "valid integer"),
    "macs negative": ({**complexity("sknet50", 10, 5), "macs": -1}, "macs", "greater than or equal to 0"),
    "error message list": ({"task_id": "t", "kind": "latency", "status": "error", "error": {"type": "E",
                                                                                          "message": ["x"]}},
                           "error.message", "valid string"),
}


def _run(root: Path, name: str, records: list[dict], **manifest) -> Path:
    records = [{**r, "wall_s": 0.01} if "wall_s" in r else r for r in records]  # the helper sums the samples
    return write_run(root / "results" / "s" / name, records, {**MANIFEST, "run_id": name, "suite_name": "s",
                                                               **manifest})


def _commands(tmp_path: Path, bad: Path, good: Path) -> list[list]:
    reports = tmp_path / "reports"
    return [["report", bad, "--reports", reports], ["compare", good, bad, "--reports", reports],
            ["history", bad.parent, "--reports", reports], ["gate", "check", bad, "--baseline", good],
            ["export", bad, "--kind", "latency"]]


def _assert_one_line(capsys, argv: list, *fragments: str) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1, (argv[0], code, out, err)
    assert "internal error" not in err
    for fragment in fragments:
        assert fragment in err, (argv[0], err)


@pytest.mark.parametrize("case", BAD_RECORDS, ids=str)
def test_a_record_of_the_wrong_type_is_one_line_everywhere(tmp_path, capsys, case):
    record, field, message = BAD_RECORDS[case]
    good = _run(tmp_path, "good", [latency("a", "sknet50", SAMPLES)])
    bad = _run(tmp_path, "bad", [complexity("resnext50", 10, 5), record])
    for argv in _commands(tmp_path, bad, good):
        _assert_one_line(capsys, argv, f"{bad / 'records.jsonl'}:2: a ", f"bad field '{field}': ", message)


@pytest.mark.parametrize(("update", "field", "message"), [
    ({"environment": {"cpu": "AMD EPYC"}}, "environment.cpu", "valid dictionary"),
    ({"git": "abc123"}, "git", "valid dictionary"),
    ({"git": {"commit": 5}}, "git.commit", "valid string"),
    ({"environment": {"cpu": {"torch_threads": "2"}}}, "environment.cpu.torch_threads", "valid integer"),
    ({"environment": {"gpus": "A100"}}, "environment.gpus", "valid list"),
    ({"environment": "x"}, "environment", "valid dictionary"),
    ({"created_utc": 5}, "created_utc", "valid string"),
    ({"device": ["cpu"]}, "device", "valid string"),
])
def test_a_manifest_of_the_wrong_type_is_one_line_everywhere(tmp_path, capsys, update, field, message):
    good = _run(tmp_path, "good", [latency("a", "sknet50", SAMPLES)])
    bad = _run(tmp_path, "bad", [latency("a", "sknet50", SAMPLES)], **update)
    for argv in _commands(tmp_path, bad, good):
        _assert_one_line(capsys, argv, f"{bad / 'manifest.json'}: bad field '{field}': ", message)


def _deep(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deeply_nested_json_is_one_line(tmp_path, capsys, depth):
    good = _run(tmp_path, "good", [latency("a", "sknet50", SAMPLES)])
    bad = _run(tmp_path, "bad", [])
    nested = "[" * depth + "]" * depth
    (bad / "records.jsonl").write_text(f'{{"task_id": "t", "kind": "x", "status": "ok", "deep": {nested}}}\n')
    for argv in _commands(tmp_path, bad, good):
        _assert_one_line(capsys, argv, f"{bad / 'records.jsonl'}:1: malformed JSON (nested deeper than "
                                       f"{MAX_JSON_DEPTH} levels)")
    (bad / "manifest.json").write_text(nested)
    _assert_one_line(capsys, ["report", bad, "--reports", tmp_path / "p"],
                     f"{bad / 'manifest.json'}: not readable JSON (nested deeper than {MAX_JSON_DEPTH} levels)")
    baseline = tmp_path / "b.json"
    baseline.write_text(json.dumps({"format": "harness-baseline", "schema": 1, "benchmarks": []})[:-1]
                        + f', "x": {nested}}}')
    _assert_one_line(capsys, ["gate", "check", good, "--baseline", baseline],
                     f"{baseline}: not readable JSON (nested deeper than {MAX_JSON_DEPTH} levels)")


JSON_TEXTS = [b'{"a":1,"a":2}', b'{"a":NaN,"b":Infinity,"c":-Infinity}', b'{"a":1e400}', b'{"a":1.0000000000000002}',
              b'{"a":123456789012345678901234567890}', b'"\\ud800"', b'\xef\xbb\xbf{"a":1}',
              b'{"a": 5e-324, "b": -0.0}', b'{"a":"\xff"}', b'[1,2,]', b'{"a":"x\ty"}',
              b'{"a":01}', b'{"a":.5}', b'{"a":1}x', b'', b"{'a':1}",
              "[" * 300 + "]" * 300, '{"a": "\u00e9\u4e2d"}', "{\"a\": [1.5, 2.25, 3e-7]}"]


@pytest.mark.parametrize("text", JSON_TEXTS)
def test_the_json_reader_gives_pythons_values_and_messages(text):
    """``parse_json`` reads with pydantic's JSON parser (about 2.5× faster than ``json.loads`` on records) and falls
    back to ``json`` on anything it refuses: every text gives the value ``json.loads`` gives, or its error message
    (a UTF-8 BOM, a lone surrogate, nesting deeper than pydantic reads)."""
    import json as std_json

    from harness.fileio import JSONInputError, parse_json

    try:
        expected = std_json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        with pytest.raises(JSONInputError) as caught:
            parse_json(text)
        assert str(caught.value) == str(exc)
        return
    if isinstance(expected, list) and text.startswith("[["):  # the deep one: json reads it, the depth check refuses
        with pytest.raises(JSONInputError, match=f"nested deeper than {MAX_JSON_DEPTH}"):
            parse_json(text)
        return
    value = parse_json(text)
    assert repr(value) == repr(expected) and type(value) is type(expected)


def test_a_torn_deep_last_line_is_skipped_not_a_crash(tmp_path):
    from harness.results import load_run

    bad = _run(tmp_path, "bad", [latency("a", "sknet50", SAMPLES)])
    with (bad / "records.jsonl").open("a") as handle:
        handle.write("[" * 100_000)
    assert len(load_run(bad).records) == 1


def test_parquet_export_of_mixed_types_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("pyarrow")
    import pandas as pd

    from harness.results.store import RunData

    monkeypatch.setattr(RunData, "frame", lambda self, kind, by_round=False: pd.DataFrame({"a": [1, "x"]}))
    run = _run(tmp_path, "r", [latency("a", "sknet50", SAMPLES)])
    out = tmp_path / "x.parquet"
    _assert_one_line(capsys, ["export", run, "--format", "parquet", "-o", out],
                     f"error: {out}: cannot write parquet (", "use --format csv or json")
    assert not out.exists()


def test_the_depth_walk_is_skipped_only_where_the_text_cannot_nest_that_deep(monkeypatch):
    """Nesting needs an opening bracket per level, so a text with at most ``MAX_JSON_DEPTH`` of them cannot be too
    deep and is not walked (most records: 0.5 s of a 25,000-record read); one with more is, brackets inside strings
    included."""
    from harness import fileio

    walked = []
    depth = fileio.json_depth
    monkeypatch.setattr(fileio, "json_depth", lambda value: (walked.append(value), depth(value))[1])
    shallow = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert fileio.parse_json(shallow) is not None and walked == []
    assert fileio.parse_json(b'{"a": "' + b"[" * 40 + b'", "b": [1]}') == {"a": "[" * 40, "b": [1]} and len(walked) == 1
    with pytest.raises(fileio.JSONInputError, match=f"nested deeper than {MAX_JSON_DEPTH}"):
        fileio.parse_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
