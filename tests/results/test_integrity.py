"""Nothing measured is lost: torn record lines, full disks, concurrent resumes, file modes."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import plugin_model_name, run_cli

from harness.errors import ResultsError
from harness.fileio import write_text_atomic
from harness.results import RecordWriter, create_run_dir, load_run, read_records, write_manifest
from harness.results.store import RECORDS, TORN_SUFFIX


def _run_dir(tmp_path: Path) -> Path:
    run_dir = create_run_dir(tmp_path, "s")
    write_manifest(run_dir, {"suite_name": "s"})
    return run_dir


def _rec(task_id: str, **extra) -> dict:
    return {"task_id": task_id, "kind": "peak", "status": "ok", "dtype": "fp32", "peak_gmacs_per_s": 1.0, **extra}


# ------------------------------------------------------------------------------------------ torn lines


def test_appending_after_a_torn_tail_sets_it_aside_and_loses_nothing(tmp_path):
    run_dir = _run_dir(tmp_path)
    with RecordWriter(run_dir) as writer:
        writer.write(_rec("a"))
    torn = b'{"task_id": "b", "kind": "no'
    with (run_dir / RECORDS).open("ab") as handle:
        handle.write(torn)  # a crash (or a full disk) mid-line
    with RecordWriter(run_dir) as writer:  # a resume opens the file for append
        writer.write(_rec("c"))
        writer.write(_rec("d"))
    assert [r.task_id for r in load_run(run_dir).records] == ["a", "c", "d"]
    side = run_dir / (RECORDS + TORN_SUFFIX)
    assert side.read_bytes() == torn  # kept, never deleted
    assert (run_dir / RECORDS).read_bytes().endswith(b"\n")
    with RecordWriter(run_dir) as writer:  # a second resume finds a clean file: nothing more set aside
        writer.write(_rec("e"))
    assert side.read_bytes() == torn
    assert [r.task_id for r in read_records(run_dir / RECORDS)] == ["a", "c", "d", "e"]


def test_a_second_torn_tail_is_appended_to_the_side_file(tmp_path):
    run_dir = _run_dir(tmp_path)
    for piece in (b'{"task_id": "x1', b'{"task_id": "x2'):
        with (run_dir / RECORDS).open("ab") as handle:
            handle.write(piece)
        RecordWriter(run_dir).close()
    assert (run_dir / (RECORDS + TORN_SUFFIX)).read_bytes() == b'{"task_id": "x1\n{"task_id": "x2'


def test_a_complete_record_without_its_newline_is_kept_by_reader_and_writer_alike(tmp_path):
    run_dir = _run_dir(tmp_path)
    (run_dir / RECORDS).write_text(json.dumps(_rec("a")) + "\n" + json.dumps(_rec("b")))  # no final newline
    assert [r.task_id for r in load_run(run_dir).records] == ["a", "b"]
    with RecordWriter(run_dir) as writer:
        writer.write(_rec("c"))
    assert [r.task_id for r in load_run(run_dir).records] == ["a", "b", "c"]
    assert not (run_dir / (RECORDS + TORN_SUFFIX)).exists()


def test_a_torn_tail_is_skipped_by_readers_with_a_warning(tmp_path, caplog):
    run_dir = _run_dir(tmp_path)
    (run_dir / RECORDS).write_text(json.dumps(_rec("a")) + "\n" + '{"task_id": "b", "ki')
    assert [r.task_id for r in load_run(run_dir).records] == ["a"]
    assert "unterminated last line" in caplog.text


@pytest.mark.parametrize("line", ['[1, 2]', '"text"', "3", "null"])
def test_a_line_that_is_not_an_object_is_a_results_error(tmp_path, line):
    run_dir = _run_dir(tmp_path)
    (run_dir / RECORDS).write_text(line + "\n" + json.dumps(_rec("a")) + "\n")
    with pytest.raises(ResultsError, match=rf"{RECORDS}:1: a record must be a JSON object"):
        load_run(run_dir)


def test_a_manifest_that_is_not_an_object_is_a_results_error(tmp_path):
    run_dir = create_run_dir(tmp_path, "s")
    (run_dir / "manifest.json").write_text("[1, 2, 3]")
    with pytest.raises(ResultsError, match="manifest.json: a manifest must be a JSON object"):
        load_run(run_dir)


# ------------------------------------------------------------------------------------------ full disk


class _FullDisk:
    """Lets ``allowed`` bytes through, then fails like a full disk (writing part of the line first)."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed

    def install(self, monkeypatch) -> None:
        real_write = os.write
        state = self

        def write(fd: int, data: bytes) -> int:
            if state.allowed <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = real_write(fd, data[: state.allowed])
            state.allowed -= n
            return n

        monkeypatch.setattr("harness.results.store.os.write", write)


def _suite(tmp_path: Path, plugin: Path, n_models: int) -> Path:
    name = plugin_model_name(plugin)
    models = [{"name": name, "label": f"m{i}", "options": {"channels": 4 + i}} for i in range(n_models)]
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "s", "imports": [str(plugin)], "models": models, "complexity": {}}))
    return path


