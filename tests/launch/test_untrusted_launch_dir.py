"""A launch dir is untrusted input, like a run dir: ``merge`` of one whose ``launch.json`` was edited never locks,
reads or prints anything outside it, passes no escape bytes to the terminal, and a malformed ``launch.json`` is one
line (exit 2), never an internal error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_records import MANIFEST, complexity
from helpers import run_cli, write_run


def _launch_dir(tmp_path: Path, **entry) -> Path:
    """A launch dir of one shard that wrote a run dir and did not end (no done.json), as the launcher leaves it."""
    launch_dir = tmp_path / "r" / "s" / "launch-x"
    write_run(launch_dir / "shard-1of1" / "s" / "20260101T000000Z-aaaa", [complexity("sknet50", 10, 5)],
              {**MANIFEST, "run_id": "20260101T000000Z-aaaa", "suite_name": "s"})
    (launch_dir / "logs").mkdir()
    (launch_dir / "logs" / "7_0_log.err").write_text("Traceback\n\x1b[31mRuntimeError: boom\x1b[0m\n")
    shard = {"name": "1/1", "folder": "shard-1of1", "state": "failed", "reason": "killed",
             "attempts": [{"job_id": "7", "stdout": str(launch_dir / "logs" / "7_0_log.out"),
                           "stderr": str(launch_dir / "logs" / "7_0_log.err")}], **entry}
    state = {"run_id": "x", "suite_name": "s", "executor": "local", "shards": [shard]}
    (launch_dir / "launch.json").write_text(json.dumps(state))
    return launch_dir


def _merge(capsys, tmp_path: Path, launch_dir: Path):
    return run_cli(capsys, "merge", launch_dir, "--out", tmp_path / "m", "--reports", tmp_path / "p")


def test_a_shards_log_tail_is_printable_text(tmp_path, capsys):
    launch_dir = _launch_dir(tmp_path, reason="killed\x1b]0;owned\x07\nerror: forged")
    code, out, err = _merge(capsys, tmp_path, launch_dir)
    assert code == 1 and "\x1b" not in err and "\x07" not in err
    assert "RuntimeError: boom" in err and "\\x1b[31m" in err
    assert not any(line.startswith("error: forged") for line in err.splitlines())  # the newline stays escaped
    merged = json.loads((Path(out[0]) / "manifest.json").read_text())
    assert "\x1b" not in json.dumps(merged["incomplete"], ensure_ascii=False)


def test_a_log_path_outside_the_launch_dir_is_never_read(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n")
    launch_dir = _launch_dir(tmp_path, attempts=[{"job_id": "7", "stderr": str(secret), "stdout": "../../secret.txt"}])
    code, out, err = _merge(capsys, tmp_path, launch_dir)
    assert code == 1 and "TOP SECRET" not in err
    assert "TOP SECRET" not in (Path(out[0]) / "manifest.json").read_text()


@pytest.mark.parametrize("folder", ["../../../outside", "/tmp"])
def test_a_shard_folder_outside_the_launch_dir_is_refused_before_anything_is_locked(tmp_path, capsys, folder):
    outside = tmp_path / "outside"
    write_run(outside / "s" / "20260101T000000Z-bbbb", [complexity("sknet50", 10, 5)],
              {**MANIFEST, "run_id": "20260101T000000Z-bbbb", "suite_name": "s"})
    launch_dir = _launch_dir(tmp_path, folder=folder if folder == "/tmp" else "../../../outside")
    code, out, err = _merge(capsys, tmp_path, launch_dir)
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1, (code, out, err)
    assert "lies outside the launch dir" in err
    assert not list(outside.rglob(".lock")) and not (tmp_path / "m").exists()


@pytest.mark.parametrize("edit", [{"folder": None}, {"name": "1/1\x1b[2J"}, {"attempts": "x"}, {"folder": 3}])
def test_a_malformed_launch_json_is_one_line(tmp_path, capsys, edit):
    launch_dir = _launch_dir(tmp_path)
    state = json.loads((launch_dir / "launch.json").read_text())
    for key, value in edit.items():
        if value is None:
            del state["shards"][0][key]
        else:
            state["shards"][0][key] = value
    (launch_dir / "launch.json").write_text(json.dumps(state))
    code, out, err = _merge(capsys, tmp_path, launch_dir)
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1, (code, out, err)
    assert "launch.json: bad field 'shards.0." in err and "\x1b" not in err
