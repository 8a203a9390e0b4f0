"""No command writes over a run dir's own files (only the run's writer does), through a symlink either; a failed
write leaves an earlier output file as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_records import MANIFEST, latency
from helpers import run_cli, write_run

from harness.results import load_run

SAMPLES = [1.0, 1.1, 1.2, 1.0, 1.1, 1.05]


def _run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "results" / "s" / "r1", [latency("a", "sknet50", SAMPLES)],
                     {**MANIFEST, "suite_name": "s"})


def _refused(capsys, run: Path, *argv) -> str:
    files = {p: p.read_bytes() for p in run.iterdir()}
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1, (code, out, err)
    assert {p: p.read_bytes() for p in run.iterdir()} == files  # nothing written, appended or replaced
    assert len(load_run(run).records) == 1
    return err


@pytest.mark.parametrize("name", ["records.jsonl", "manifest.json", ".lock"])
@pytest.mark.parametrize("fmt", ["csv", "json", "pytest-benchmark"])
def test_export_over_a_runs_own_file_is_refused(tmp_path, capsys, fmt, name):
    run = _run(tmp_path)
    (run / ".lock").write_text("")
    err = _refused(capsys, run, "export", run, "--format", fmt, "-o", run / name)
    assert f"is a file of the run dir {run}" in err and "refusing to overwrite it" in err


@pytest.mark.parametrize("command", [["gate", "baseline"]])
def test_a_baseline_over_a_runs_records_is_refused(tmp_path, capsys, command):
    run = _run(tmp_path)
    err = _refused(capsys, run, *command, run, "-o", run / "records.jsonl")
    assert "the baseline file" in err and "is a file of the run dir" in err


def test_a_baseline_through_a_symlink_onto_a_runs_records_is_refused(tmp_path, capsys):
    run = _run(tmp_path)
    link = tmp_path / "baseline.json"
    link.symlink_to(run / "records.jsonl")
    _refused(capsys, run, "gate", "baseline", run, "-o", link)
    assert link.is_symlink()


def test_other_outputs_over_a_runs_records_are_refused(tmp_path, capsys):
    run = _run(tmp_path)
    _refused(capsys, run, "compare", run, run, "-o", run / "records.jsonl")
    _refused(capsys, run, "report", run, "-o", run / "manifest.json")
    _refused(capsys, run, "gate", "check", run, "--baseline", run, "--output", run / "records.jsonl")


def test_an_export_beside_the_records_is_allowed(tmp_path, capsys):
    run = _run(tmp_path)
    code, out, err = run_cli(capsys, "export", run, "-o", run / "latency.csv")
    assert code == 0, err
    assert (run / "latency.csv").read_text().startswith("run_id")


def test_a_failed_parquet_export_keeps_the_earlier_file(tmp_path, capsys, monkeypatch):
    pytest.importorskip("pyarrow")
    import pandas as pd

    from harness.results.store import RunData

    run = _run(tmp_path)
    out = tmp_path / "x.parquet"
    out.write_bytes(b"the earlier export")
    monkeypatch.setattr(RunData, "frame", lambda self, kind, by_round=False: pd.DataFrame({"a": [1, "x"]}))
    code, _, err = run_cli(capsys, "export", run, "--format", "parquet", "-o", out)
    assert code == 2 and "cannot write parquet" in err
    assert out.read_bytes() == b"the earlier export" and [p.name for p in tmp_path.iterdir() if p.is_file()] == [
        "x.parquet"]
