"""Regression gate on synthetic samples: significant-and-large shifts fail, noise and machine drift do not."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.errors import ConfigError, IncomparableError
from harness.gate.render import render_json, render_markdown, render_text
from harness.gate.sets import BenchmarkSet, BenchSamples, load_benchmarks
from harness.gate.verdict import CheckReport, Verdict, compare, environment_fingerprint
from harness.results.summaries import BenchmarkKey

PYTEST_SAMPLE = Path(__file__).parent / "data" / "pytest_benchmark_sample.json"
ENVIRONMENT = {
    "torch": "2.4.1",
    "device": {"name": "cuda:0", "description": "NVIDIA H100 80GB HBM3"},
    "cpu": {"model": "AMD EPYC 7R13 Processor", "torch_threads": 16},
}


def _key(label: str = "sknet50", *, batch_size: int = 1) -> BenchmarkKey:
    return BenchmarkKey.from_fields(
        {
            "model": label,
            "label": label,
            "options": {},
            "batch_size": batch_size,
            "device": "cuda:0",
            "dtype": "float32",
            "channels_last": False,
            "compile": None,
            "kind": "latency",
        }
    )


def _rounds(rng: np.random.Generator, median: float, *, cv: float, n: int, rounds: int) -> tuple:
    # Lognormal with the requested coefficient of variation: CV^2 = exp(sigma^2) - 1.
    sigma = math.sqrt(math.log1p(cv * cv))
    values = median * rng.lognormal(0.0, sigma, n)
    return tuple(tuple(float(x) for x in part) for part in np.array_split(values, rounds))


def _bench(
    seed: int,
    median: float,
    *,
    cv: float = 0.03,
    n: int = 60,
    rounds: int = 3,
    ref_median: float | None = 2.0,
) -> BenchSamples:
    rng = np.random.default_rng(seed)
    model = _rounds(rng, median, cv=cv, n=n, rounds=rounds)
    ref = () if ref_median is None else _rounds(rng, ref_median, cv=0.01, n=20 * rounds, rounds=rounds)
    return BenchSamples(rounds=model, reference_rounds=ref)


def _set(benchmarks: dict[BenchmarkKey, BenchSamples], environment: dict | None = None,
         source: str = "") -> BenchmarkSet:
    return BenchmarkSet(
        environment=ENVIRONMENT if environment is None else environment, benchmarks=benchmarks, source=source
    )


def _single(base: BenchSamples, cand: BenchSamples, **kwargs) -> CheckReport:
    return compare(_set({_key(): base}), _set({_key(): cand}), **kwargs)


def test_twenty_percent_slowdown_is_a_regression() -> None:
    report = _single(_bench(1, 10.0), _bench(2, 12.0))
    (row,) = report.rows
    assert row.verdict is Verdict.REGRESSION
    assert row.normalised_ratio == pytest.approx(1.2, abs=0.03)
    assert row.ci_low > 1.0 and row.p_value < 0.002
    assert report.exit_code == 1


def test_improvement_is_detected_and_passes() -> None:
    report = _single(_bench(1, 10.0), _bench(2, 8.0))
    assert report.rows[0].verdict is Verdict.IMPROVEMENT
    assert report.rows[0].ci_high < 1.0
    assert report.exit_code == 0


def test_two_draws_of_the_same_distribution_are_unchanged() -> None:
    report = _single(_bench(3, 10.0), _bench(4, 10.0))
    assert report.rows[0].verdict is Verdict.UNCHANGED
    assert report.rows[0].ci_low < 1.0 < report.rows[0].ci_high
    assert report.exit_code == 0


def test_large_but_noisy_difference_is_changed_not_significant() -> None:
    base = _bench(5, 10.0, cv=0.60, n=8, rounds=1, ref_median=None)
    # The same draws shuffled and scaled: the medians differ by exactly 25%.
    shuffled = np.random.default_rng(6).permutation(base.samples_ms)
    cand = BenchSamples(rounds=(tuple(float(x) for x in 1.25 * shuffled),))
    report = _single(base, cand)
    row = report.rows[0]
    assert row.raw_ratio == pytest.approx(1.25)
    assert row.normalised_ratio is None and "raw" in row.note
    assert row.p_value >= 0.002
    assert row.verdict is Verdict.CHANGED
    assert report.exit_code == 0


def test_uniformly_slower_machine_is_normalised_away() -> None:
    base = _bench(7, 10.0, ref_median=2.0)
    cand = _bench(8, 13.0, ref_median=2.6)  # model and reference workload both 30% slower
    row = _single(base, cand).rows[0]
    assert row.raw_ratio == pytest.approx(1.3, abs=0.03)
    assert row.normalised_ratio == pytest.approx(1.0, abs=0.03)
    assert row.verdict is Verdict.UNCHANGED
    # Without the candidate's reference samples the same data can only be judged raw: a regression.
    raw_only = BenchSamples(rounds=cand.rounds)
    assert _single(base, raw_only).rows[0].verdict is Verdict.REGRESSION


def test_few_samples_are_insufficient() -> None:
    report = _single(_bench(1, 10.0, n=4, rounds=1), _bench(2, 20.0, n=4, rounds=1))
    assert report.rows[0].verdict is Verdict.INSUFFICIENT
    assert report.exit_code == 2  # too few samples to judge: never a pass


def test_keys_on_one_side_only_are_missing() -> None:
    base = _set({_key("sknet50"): _bench(1, 10.0), _key("senet50"): _bench(2, 8.0)})
    cand = _set({_key("sknet50"): _bench(3, 10.0), _key("resnext50"): _bench(4, 7.0)})
    rows = {r.key.label: r for r in compare(base, cand).rows}
    assert (rows["senet50"].verdict, rows["senet50"].note) == (Verdict.MISSING, "baseline only")
    assert (rows["resnext50"].verdict, rows["resnext50"].note) == (Verdict.MISSING, "candidate only")
    assert rows["sknet50"].verdict is Verdict.UNCHANGED
    assert compare(base, cand).exit_code == 2  # a benchmark on one side only could not be judged


def test_environment_mismatch_raises_with_field_names() -> None:
    other = {
        "torch": "2.5.0",
        "device": {"name": "cuda:0", "description": "NVIDIA A100-SXM4-80GB"},
        "cpu": {"model": "AMD EPYC 7R13 Processor", "torch_threads": 8},
    }
    base = _set({_key(): _bench(1, 10.0)}, source="baseline.json")
    cand = _set({_key(): _bench(2, 12.0)}, other, source="results/x/run2")
    with pytest.raises(IncomparableError) as info:
        compare(base, cand)
    message = str(info.value)
    assert "\n" not in message
    for name in ("device_name", "torch", "threads"):
        assert name in message
    assert "dtype" not in message and "device_type" not in message
    assert "--force" in message


def test_forced_comparison_lists_the_mismatch_and_still_compares() -> None:
    other = dict(ENVIRONMENT, torch="2.5.0")
    report = compare(_set({_key(): _bench(1, 10.0)}), _set({_key(): _bench(2, 12.0)}, other), force=True)
    assert report.env_mismatches == ("torch: 2.4 vs 2.5",)
    assert report.rows[0].verdict is Verdict.REGRESSION
    assert "ENVIRONMENT MISMATCH" in render_markdown(report) and "torch: 2.4 vs 2.5" in render_text(report)
    assert json.loads(render_json(report))["environment_mismatches"] == ["torch: 2.4 vs 2.5"]


def test_a_patch_release_is_no_mismatch_and_an_unknown_field_is_one() -> None:
    patched = dict(ENVIRONMENT, torch="2.4.0+cu121")
    assert compare(_set({_key(): _bench(1, 10.0)}), _set({_key(): _bench(2, 10.0)}, patched)).env_mismatches == ()
    assert environment_fingerprint(_set({_key(): _bench(1, 10.0)})) == {
        "device_type": "cuda",
        "device_name": "NVIDIA H100 80GB HBM3",
        "dtype": "float32",
        "torch": "2.4",
        "threads": "16",
    }
    # An environment that says nothing cannot show it is the same machine: not judged unless forced (issue 28)
    silent = compare(_set({_key(): _bench(1, 10.0)}), _set({_key(): _bench(2, 10.0)}, {}), force=True)
    assert silent.env_mismatches == ("device_name: NVIDIA H100 80GB HBM3 vs unknown", "torch: 2.4 vs unknown",
                                     "threads: 16 vs unknown")


def test_a_pytest_benchmark_cpu_is_named_by_its_brand_not_its_model_number() -> None:
    # py-cpuinfo's "model" is a number (167); the name a harness manifest writes as cpu.model is its brand_raw
    key = BenchmarkKey.from_fields({"model": "m", "label": "m", "device": "cpu", "kind": "latency"})
    harness_run = BenchmarkSet(environment={"cpu": {"model": "Intel Xeon"}}, benchmarks={key: _bench(1, 10.0)})
    pytest_json = BenchmarkSet(environment={"cpu": {"model": 167, "brand_raw": "Intel Xeon"}},
                               benchmarks={key: _bench(2, 10.0)})
    assert environment_fingerprint(pytest_json)["device_name"] == "Intel Xeon"
    assert compare(harness_run, pytest_json).env_mismatches == ()


def test_invalid_threshold_or_alpha_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        _single(_bench(1, 10.0), _bench(2, 10.0), threshold_pct=0)
    with pytest.raises(ConfigError, match="alpha"):
        _single(_bench(1, 10.0), _bench(2, 10.0), alpha=1.5)


def _scaled_pytest_json(tmp_path: Path, factor: float, *, keep_data: bool) -> Path:
    doc = json.loads(PYTEST_SAMPLE.read_text())
    for bench in doc["benchmarks"]:
        stats = bench["stats"]
        stats["data"] = [x * factor for x in stats["data"]]
        stats["median"] *= factor
        if not keep_data:
            del stats["data"]
    path = tmp_path / f"bench-{factor}-{keep_data}.json"
    path.write_text(json.dumps(doc))
    return path


def test_pytest_benchmark_with_raw_data_gets_the_full_test(tmp_path: Path) -> None:
    base = load_benchmarks(_scaled_pytest_json(tmp_path, 1.0, keep_data=True))
    cand = load_benchmarks(_scaled_pytest_json(tmp_path, 1.2, keep_data=True))
    report = compare(base, cand)
    assert [r.verdict for r in report.rows] == [Verdict.REGRESSION] * 2
    assert all(r.p_value is not None and r.normalised_ratio is None for r in report.rows)
    assert report.exit_code == 1


def test_pytest_benchmark_without_raw_data_shows_medians_but_cannot_pass(tmp_path: Path) -> None:
    base = load_benchmarks(_scaled_pytest_json(tmp_path, 1.0, keep_data=False))
    cand = load_benchmarks(_scaled_pytest_json(tmp_path, 1.2, keep_data=False))
    report = compare(base, cand)
    for row in report.rows:
        assert row.verdict is Verdict.NO_RAW
        assert row.raw_ratio == pytest.approx(1.2)
        assert row.p_value is None and row.ci_low is None
        assert row.note.startswith("median only: +20.0% exceeds ±5%")
    assert report.exit_code == 2  # no test behind a median: "could not judge", never a pass (issue 28)
    assert "no raw samples; median only" in render_markdown(report)


def test_markdown_text_and_json_carry_every_verdict() -> None:
    base = _set(
        {
            _key("a"): _bench(1, 10.0),
            _key("b"): _bench(2, 10.0),
            _key("c"): _bench(3, 10.0, n=3, rounds=1),
            _key("d"): _bench(4, 10.0),
        }
    )
    cand = _set(
        {
            _key("a"): _bench(5, 12.0),
            _key("b"): _bench(6, 10.0),
            _key("c"): _bench(7, 10.0, n=3, rounds=1),
            _key("e"): _bench(8, 10.0),
        }
    )
    report = compare(base, cand)
    markdown, text, doc = render_markdown(report), render_text(report), json.loads(render_json(report))
    for verdict in ("regression", "unchanged", "insufficient samples", "missing"):
        assert verdict in markdown and verdict in text
    assert "| label | batch | mode | baseline ms |" in markdown
    assert "**regression**" in markdown and "FAIL" in markdown
    assert "alpha 0.002" in markdown and "±5%" in markdown
    assert doc["exit_code"] == 1 and len(doc["rows"]) == 5
    assert {r["verdict"] for r in doc["rows"]} == {"regression", "unchanged", "insufficient samples", "missing"}
    assert doc["rows"][0]["key"]["model"] == "a" and doc["rows"][0]["mode"] == "cuda:0 float32"
