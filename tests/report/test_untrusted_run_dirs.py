"""A run dir is untrusted input (shared between machines, downloaded, merged): names from its manifest never take
``compare``, ``history``, ``report`` or ``merge`` outside their output root, and when there is nothing to compare
they say so in one line (exit 2) instead of rendering an empty report."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_records import MANIFEST, complexity, latency
from helpers import run_cli, write_run

SAMPLES = [1.0, 1.1, 1.2, 1.0, 1.1, 1.05]
ESCAPES = ["../../../../x", "/tmp/harness_escape_x", "a/b", "..", ".hidden", "", ["s"], 7, "x" * 101, "a\nb"]


def _run(root: Path, name: str, records: list[dict] | None = None, **manifest) -> Path:
    records = [latency("a", "sknet50", SAMPLES), complexity("sknet50", 10, 5)] if records is None else records
    return write_run(root / "results" / "s" / name, records, {**MANIFEST, "run_id": name, "suite_name": "s",
                                                               **manifest})


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _one_line_error(capsys, *argv) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1, (code, out, err)
    return err.strip()


@pytest.mark.parametrize("field", ["suite_name", "run_id"])
@pytest.mark.parametrize("name", ESCAPES, ids=repr)
def test_compare_never_writes_outside_reports(tmp_path, capsys, field, name):
    one = _run(tmp_path, "one", **{field: name})
    two = _run(tmp_path, "two")
    reports = tmp_path / "deep" / "er" / "reports"
    before = _files(tmp_path)
    err = _one_line_error(capsys, "compare", one, two, "--reports", reports)
    if isinstance(name, str):
        assert err.startswith(f"error: {one / 'manifest.json'}: {field}: {name!r}"[:60])
        assert "is not a folder name" in err and "refusing to write outside the output folder" in err
    else:  # not even a string: the manifest's type check names it
        assert err.startswith(f"error: {one / 'manifest.json'}: bad field '{field}': input should be a valid string")
    assert _files(tmp_path) == before and not Path("/tmp/harness_escape_x").exists()


@pytest.mark.parametrize("name", ESCAPES[:5], ids=repr)
def test_history_never_writes_outside_reports(tmp_path, capsys, name):
    _run(tmp_path, "one", suite_name=name)
    _run(tmp_path, "two", suite_name=name)
    reports = tmp_path / "deep" / "er" / "reports"
    before = _files(tmp_path)
    err = _one_line_error(capsys, "history", tmp_path / "results" / "s", "--reports", reports)
    assert "manifest.json: suite_name" in err and "is not a folder name" in err
    assert _files(tmp_path) == before


def test_report_of_a_dotted_run_dir_path_stays_under_reports(tmp_path, capsys):
    run = _run(tmp_path, "one")
    reports = tmp_path / "reports"
    code, out, err = run_cli(capsys, "report", run / ".." / "one", "--reports", reports)
    assert code == 0, err
    assert Path(out[0]) == reports / "s" / "one.md" and Path(out[0]).is_file()


@pytest.mark.parametrize("name", ["../../x", ["s"], "/abs"], ids=repr)
def test_merge_refuses_a_manifest_suite_name_that_is_not_a_folder_name(tmp_path, capsys, name):
    one, two = _run(tmp_path, "one", suite_name=name), _run(tmp_path, "two", suite_name=name)
    err = _one_line_error(capsys, "merge", one, two, "--out", tmp_path / "m", "--reports", tmp_path / "p")
    assert ("the suite name: " in err and "is not a folder name" in err) or "bad field 'suite_name'" in err
    assert not (tmp_path / "m").exists()


def test_compare_of_runs_with_nothing_ok_says_so(tmp_path, capsys):
    failed = {"task_id": "t", "kind": "latency", "status": "error", "error": {"type": "E", "message": "m"}}
    one, two = _run(tmp_path, "one", [failed]), _run(tmp_path, "two", [])
    err = _one_line_error(capsys, "compare", one, two, "--reports", tmp_path / "p")
    assert err == ("error: compare: none of the 2 runs holds an ok complexity, latency or throughput record; nothing "
                   "to compare (`python -m harness report RUN_DIR` lists each run's problems)")
    assert not (tmp_path / "p").exists()


def test_compare_with_no_shared_model_does_not_claim_all_0_identical(tmp_path, capsys):
    one = _run(tmp_path, "one", [complexity("sknet50", 10, 5)])
    two = _run(tmp_path, "two", [complexity("resnext50", 10, 5)])
    code, out, err = run_cli(capsys, "compare", one, two, "--reports", tmp_path / "p")
    text = Path(out[0]).read_text()
    assert code == 0 and "for all 0 models" not in text
    assert "No model's complexity was measured by more than one run: nothing to check." in text


def test_history_with_nothing_to_show_says_so(tmp_path, capsys):
    _run(tmp_path, "one", [complexity("sknet50", 10, 5)])
    err = _one_line_error(capsys, "history", tmp_path / "results" / "s", "--reports", tmp_path / "p")
    assert err == (f"error: {tmp_path / 'results' / 's'}: none of its 1 runs holds an ok latency record; nothing to "
                   "show for --metric p50")


@pytest.mark.parametrize("value", ["inf", "--threshold=-inf", "nan", "0", "--threshold=-3"])
def test_history_threshold_must_be_finite_and_positive(tmp_path, capsys, value):
    _run(tmp_path, "one")
    flag = [value] if value.startswith("--") else ["--threshold", value]
    err = _one_line_error(capsys, "history", tmp_path / "results" / "s", *flag, "--reports", tmp_path / "p")
    assert err.startswith("error: --threshold must be a finite number > 0 (got ")