def test_a_full_disk_ends_the_run_with_one_line_and_resume_completes_it(tmp_path, plugin_file, capsys,
                                                                        monkeypatch):
    suite = _suite(tmp_path, plugin_file, 4)
    _FullDisk(allowed=1500).install(monkeypatch)  # room for about two records, then a torn third
    code, out, err = run_cli(capsys, "run", suite, "--out", tmp_path / "r", "--reports", tmp_path / "p",
                             "--no-progress")
    assert code == 2 and out == []
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0]
    run_dir = next((tmp_path / "r" / "s").iterdir())
    assert f"--resume {run_dir}" in err
    monkeypatch.undo()
    code, out, err = run_cli(capsys, "run", suite, "--resume", run_dir, "--reports", tmp_path / "p", "--no-progress")
    assert code == 0, err
    records = load_run(run_dir).records
    assert sorted(r.label for r in records) == ["m0", "m1", "m2", "m3"]
    ids = [json.loads(x)["task_id"] for x in (run_dir / RECORDS).read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 4


# ---------------------------------------------------------------------------------- concurrent resumes


def test_a_run_dir_in_use_is_refused_with_who_holds_it(tmp_path, plugin_file, capsys):
    suite = _suite(tmp_path, plugin_file, 1)
    code, out, _ = run_cli(capsys, "run", suite, "--out", tmp_path / "r", "--reports", tmp_path / "p",
                           "--no-progress")
    run_dir = Path(out[0])
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from harness.results.store import RunLock
            with RunLock({str(run_dir)!r}, argv=["holder"]):
                print("locked", flush=True)
                time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, out, err = run_cli(capsys, "run", suite, "--resume", run_dir, "--no-progress")
        assert code == 2 and out == []
        (line,) = err.strip().splitlines()
        assert f"{run_dir} is in use by process {holder.pid}" in line and "holder" in line
    finally:
        holder.kill()
        holder.wait()
    code, _, err = run_cli(capsys, "run", suite, "--resume", run_dir, "--reports", tmp_path / "p", "--no-progress")
    assert code == 0, err  # the lock died with its holder


@pytest.mark.parametrize(("flags", "mutate", "what"), [
    (["--shard", "1/2"], None, "shard"),
    (["--data-dir", "/elsewhere"], None, "data dir"),
    ([], lambda m: m.update(device="cuda", run_options={**m["run_options"], "device": "cuda"}), "device"),
    ([], lambda m: m["environment"]["cpu"].update(torch_threads=64), "torch threads"),
    ([], lambda m: m["environment"].update(torch="1.0.0"), "torch"),
])
def test_resume_with_other_results_changing_options_is_refused(tmp_path, plugin_file, capsys, flags, mutate, what):
    suite = _suite(tmp_path, plugin_file, 2)
    code, out, _ = run_cli(capsys, "run", suite, "--out", tmp_path / "r", "--reports", tmp_path / "p",
                           "--no-progress", "--device", "cpu")
    run_dir = Path(out[0])
    if mutate is not None:  # a run started elsewhere (another device, machine or torch)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        mutate(manifest)
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
    before = (run_dir / RECORDS).read_bytes()
    code, out, err = run_cli(capsys, "run", suite, "--resume", run_dir, *flags, "--no-progress")
    assert code == 2 and out == []
    (line,) = err.strip().splitlines()
    assert f"--resume {run_dir}: the {what} differs from the one this run was started with" in line
    assert (run_dir / RECORDS).read_bytes() == before


# ------------------------------------------------------------------------------------------ file modes


def test_files_written_atomically_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "report.md", "x\n")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)
        other = write_text_atomic(tmp_path / "private.md", "x\n")
        assert stat.S_IMODE(other.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_rewriting_a_file_keeps_its_mode(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text("{}")
    path.chmod(0o640)
    write_text_atomic(path, "{}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../../etc", "x" * 300])
def test_merge_refuses_suite_names_from_manifests_that_are_paths(tmp_path, name):
    from harness.results import merge_runs

    run_dir = _run_dir(tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "suite_name": name}))
    out = tmp_path / "merged"
    with pytest.raises(ResultsError, match="is not a folder name"):
        merge_runs([run_dir], out_root=out)
    assert not out.exists() or not any(out.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged", "s"] or not (tmp_path / "merged").exists()


def test_a_table_is_written_between_its_markers_and_a_file_without_them_is_one_line(tmp_path):
    """The benchmark scripts keep their tables in the docs between two marker lines (one writer for all of them)."""
    from harness.errors import ConfigError
    from harness.fileio import write_between_markers

    markers = ("<!-- t:start -->", "<!-- t:end -->")
    doc = tmp_path / "doc.md"
    doc.write_text("# title\n\n<!-- t:start -->\nold\ntable\n<!-- t:end -->\n\ntail\n")
    write_between_markers(doc, markers, "| a |\n|--|\n")
    assert doc.read_text() == "# title\n\n<!-- t:start -->\n| a |\n|--|\n<!-- t:end -->\n\ntail\n"
    write_between_markers(doc, markers, "| a |\n|--|")  # the same with or without its last newline
    assert doc.read_text() == "# title\n\n<!-- t:start -->\n| a |\n|--|\n<!-- t:end -->\n\ntail\n"
    for content, message in (("no markers\n", "no <!-- t:start --> … <!-- t:end --> markers"),
                             ("<!-- t:end -->\n<!-- t:start -->\n", "no <!-- t:start --> … <!-- t:end --> markers")):
        doc.write_text(content)
        with pytest.raises(ConfigError, match=message) as info:
            write_between_markers(doc, markers, "x")
        assert "\n" not in str(info.value) and doc.read_text() == content  # nothing written
    with pytest.raises(ConfigError, match="cannot read it"):
        write_between_markers(tmp_path / "missing.md", markers, "x")
