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


def _run(condition: str, latency: float, low: float, high: float, wall: float = 90.0) -> dict:
    ratios = {"sknet50 ÷ resnext50": [latency, low, high, 40]}
    return {"condition": condition, "threads_arg": "1", "threads_used": 1,
            "paired": {"wall_s": wall, "threads": 1,
                       "latency": {"ratios": ratios, "n": {}, "other_cores": 0.0, "loadavg_1m": 0.1},
                       "throughput": {"ratios": {}, "n": {}, "other_cores": 0.0, "loadavg_1m": 0.1}}}


def test_paired_timing_summary_measures_spread_ci_width_and_the_loaded_shift(monkeypatch):
    pt = _script("paired_timing", monkeypatch)
    runs = [_run("quiet", 1.19, 1.18, 1.20), _run("quiet", 1.20, 1.19, 1.21), _run("loaded", 1.22, 1.17, 1.27),
            _run("loaded", 1.21, 1.20, 1.22)]
    (name, s), = pt.summarise(runs, "paired").items()
    assert name == "latency: sknet50 ÷ resnext50"
    assert s["quiet_median"] == pytest.approx(1.195) and s["loaded_median"] == pytest.approx(1.215)
    assert s["spread_quiet"] == pytest.approx(1.20 / 1.19 - 1) and s["spread_all"] == pytest.approx(1.22 / 1.19 - 1)
    assert s["max_ci_width"] == pytest.approx(0.10 / 1.22)  # the widest run: ±4% of 1.22
    assert s["loaded_vs_quiet"] == pytest.approx(1.215 / 1.195 - 1)
    # within the limits (2% quiet, 4% all, 4% CI, ±2% loaded) except the one wide CI
    assert s["meets"] == {"spread_quiet": True, "spread_all": True, "ci_width": False, "loaded_vs_quiet": True}
    doc = {"runs": runs, "summary": {"paired": pt.summarise(runs, "paired")}, "machine": "a CPU, 2 cores",
           "settings": {"quiet": 2, "loaded": 2, "auto": 0}}
    lines = pt.tables(doc)
    assert "| paired | latency: sknet50 ÷ resnext50 | 1.195 | 1.215 | 0.8% [2%] | 2.5% [4%] | 8.2% [4%] | " \
           "1.7% [±2%] | no: ci_width |" in lines


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
