"""The CI workflow calls the CLI with arguments it accepts (a renamed flag would otherwise break CI silently)."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from harness.cli import build_parser

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "latency.yml"


def _harness_commands() -> list[list[str]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    commands = []
    for step in doc["jobs"]["gate"]["steps"]:
        script = step.get("run", "").replace("\\\n", " ")
        for line in script.splitlines():
            if "python -m harness " in line:
                words = shlex.split(line.split("python -m harness ", 1)[1].split(" 2>")[0].split(" |")[0])
                commands.append(words)
    return commands


def test_the_default_mode_is_the_same_job_gate():
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert doc["jobs"]["gate"]["env"]["MODE"] == "${{ inputs.mode || 'same-job' }}"
    assert doc["jobs"]["gate"]["env"]["OMP_NUM_THREADS"] == "1"


def test_every_harness_command_in_the_workflow_parses():
    commands = _harness_commands()
    assert any(c[:2] == ["gate", "ab"] for c in commands) and any(c[:2] == ["gate", "baseline"] for c in commands)
    assert any(c[:2] == ["gate", "check"] for c in commands)
    parser = build_parser()
    for words in commands:
        words = [w.replace("${{ steps.run.outputs.run_dir }}", "results/x/y") for w in words]
        args = parser.parse_args(words)
        assert callable(args.func)
