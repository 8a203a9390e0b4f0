"""Suite values are bounded at load, before a run dir exists; ``--resume`` of a path that is no run dir creates
nothing; text from a run dir (a lock holder's note, a label, an error message) prints as one line with control
characters escaped; a corrupt training checkpoint is named and set aside so the resume recovers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fake_records import MANIFEST, latency
from helpers import run_cli, write_run

from harness.errors import ResultsError, one_line, printable
from harness.results.store import HOLDER_FILE, LOCK_FILE, RunLock


def _suite(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "s", "models": ["resnext50"], "device": "cpu",
                                "latency": {"batch_sizes": [1]}}))
    return path


@pytest.mark.parametrize(("override", "key", "message"), [
    ("seed=-1", "seed", "greater than or equal to 0 (got -1)"),
    (f"seed={2**70}", "seed", "less than or equal to 4294967295"),
    ("seed=4294967296", "seed", "less than or equal to 4294967295 (got 4294967296)"),
    ("seed=true", "seed", "valid integer (got true)"),
    ("latency.rounds=1000000000", "latency.rounds", "less than or equal to 1000 (got 1000000000)"),
    ("latency.rounds=true", "latency.rounds", "valid integer (got true)"),
    ("latency.rounds=2.5", "latency.rounds", "valid integer (got 2.5)"),
    ("latency.warmup=1000000000000", "latency.warmup", "less than or equal to 1000 (got"),
    ("latency.min_time_s=.inf", "latency.min_time_s", "finite number"),
    ("latency.max_time_s=1e9", "latency.max_time_s", "less than or equal to 86400"),
    ("latency.min_samples=1000000000", "latency.min_samples", "less than or equal to 1000000"),
    ("latency.batch_sizes=[1000000]", "latency.batch_sizes.0", "less than or equal to 65536"),
    ("latency.input_size=[3,100000,2]", "latency.input_size.1", "less than or equal to 8192"),
    ("train={models: [resnext50], seeds: [-1]}", "train.seeds.0", "greater than or equal to 0"),
    ("train={models: [resnext50], epochs: 100000}", "train.epochs", "less than or equal to 10000"),
    ("train={models: [resnext50], lr: .nan}", "train.lr", "finite number"),
])
def test_unbounded_values_are_refused_before_a_run_dir_exists(tmp_path, capsys, override, key, message):
    code, out, err = run_cli(capsys, "run", _suite(tmp_path), "--set", override, "--out", tmp_path / "r",
                             "--reports", tmp_path / "p", "--no-progress")
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1, err
    assert f"key '{key}': " in err and message in err, err
    assert not (tmp_path / "r").exists() and not (tmp_path / "p").exists()


def test_resume_of_a_path_that_is_no_run_dir_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "results" / "s" / "typo"
    code, out, err = run_cli(capsys, "run", _suite(tmp_path), "--resume", missing, "--no-progress")
    assert code == 2 and out == []
    assert err.strip() == (f"error: --resume {missing}: no run dir there (no manifest.json); pass a run dir like "
                           "results/<suite>/<run_id>, as the stopped run printed it")
    assert not (tmp_path / "results").exists()


def test_a_lock_holders_note_prints_with_control_characters_escaped(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / HOLDER_FILE).write_text(json.dumps({"pid": 1, "host": "h\x1b[2J", "since": "now\r",
                                                   "argv": ["run", "x\ny", "\u202eevil"]}))
    from filelock import FileLock

    with FileLock(str(run_dir / LOCK_FILE)):
        with pytest.raises(ResultsError) as err:
            RunLock(run_dir, argv=["second"]).__enter__()
    message = str(err.value)
    assert "\x1b" not in message and "\n" not in message and "\u202e" not in message
    assert "process 1 on h\\x1b[2J since now\\r (run x\\ny \\u202eevil)" in message


def test_cli_errors_and_check_output_escape_control_characters(tmp_path, capsys):
    label = "a\x1b]0;pwned\x07"
    samples = [1.0, 1.1, 1.2, 1.0, 1.1, 1.05]
    run = write_run(tmp_path / "s" / "r", [{**latency("a", "sknet50", samples), "label": label}],
                    {**MANIFEST, "run_id": "r", "suite_name": "s"})
    code, out, err = run_cli(capsys, "gate", "check", run, "--baseline", run)
    text = "\n".join(out)
    assert code == 0 and "\x1b" not in text and "\x07" not in text and "a\\x1b]0;pwned\\x07" in text
    code, out, err = run_cli(capsys, "report", tmp_path / "no\x1bhere", "--reports", tmp_path / "p")
    assert code == 2 and "\x1b" not in err and "no\\x1bhere" in err and len(err.strip().splitlines()) == 1


def test_printable_keeps_ordinary_unicode():
    assert printable("≥ 5% — ✓ µs") == "≥ 5% — ✓ µs"
    assert printable("a\tb\x00") == "a\\tb\\x00"


def test_an_error_message_with_a_traceback_is_one_line():
    worker = ("Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
              '  File "x.py", line 1, in f\n    raise DatasetError(...)\n'
              "harness.errors.DatasetError: /data/n01/bad.JPEG: cannot decode the image (truncated)")
    assert one_line(worker) == ("Caught DatasetError in DataLoader worker process 0. harness.errors.DatasetError: "
                                "/data/n01/bad.JPEG: cannot decode the image (truncated)")
    assert one_line("two\nlines\x1b") == "two lines\\x1b"


def test_a_corrupt_training_checkpoint_is_named_and_set_aside(tmp_path, caplog):
    from harness.train.checkpoint import load_checkpoint
    from harness.train.config import TrainConfig

    path = tmp_path / "ckpt.pt"
    torch.save({"format": 1, "config": {}, "model": {}}, path)
    path.write_bytes(path.read_bytes()[:40])  # a copy cut short
    with caplog.at_level("WARNING"):
        assert load_checkpoint(path, TrainConfig(epochs=1)) is None
    assert not path.exists() and (tmp_path / "ckpt.pt.corrupt").is_file()
    assert f"checkpoint {path} cannot be read" in caplog.text and "moved to ckpt.pt.corrupt" in caplog.text
    torch.save(["not", "a", "checkpoint"], path)
    assert load_checkpoint(path, TrainConfig(epochs=1)) is None
    assert (tmp_path / "ckpt.pt.corrupt2").is_file() and not path.exists()


def test_an_old_multi_line_error_message_is_one_table_row_in_the_report(tmp_path, capsys):
    failed = {"task_id": "t", "kind": "latency", "label": "a", "status": "error",
              "error": {"type": "RuntimeError",
                        "message": "Caught X.\nTraceback (most recent call last):\n  f\nX: boom"}}
    run = write_run(tmp_path / "s" / "r", [failed], {**MANIFEST, "run_id": "r", "suite_name": "s"})
    code, out, err = run_cli(capsys, "report", run, "--reports", tmp_path / "p")
    assert code == 0, err
    rows = [line for line in Path(out[0]).read_text().splitlines() if "boom" in line]
    assert len(rows) == 1 and "RuntimeError: Caught X. X: boom" in rows[0]
