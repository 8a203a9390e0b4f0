"""``export``, ``compare`` and ``history`` end to end through the CLI: files written, stdout paths, exit codes and
one-line errors."""

from __future__ import annotations

import io
import json
import sys

import pandas as pd
import pytest
from fake_records import MANIFEST, complexity, latency
from helpers import run_cli, write_run

from harness.results import load_run


def _run(root, run_id: str, medians: dict[str, float], created: str):
    records = [complexity("resnext50", 4_000, 100), complexity("sknet50", 4_200, 130)]
    records += [latency(label, label, [m, m * 1.01, m * 0.99, m * 1.02]) for label, m in medians.items()]
    return write_run(root / "results" / "s" / run_id, records, {**MANIFEST, "run_id": run_id, "created_utc": created})


@pytest.fixture
def runs(tmp_path):
    return [_run(tmp_path, f"r{k}", {"resnext50": 10.0, "sknet50": 13.0 + k}, f"2026-01-0{k + 1}T00:00:00Z")
            for k in range(3)]


def test_export_csv_to_stdout_is_the_frame(capsys, runs):
    code, out, err = run_cli(capsys, "export", runs[0], runs[1])
    frame = pd.read_csv(io.StringIO("\n".join(out)))
    assert code == 0 and "4 rows of latency" in err
    assert list(frame["run_id"]) == ["r0", "r0", "r1", "r1"]
    expected = load_run(runs[1]).frame("latency")
    assert frame["p50_ms"].iloc[2:].tolist() == pytest.approx(expected["p50_ms"].tolist())


def test_export_json_and_csv_files(capsys, runs, tmp_path):
    code, out, _ = run_cli(capsys, "export", runs[0], "--kind", "complexity", "--format", "json",
                           "-o", tmp_path / "out" / "c.json")
    rows = json.loads((tmp_path / "out" / "c.json").read_text())
    assert code == 0 and out == [str(tmp_path / "out" / "c.json")]
    assert [r["label"] for r in rows] == ["resnext50", "sknet50"] and rows[1]["macs_ratio_plain"] == 1.05
    code, _, _ = run_cli(capsys, "export", *runs, "--kind", "modules", "-o", tmp_path / "m.csv")
    assert code == 0 and len(pd.read_csv(tmp_path / "m.csv")) == 3 * 2 * 3


def test_export_parquet_roundtrip(capsys, runs, tmp_path):
    pytest.importorskip("pyarrow")
    code, _, _ = run_cli(capsys, "export", *runs, "--format", "parquet", "-o", tmp_path / "l.parquet")
    frame = pd.read_parquet(tmp_path / "l.parquet")
    assert code == 0 and len(frame) == 6 and frame["n"].tolist() == [4] * 6


def test_parquet_without_pyarrow_is_a_one_line_hint(capsys, runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow → ImportError
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    code, _, err = run_cli(capsys, "export", runs[0], "--format", "parquet", "-o", tmp_path / "l.parquet")
    assert code == 2 and err.strip().splitlines() == [
        'error: --format parquet needs pyarrow: pip install -e ".[parquet]" (or pip install pyarrow), or use '
        "--format csv"]
    code, _, err = run_cli(capsys, "export", runs[0], "--format", "parquet")
    assert code == 2 and "give -o FILE.parquet" in err


def test_compare_and_history_print_their_paths(capsys, runs, tmp_path):
    code, out, _ = run_cli(capsys, "compare", runs[0], runs[2], "--reports", tmp_path / "reports")
    assert code == 0 and out == [str(tmp_path / "reports" / "compare" / "s" / "r0_vs_r2.md")]
    assert "## Overhead over the plain network, per run" in (tmp_path / out[0]).read_text()
    code, out, _ = run_cli(capsys, "history", tmp_path / "results" / "s", "--reports", tmp_path / "reports",
                           "--threshold", "3")
    assert code == 0 and out == [str(tmp_path / "reports" / "s" / "history-p50.md")]
    assert "more than 3% (--threshold)" in (tmp_path / out[0]).read_text()


def test_bad_inputs_are_one_line_errors(capsys, runs, tmp_path):
    code, _, err = run_cli(capsys, "compare", runs[0])
    assert code == 2 and err.strip() == "error: compare needs at least two run dirs (results/<suite>/<run_id>)"
    code, _, err = run_cli(capsys, "history", tmp_path / "nowhere")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no run dirs" in err
    code, _, err = run_cli(capsys, "export", tmp_path / "nowhere")
    assert code == 2 and "no manifest.json" in err


@pytest.mark.parametrize("command", ["report", "export", "compare", "history", "merge"])
def test_commands_that_read_runs_run_with_the_cycle_collector_paused(capsys, runs, tmp_path, monkeypatch, command):
    """A large run's records are a million live containers: every full pass of Python's cycle collector walks them
    all (2.4 s of a 25,000-record report, `benchmarks/report_scale.py`), and pausing it only while reading moves the
    cost to the first pass after. A command that reads runs and ends pauses it for the whole command (nothing it
    reads holds a cycle) and turns it back on after, an error included; `run` does not (it builds and frees models)."""
    import gc

    from harness.results import store

    seen = []
    parse = store.parse_record
    monkeypatch.setattr(store, "parse_record", lambda record, where: (seen.append(gc.isenabled()), parse(
        record, where=where))[1])
    reports = ["--reports", tmp_path / "reports"]
    args = {"report": [runs[0], *reports], "export": [runs[0]], "compare": [runs[0], runs[1], *reports],
            "history": [runs[0].parent, *reports], "merge": [runs[0], runs[1], "--out", tmp_path, *reports]}[command]
    code, _, err = run_cli(capsys, command, *args)
    assert code == 0 and gc.isenabled() and seen and not any(seen), err
    seen.clear()
    code, _, err = run_cli(capsys, command, tmp_path / "missing")
    assert code == 2 and gc.isenabled()


def test_a_process_that_ends_with_its_command_freezes_what_it_read_instead_of_walking_it_again(runs, tmp_path):
    """``python -m harness report`` (argv None: the process's own command line) freezes what the command allocated
    before turning the collector back on; a caller in the same process (argv given) gets it back as it was."""
    import gc

    from harness.cli import _collector_paused

    frozen = gc.get_freeze_count()
    with _collector_paused("report", process_ends=False):
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    with _collector_paused("run", process_ends=True):
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
    try:
        with _collector_paused("export", process_ends=True):
            assert not gc.isenabled()
        assert gc.isenabled() and gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
