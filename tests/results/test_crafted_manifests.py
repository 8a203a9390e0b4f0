"""Crafted manifest fields and special files are one line and exit 2 (issue 28, adversarial item 5), never an
internal error, a MemoryError or a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_records import MANIFEST, latency
from helpers import run_cli, write_run

SAMPLES = [1.0, 1.1, 1.2, 1.0, 1.1, 1.05]
SHARD = {"path": "x", "shard": {"index": 0, "count": 2}, "machine": {"hostname": "n", "cpu": "c", "gpus": []}}


def _one_line(capsys, *argv) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1, (code, out, err)
    assert "internal error" not in err
    return err


@pytest.mark.parametrize("fields", [{"incomplete": "x"}, {"incomplete": [3]}, {"merged_from": 3},
                                    {"merged_from": [{**SHARD, "shard": {"index": "0", "count": 2}}]},
                                    {"shard": {"index": "0", "count": 2}}, {"shard": {"index": 0}}],
                         ids=repr)
@pytest.mark.parametrize("command", ["report", "export"])
def test_a_crafted_manifest_field_is_one_line(tmp_path, capsys, fields, command):
    run = write_run(tmp_path / "s" / "r1", [latency("a", "sknet50", SAMPLES)], {**MANIFEST, **fields})
    err = _one_line(capsys, command, run, *(["--reports", tmp_path / "p"] if command == "report" else []))
    assert "manifest.json: bad field" in err


def test_a_gpu_without_a_name_is_read(tmp_path, capsys):
    env = {**MANIFEST["environment"], "gpus": [{"name": None}]}
    run = write_run(tmp_path / "s" / "r1", [latency("a", "sknet50", SAMPLES)],
                    {**MANIFEST, "environment": env, "merged_from": [{**SHARD, "machine": {"gpus": [None]}}]})
    code, _, err = run_cli(capsys, "report", run, "--reports", tmp_path / "p")
    assert code == 0, err
    code, _, err = run_cli(capsys, "export", run)
    assert code == 0, err


def _special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "special"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_special_file_as_baseline_or_records_is_one_line(tmp_path, capsys, kind):
    run = write_run(tmp_path / "s" / "r1", [latency("a", "sknet50", SAMPLES)], MANIFEST)
    err = _one_line(capsys, "gate", "check", run, "--baseline", _special(tmp_path, kind))
    assert "not a regular file" in err
    (run / "records.jsonl").unlink()
    (run / "records.jsonl").symlink_to(tmp_path / "special")
    assert "not a regular file" in _one_line(capsys, "export", run)


def test_a_file_beyond_the_size_bound_is_one_line(tmp_path, capsys, monkeypatch):
    from harness import fileio

    monkeypatch.setattr(fileio, "MAX_RECORDS_BYTES", 100)
    run = write_run(tmp_path / "s" / "r1", [latency("a", "sknet50", SAMPLES)], MANIFEST)
    assert "larger than" in _one_line(capsys, "export", run)
    monkeypatch.setattr(fileio, "MAX_RECORDS_BYTES", 1 << 30)
    monkeypatch.setattr(fileio, "MAX_INPUT_BYTES", 100)
    monkeypatch.setattr(fileio.read_input, "__kwdefaults__", {"limit": 100})
    baseline = tmp_path / "b.json"
    baseline.write_text("[" + "1, " * 100 + "1]")
    assert "larger than" in _one_line(capsys, "gate", "check", run, "--baseline", baseline)


def test_records_have_a_bound_of_their_own_beyond_a_json_documents(tmp_path, monkeypatch):
    """A run's records.jsonl is read line by line, never whole: a 100,000-record run (about 310 MB) loads, past the
    bound of a JSON document read whole (a manifest, a baseline)."""
    from harness import fileio
    from harness.results import load_run

    run = write_run(tmp_path / "s" / "r1", [latency("a", "sknet50", SAMPLES)] * 3, MANIFEST)
    monkeypatch.setattr(fileio, "MAX_INPUT_BYTES", (run / "manifest.json").stat().st_size)
    monkeypatch.setattr(fileio.read_input, "__kwdefaults__", {"limit": fileio.MAX_INPUT_BYTES})
    assert (run / "records.jsonl").stat().st_size > fileio.MAX_INPUT_BYTES
    assert len(load_run(run).records) == 1  # three lines of one task: the last wins
    assert fileio.MAX_RECORDS_BYTES >= 1 << 30


@pytest.mark.parametrize("command", ["report", "export"])
def test_a_record_with_a_zero_sample_is_read_or_one_line(tmp_path, capsys, command):
    run = write_run(tmp_path / "s" / "r1", [latency("a", "sknet50", [0.0, *SAMPLES], check=False)], MANIFEST)
    code, out, err = run_cli(capsys, command, run, *(["--reports", tmp_path / "p"] if command == "report" else []))
    assert "internal error" not in err and (code == 0 or (code == 2 and len(err.strip().splitlines()) == 1)), err
