"""Bad input through the CLI: one clear line on stderr (what, where, how to fix) and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli, write_run


def _suite(tmp_path: Path, models: list, imports: list[str] | None = None) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "s", "imports": imports or [], "models": models, "complexity": {}}))
    return path


def _error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line]


def _plugin(tmp_path: Path, source: str, name: str = "bad_plugin.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


@pytest.mark.parametrize(("source", "expected"), [
    ("raise RuntimeError('plugin exploded')\n", "plugin {path}: raised RuntimeError at import: plugin exploded"),
    ("def broken(:\n    pass\n", "plugin {path}: syntax error at line 1"),
    ("import not_a_real_package_xyz\n", "plugin {path}: needs the module 'not_a_real_package_xyz', which is not "
                                        "installed"),
    ("import sys\nsys.exit(4)\n", "plugin {path}: called sys.exit(4) at import"),
    ("from torch import nn\nfrom harness import register_model\n\n@register_model\n"
     "def resnext50():\n    return nn.Identity()\n",
     "plugin {path}: its resnext50 registers model 'resnext50', which is already registered by "
     "harness.models.resnext.resnext50"),
])
def test_a_broken_plugin_is_one_line_naming_it(tmp_path, capsys, source, expected):
    plugin = _plugin(tmp_path, source, name=f"p{abs(hash(source)) % 10**6}.py")
    code, out, err = run_cli(capsys, "run", _suite(tmp_path, ["sknet50"]), "--import", plugin, "--out",
                             tmp_path / "r")
    assert code == 2 and out == [] and not (tmp_path / "r").exists()
    (line,) = _error_lines(err)
    assert line.startswith("error: " + expected.format(path=plugin)), line


@pytest.mark.parametrize(("models", "fragment"), [
    (["timm:"], "write one timm model name after 'timm:'"),
    (["timm:*sk*"], "write one timm model name after 'timm:'"),
])
def test_timm_prefix_alone_or_a_pattern_is_refused_before_anything_runs(tmp_path, capsys, models, fragment):
    code, out, err = run_cli(capsys, "run", _suite(tmp_path, models), "--out", tmp_path / "r")
    assert code == 2 and out == [] and not (tmp_path / "r").exists()
    (line,) = _error_lines(err)
    assert "key 'models[0]'" in line and fragment in line


@pytest.mark.parametrize("value", ["", ",", " , ,"])
def test_empty_models_flag_is_an_error_not_an_empty_run(tmp_path, capsys, value):
    code, out, err = run_cli(capsys, "run", _suite(tmp_path, ["sknet50"]), "--models", value, "--out", tmp_path / "r")
    assert code == 2 and out == [] and not (tmp_path / "r").exists()
    (line,) = _error_lines(err)
    assert "--models" in line and "names no model" in line


def test_a_wrong_option_type_in_a_suite_is_refused_before_anything_runs(tmp_path, capsys):
    suite = _suite(tmp_path, [{"name": "sknet29", "options": {"attention": "maybe"}}])
    code, out, err = run_cli(capsys, "run", suite, "--out", tmp_path / "r")
    assert code == 2 and out == [] and not (tmp_path / "r").exists()
    (line,) = _error_lines(err)
    assert "key 'models[0]'" in line and "option 'attention' expects bool, got 'maybe'" in line


def test_argparse_errors_are_one_usage_line_and_one_error_line(capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, "run")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert _error_lines(err) == ["usage: python -m harness run SUITE [options]  (--help for all)",
                                 "python -m harness run: error: the following arguments are required: suite"]
    with pytest.raises(SystemExit):
        run_cli(capsys, "gate", "check", "x", "--baseline", "y", "--threshold", "lots")
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 2 and "argument --threshold: invalid float value: 'lots'" in lines[1]
    with pytest.raises(SystemExit):
        run_cli(capsys, "frobnicate")
    lines = _error_lines(capsys.readouterr().err)
    assert lines[0] == "usage: python -m harness COMMAND [options]  (--help for all)" and len(lines) == 2


def test_output_paths_that_cannot_be_written_are_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    suite = _suite(tmp_path, ["resnext29_16x32d"])
    for args in (["run", suite, "--out", blocker], ["run", suite, "--out", tmp_path / ("x" * 300)]):
        code, out, err = run_cli(capsys, *args)
        assert code == 2 and out == [], err
        (line,) = _error_lines(err)
        assert line.startswith("error: cannot create the run dir") and "pass --out DIR" in line
    run_dir = write_run(tmp_path / "results" / "s" / "r1", [])
    code, out, err = run_cli(capsys, "report", run_dir, "--reports", blocker)
    assert code == 2 and out == []
    (line,) = _error_lines(err)
    assert str(blocker) in line and "Not a directory" in line
    code, out, err = run_cli(capsys, "make-fake-cifar", blocker / "data", "--n-train", "10", "--n-test", "10")
    assert code == 2 and len(_error_lines(err)) == 1


@pytest.mark.parametrize(("record", "fragment"), [
    ({"kind": "latency", "samples_ms": "fast"}, "samples_ms"),
    ({"kind": "complexity", "params": "many", "macs": 1, "input_size": [3, 8, 8]}, "params"),
    ({"kind": "throughput", "samples_ms": [1.0], "images": 8, "loop_samples_s": None}, "loop_samples_s"),
    ({"kind": "train", "top1_err": 5.0, "curve": "up", "dataset": "cifar10", "train_time_s": 1.0}, "curve"),
    ({"kind": "latency", "status": "error"}, "error"),
])
def test_records_of_the_wrong_shape_are_one_line_naming_file_line_and_field(tmp_path, capsys, record, fragment):
    base = {"task_id": "t", "status": "ok", "model": "m", "label": "m", "options": {}, "batch_size": 1,
            "device": "cpu", "dtype": "fp32"}
    run_dir = write_run(tmp_path / "results" / "s" / "r1", [{**base, **record}])
    for command in (["report", run_dir, "--reports", tmp_path / "p"],
                    ["gate", "check", run_dir, "--baseline", run_dir]):
        code, out, err = run_cli(capsys, *command)
        assert code == 2 and out == [], err
        (line,) = _error_lines(err)
        assert "records.jsonl:1" in line and fragment in line, line
