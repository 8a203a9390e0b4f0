"""The long scripts under benchmarks/ cannot rot: each one imports and answers --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p.name != "gate_plugin.py")


@pytest.mark.slow  # spawns interpreters / asserts a timing verdict: tox -e slow
def test_every_benchmark_script_answers_help():
    assert len(SCRIPTS) >= 3
    code = (
        "import runpy, sys\nfailed = []\n"
        f"for path in {[str(p) for p in SCRIPTS]!r}:\n"
        "    sys.argv = [path, '--help']\n"
        "    try:\n        runpy.run_path(path, run_name='__main__')\n"
        "    except SystemExit as exc:\n"
        "        if exc.code not in (0, None):\n            failed.append(f'{path}: exit {exc.code}')\n"
        "    except Exception as exc:\n        failed.append(f'{path}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed)); sys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
