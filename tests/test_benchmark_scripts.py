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


def _script(name: str, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def _calibration_run(which: str, condition: str, method: str, ratio: float, *, contended: bool = False,
                     seed: int = 0) -> dict:
    """A calibration run of two processes whose per-cycle ratios are ``ratio`` times a little seeded noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(2 if method.endswith("2") else 1):
        a = 100 + rng.normal(0, 1, 8)
        parts.append([a.tolist(), (a * ratio * np.exp(rng.normal(0, 0.01, 8))).tolist()])
    entry = {"parts": parts, "contended": [contended] * len(parts)}
    names = ["latency: b ÷ a"] if which == "aa" else ["latency: sknet50 ÷ resnext50"]
    return {"which": which, "condition": condition, "method": method, "wall_s": 60.0, "other_cores": 0.0,
            "run_dir": "/nonexistent", **{n: entry for n in names}}


def test_calibration_counts_coverage_spread_and_marks_from_the_runs(monkeypatch):
    cal = _script("calibration", monkeypatch)
    runs = [_calibration_run("aa", "quiet", "processes 2", r, seed=i) for i, r in enumerate((1.0, 1.001, 0.999))]
    runs += [_calibration_run("suite", "quiet", "processes 2", r, seed=i) for i, r in enumerate((1.15, 1.16, 1.155))]
    runs += [_calibration_run("suite", "contended", "processes 2", r, contended=True, seed=i)
             for i, r in enumerate((1.2, 1.3))]
    stats = cal.analyse({"runs": runs})
    aa = stats["aa|quiet|processes 2|latency: b ÷ a|median"]
    assert aa["n"] == 3 and aa["holds_one"][1] == 3
    quiet = stats["suite|quiet|processes 2|latency: sknet50 ÷ resnext50|median"]
    assert quiet["spread"] == pytest.approx(quiet["max"] / quiet["min"] - 1) and quiet["holds_other"][1] == 6
    assert 1.14 < quiet["median"] < 1.17 and quiet["marked"] == 0
    assert stats["suite|contended|processes 2|latency: sknet50 ÷ resnext50|median"]["marked"] == 2
    # the synthetic contended runs recorded no other work: their load contradicts their condition, and says so
    assert stats["suite|contended|processes 2|latency: sknet50 ÷ resnext50|median"]["off_condition"] == 2
    assert quiet["off_condition"] == 0
    text = cal.tables({"runs": runs, "machine": {"cpu": "a CPU", "cores": 2, "torch": "x"}, "created_utc": "d"})
    assert "| processes 2 | latency: b ÷ a |" in text and "| contended | processes 2 | median |" in text
    # contended runs against the quiet median: 1.2 lies within 5% of 1.155, 1.3 neither near it nor holding it
    doc = {"runs": runs}
    assert cal._contended_vs_quiet(doc, "processes 2", "latency: sknet50 ÷ resnext50", "median") == (1, 2)
    assert "| 1/2 (50%) |" in text.split("| contended | processes 2 | median |")[1].splitlines()[0]


def test_ab_error_rates_carry_exact_binomial_intervals_and_write_the_readme_block(monkeypatch, tmp_path):
    ab = _script("ab_error_rates", monkeypatch)
    trials = [{"kind": "aa", "exit_code": 0, "normalised_ratio": 1.0, "background": i % 2 == 1,
               "machine": {"other_cores": 1.0 if i % 2 else 0.0}} for i in range(122)]
    rates = ab._rates(trials)
    assert rates["aa"]["failed"] == 0 and rates["aa"]["trials"] == 122
    assert rates["aa"]["rate_ci95"][1] == pytest.approx(1 - 0.025 ** (1 / 122))  # Clopper-Pearson, 0 of n
    assert rates["aa"]["rate_ci95"][1] < 0.03 and rates["aa_busy"]["trials"] == 61
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{ab.MARKERS[0]}\nstale table\n{ab.MARKERS[1]}\nafter\n")
    doc = {"rates": rates, "trials": trials, "settings": {
        "kinds": "aa", "trials": 122, "background": "half", "pairs": 2, "rounds": 3, "min_time": 0.8,
        "max_time": 2.0, "min_samples": 30, "threshold": None, "alpha": 0.002}}
    summary = tmp_path / "ab.json"
    summary.write_text(__import__("json").dumps(doc))
    ab._write_table(summary, readme)
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "stale table" not in text
    assert "| A/A (unchanged) | all | 0/122 | 0.0% (0.0%–3.0%) |" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--trials", "0"], "--trials 0: run at least one trial of each kind"),
    (["--kinds", "aa,slow5"], "--kinds 'aa,slow5': a comma-separated list of aa, slow_5, slow_20")])
def test_ab_error_rates_refuses_a_run_with_nothing_to_measure_in_one_line(monkeypatch, capsys, argv, message):
    ab = _script("ab_error_rates", monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        ab._parse(argv)
    assert exit_.value.code == 2 and capsys.readouterr().err.strip().splitlines()[-1].endswith(message)
