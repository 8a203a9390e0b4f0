"""What new users met (issue 28): a closed pipe, a removed option in --help, a plugin's models in `list`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import plugin_model_name, run_cli


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    child = subprocess.Popen([sys.executable, "-m", "harness", "list"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=tmp_path)
    child.stdout.close()  # `| head -0`: the reader is gone before the first line
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141 and err == ""


def test_check_help_does_not_list_the_removed_calibrate(capsys):
    with pytest.raises(SystemExit) as stopped:
        run_cli(capsys, "check", "--help")
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "--calibrate" not in out and "--repeats" not in out
    code, _, err = run_cli(capsys, "check", "--calibrate", "suites/ci_latency.yaml")
    assert code == 2 and "check --calibrate was removed" in err


def test_list_shows_a_plugins_models(capsys, plugin_file):
    code, out, err = run_cli(capsys, "list", "--import", plugin_file, "tinynet*")
    assert code == 0, err
    assert [line.split()[0] for line in out] == [plugin_model_name(plugin_file)]
