"""End to end through the CLI on small plugin models (fast, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import plugin_model_name
from helpers import run_cli as _run

from harness.results import load_run


def _suite(tmp_path: Path, plugin: Path, models: list, **extra) -> Path:
    suite = {"name": "e2e", "imports": [str(plugin)], "models": models, "complexity": {}, **extra}
    path = tmp_path / "e2e.yaml"
    path.write_text(json.dumps(suite))
    return path


def test_run_writes_manifest_records_and_report(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    models = [name, {"name": name, "label": "wide", "options": {"channels": 16}}]
    suite = _suite(tmp_path, plugin_file, models)
    code, out, _ = _run(capsys, "run", str(suite), "--out", str(tmp_path / "res"), "--reports",
                        str(tmp_path / "rep"), "--no-progress")
    assert code == 0
    run_dir, report = Path(out[0]), Path(out[1])
    assert run_dir.parent == tmp_path / "res" / "e2e" and report == tmp_path / "rep" / "e2e" / f"{run_dir.name}.md"
    run = load_run(run_dir)
    assert run.manifest["suite"]["name"] == "e2e" and "environment" in run.manifest and "git" in run.manifest
    recs = {r.label: r for r in run.records}
    # conv 3→8 (3×3) + fc 8→10 with biases; the wide one has 16 channels
    assert recs[name].params == 3 * 8 * 9 + 8 + 8 * 10 + 10
    assert recs["wide"].params == 3 * 16 * 9 + 16 + 16 * 10 + 10
    assert recs[name].macs == 16 * 16 * 8 * 27 + 8 * 16 * 16 + 80  # conv + adaptive pool + fc
    assert all(isinstance(r.macs, int) and r.status == "ok" for r in run.records)
    text = report.read_text()
    assert "Models without a paper row" in text and "| wide |" in text
    assert (report.parent / f"{run_dir.name}_complexity.png").is_file()


def test_unknown_model_or_option_in_a_suite_is_one_line_and_exit_2(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    suite = _suite(tmp_path, plugin_file, [name, "sknet5"])
    code, out, err = _run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 2 and out == [] and not (tmp_path / "r").exists()
    assert err.strip().splitlines() == [
        f"error: {suite}: key 'models[1]': unknown model 'sknet5'; did you mean sknet50, sknet29, sknet26? "
        "(`python -m harness list` shows all; prefix 'timm:' for timm models)"]
    suite = _suite(tmp_path, plugin_file, [{"name": name, "options": {"chanels": 4}}])
    code, _, err = _run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 2
    expected = (f"error: {suite}: key 'models[0]': model {name!r} has no option 'chanels' (did you mean 'channels'?); "
                "valid options: channels, num_classes, repeat")
    assert err.strip() == expected


def test_bad_plugin_is_one_line_and_exit_2(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels: [sknet50]\ncomplexity: {}\n")
    code, _, err = _run(capsys, "run", str(suite), "--import", str(tmp_path / "missing.py"))
    assert code == 2 and err.strip().startswith("error: plugin file") and "not found" in err


def test_failing_task_is_recorded_and_suite_continues(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    # options are valid; the builder itself fails (channels must be positive) → an error record
    suite = _suite(tmp_path, plugin_file, [{"name": name, "label": "bad", "options": {"channels": 0}}, name])
    code, out, err = _run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--reports", str(tmp_path / "p"),
                          "--no-progress")
    assert code == 0
    run = load_run(Path(out[0]))
    status = {r.label: r.status for r in run.records}
    assert status == {"bad": "error", name: "ok"}
    bad = next(r for r in run.records if r.label == "bad")
    assert bad.error.type in {"RuntimeError", "ValueError"} and bad.error.message
    assert "Errors and skipped tasks" in Path(out[1]).read_text()
    code, out, err = _run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--fail-fast", "--no-progress")
    # a failed task is exit 1 (2 is for bad input), and the message says how to go on
    assert code == 1 and out == [] and "--fail-fast" in err
    stopped = next(p for p in (tmp_path / "r" / "e2e").iterdir() if str(p) != str(run.path))
    assert f"records so far are kept in {stopped}; resume with: python -m harness run {suite} --fail-fast " \
           f"--no-progress --resume {stopped}" in err


def test_resume_runs_only_missing_tasks_without_duplicates(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    suite = _suite(tmp_path, plugin_file, [name, {"name": name, "label": "b", "options": {"repeat": 2}}])
    _, out, _ = _run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--reports", str(tmp_path / "p"),
                     "--no-progress")
    run_dir = Path(out[0])
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    (run_dir / "records.jsonl").write_text(lines[0] + "\n")  # as if killed after the first task
    code, out2, _ = _run(capsys, "run", str(suite), "--resume", str(run_dir), "--reports", str(tmp_path / "p"),
                         "--no-progress")
    assert code == 0 and Path(out2[0]) == run_dir
    ids = [json.loads(x)["task_id"] for x in (run_dir / "records.jsonl").read_text().splitlines()]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_resume_with_a_different_suite_is_refused(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    suite = _suite(tmp_path, plugin_file, [name])
    _, out, _ = _run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--reports", str(tmp_path / "p"),
                     "--no-progress")
    other = _suite(tmp_path, plugin_file, [{"name": name, "label": "x", "options": {"repeat": 3}}])
    code, _, err = _run(capsys, "run", str(other), "--resume", out[0], "--no-progress")
    assert code == 2 and "the suite differs" in err


def test_bad_suite_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodels: [sknet50]\ncomplexity: {input_sise: [3, 32, 32]}\n")
    code, out, err = _run(capsys, "run", str(path), "--out", str(tmp_path / "r"))
    assert code == 2 and out == []
    expected = f"error: {path}: unknown key 'complexity.input_sise'; did you mean 'input_size'?"
    assert err.strip().splitlines() == [expected]
    assert not (tmp_path / "r").exists()


def test_cli_import_flag_and_models_override(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels: [sknet50]\ncomplexity: {}\n")
    code, out, _ = _run(capsys, "run", str(suite), "--import", str(plugin_file), "--models", name[:-1] + "?",
                        "--out", str(tmp_path / "r"), "--reports", str(tmp_path / "p"), "--no-progress")
    assert code == 0
    assert [r.model for r in load_run(Path(out[0])).records] == [name]


def test_list_and_report_commands(tmp_path, capsys):
    code, out, _ = _run(capsys, "list", "sknet*")
    assert code == 0 and [line.split()[0] for line in out] == ["sknet101", "sknet26", "sknet29", "sknet50"]
    assert "sknet" in out[0] and "[P Table 2]" in out[0]
    code, _, err = _run(capsys, "list", "zz*")
    assert code == 2 and "no model matches 'zz*'" in err
    code, _, err = _run(capsys, "report", str(tmp_path))
    assert code == 2 and "no manifest.json" in err


@pytest.mark.slow
def test_default_suite_report_has_all_table2_rows_within_tolerance(tmp_path, capsys):
    code, out, _ = _run(capsys, "run", "suites/sknet_vs_senet.yaml", "--out", str(tmp_path / "r"), "--reports",
                        str(tmp_path / "p"), "--no-progress", "--device", "cpu")
    assert code == 0
    text = Path(out[1]).read_text()
    table2 = text.split("### P Table 2")[1].split("###")[0]
    for row in ("ResNeXt-50", "SENet-50", "SKNet-50", "ResNeXt-101", "SENet-101", "SKNet-101"):
        line = next(x for x in table2.splitlines() if x.startswith(f"| {row} |"))
        assert line.endswith("✓ |"), line


def _raising_plugin(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "raising_plugin.py"
    path.write_text(
        "import sys\nfrom torch import nn\nfrom harness import register_model\n\n"
        "class Interrupt(KeyboardInterrupt):\n    pass\n\n"
        f"@register_model('raiser_{tmp_path.name[-6:]}'.replace('-', '_'), input_size=(3, 4, 4))\n"
        "def build(*, how: str = 'ok') -> nn.Module:\n" + body
        + "    return nn.Sequential(nn.Flatten(), nn.Linear(48, 2))\n"
    )
    return path


@pytest.mark.parametrize(("how", "message"), [("exit", "the task called sys.exit(3)"), ("subclass", "boom")])
def test_a_builder_that_exits_or_raises_an_interrupt_subclass_is_an_error_record(tmp_path, capsys, how, message):
    plugin = _raising_plugin(tmp_path, "    if how == 'exit':\n        sys.exit(3)\n"
                                       "    if how == 'subclass':\n        raise Interrupt('boom')\n")
    name = f"raiser_{tmp_path.name[-6:]}".replace("-", "_")
    suite = _suite(tmp_path, plugin, [{"name": name, "label": "bad", "options": {"how": how}}, name])
    code, out, err = _run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--reports", str(tmp_path / "p"),
                          "--no-progress")
    assert code == 0, err
    records = {r.label: r for r in load_run(Path(out[0])).records}
    assert records["bad"].status == "error" and records["bad"].error.message == message
    assert records[name].status == "ok"  # the run went on


def test_ctrl_c_stops_with_the_run_dir_and_the_exact_resume_command(tmp_path, capsys):
    plugin = _raising_plugin(tmp_path, "    if how == 'ctrl-c':\n        raise KeyboardInterrupt\n")
    name = f"raiser_{tmp_path.name[-6:]}".replace("-", "_")
    suite = _suite(tmp_path, plugin, [name, {"name": name, "label": "stop", "options": {"how": "ctrl-c"}}])
    code, out, err = _run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 130 and out == []
    run_dir = next((tmp_path / "r" / "e2e").iterdir())
    assert err.strip().splitlines()[-1] == (
        f"records so far are kept in {run_dir}; resume with: python -m harness run {suite} --no-progress "
        f"--resume {run_dir}")
    assert [r.label for r in load_run(run_dir).records] == [name]  # the first task's record is kept


def test_an_internal_error_is_exit_2_and_one_line(tmp_path, capsys, monkeypatch):
    import harness.report

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(harness.report, "render", broken)
    code, out, err = _run(capsys, "report", str(tmp_path))
    assert code == 2 and out == []
    assert err.strip() == ("error: internal error in `report`: ZeroDivisionError: a bug "
                           "(rerun with -v for the traceback; please report it)")


def test_sigterm_stops_like_ctrl_c_with_the_resume_command(tmp_path, capsys, monkeypatch):
    """SLURM's time limit and `kill` send SIGTERM: the run stops as on Ctrl-C, says where its records are and how
    to resume, and exits 143 (it ended silently before)."""
    import signal

    from harness.cli import signals

    monkeypatch.setattr(signals, "_TERMINATED", [])
    previous = signal.getsignal(signal.SIGTERM)
    plugin = _raising_plugin(tmp_path, "    if how == 'term':\n        import os, signal\n"
                                       "        os.kill(os.getpid(), signal.SIGTERM)\n")
    name = f"raiser_{tmp_path.name[-6:]}".replace("-", "_")
    suite = _suite(tmp_path, plugin, [name, {"name": name, "label": "stop", "options": {"how": "term"}}])
    try:
        code, out, err = _run(capsys, "run", str(suite), "--out", str(tmp_path / "r"), "--no-progress")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143 and out == []
    run_dir = next((tmp_path / "r" / "e2e").iterdir())
    assert "terminated (SIGTERM)" in err and err.strip().splitlines()[-1] == (
        f"records so far are kept in {run_dir}; resume with: python -m harness run {suite} --no-progress "
        f"--resume {run_dir}")
    assert [r.label for r in load_run(run_dir).records] == [name]


def test_a_shard_that_gets_no_task_says_so(tmp_path, plugin_file, capsys):
    """Said in one line, not refused: a CI matrix of N shards runs every shard, and merge takes the empty one."""
    name = plugin_model_name(plugin_file)
    suite = tmp_path / "one.yaml"
    suite.write_text(json.dumps({"name": "one", "imports": [str(plugin_file)], "models": [name],
                                 "complexity": {"input_size": [3, 8, 8], "flop_crosscheck": False}}))
    code, out, err = _run(capsys, "run", suite, "--shard", "2/2", "--out", tmp_path / "r", "--no-progress",
                          "--no-report")
    assert code == 0 and load_run(Path(out[0])).records == []
    assert "--shard 2/2: this shard gets no task (the suite splits into 1 shard(s) on cpu); its run dir stays " \
           "empty" in err
