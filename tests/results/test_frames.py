"""Results as DataFrames: numbers against formulas and the committed report, one row per benchmark after resume
de-duplication, plain counterparts from the registry, environment columns, concatenation of runs."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_records import MANIFEST, complexity, latency
from helpers import committed_runs, write_run

import harness
from harness.errors import ConfigError
from harness.results import load_run
from harness.results.frames import COLUMNS, KINDS, part_of
from harness.results.store import FRAME_KINDS
from harness.results.summaries import P99_MIN_SAMPLES

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RUN = ROOT / "results" / "sknet_vs_senet" / "20261204T012035Z-1dcd"  # one thread, quiet
def test_frame_kinds_are_the_cli_choices_and_every_kind_has_its_columns(tmp_path):
    assert KINDS == FRAME_KINDS
    run = load_run(write_run(tmp_path / "s" / "r1", [], MANIFEST))
    for kind in KINDS:
        frame = run.frame(kind)
        assert frame.empty and list(frame.columns)[0] == "run_id" and set(COLUMNS[kind]) <= set(frame.columns)
    with pytest.raises(ConfigError, match="unknown kind 'latncy' for a results frame; choose one of complexity"):
        run.frame("latncy")


def test_latency_statistics_and_ratios_against_formulas(tmp_path):
    base, se, sk = [10.0, 10.2, 9.8, 10.1, 9.9, 10.0], [11.0, 11.1, 10.9, 11.2, 10.8], [13.0, 13.2, 12.8, 13.1, 12.9]
    records = [latency("resnext50", "resnext50", base[:3], 0), latency("resnext50", "resnext50", base[3:], 1),
               latency("senet50", "senet50", se), latency("sknet50", "sknet50", sk),
               complexity("resnext50", 4_000, 100), complexity("senet50", 4_004, 101),
               complexity("sknet50", 4_200, 130)]
    frame = load_run(write_run(tmp_path / "s" / "r1", records, MANIFEST)).frame("latency").set_index("label")
    assert list(frame.index) == ["resnext50", "senet50", "sknet50"]  # rounds pooled: one row per benchmark
    rx, sk_row = frame.loc["resnext50"], frame.loc["sknet50"]
    assert (rx["n"], rx["rounds"], rx["p50_ms"]) == (6, 2, statistics.median(base))
    assert rx["p90_ms"] == pytest.approx(np.percentile(base, 90)) and math.isnan(rx["p99_ms"])
    assert rx["cv"] == pytest.approx(statistics.stdev(base) / statistics.mean(base))
    assert (rx["ratio_base"], rx["ratio_base_ci_low"]) == (1.0, 1.0)  # itself: no interval
    assert sk_row["ratio_base"] == pytest.approx(statistics.median(sk) / statistics.median(base))
    assert sk_row["ratio_base_ci_low"] < sk_row["ratio_base"] < sk_row["ratio_base_ci_high"]
    assert (sk_row["plain"], sk_row["ratio_plain"]) == ("resnext50", sk_row["ratio_base"])
    assert sk_row["macs_ratio_plain"] == pytest.approx(4_200 / 4_000)
    assert sk_row["activations_ratio_plain"] == pytest.approx(1.3)
    assert sk_row["iter_peak_mem_ratio_plain"] == 1.0 and sk_row["iter_peak_mem_bytes"] == 10 << 20
    assert pd.isna(rx["plain"])
    env = frame.iloc[0]
    assert (env["run_id"], env["cpu_model"], env["torch"], env["git_commit"], env["threads"]) == (
        "r1", "Test CPU", "2.9.0", "abc123", 2)


def test_p99_is_given_from_100_samples(tmp_path):
    samples = list(np.linspace(1.0, 2.0, P99_MIN_SAMPLES))
    run = load_run(write_run(tmp_path / "s" / "r1", [latency("resnext50", "resnext50", samples)], MANIFEST))
    assert run.frame("latency")["p99_ms"].iloc[0] == pytest.approx(np.percentile(samples, 99))


def test_plain_counterpart_shares_options_and_timm_or_unknown_models_have_none(tmp_path):
    records = [latency("rx", "resnext29_16x32d", [5.0] * 4, width=0.25),
               latency("rx-full", "resnext29_16x32d", [50.0] * 4),
               latency("sk", "sknet29", [6.0] * 4, width=0.25),
               latency("K3+K7", "sknet50", [7.0] * 4, branches=["3x3", "3x3d3"]),
               latency("resnext50", "resnext50", [5.0] * 4),
               latency("timm", "timm:skresnext50_32x4d", [8.0] * 4),
               {**latency("plug", "resnext50", [8.0] * 4), "model": "my_plugin_net", "canonical_options": None}]
    frame = load_run(write_run(tmp_path / "s" / "r1", records, MANIFEST)).frame("latency").set_index("label")
    assert frame.loc["sk", "plain"] == "rx" and frame.loc["sk", "ratio_plain"] == pytest.approx(6.0 / 5.0)
    assert frame.loc["K3+K7", "plain"] == "resnext50"  # SK options are not the plain network's: the default one
    assert frame[["plain"]].loc[["timm", "plug", "rx", "resnext50"]].isna().all().all()


def test_resumed_run_has_no_duplicate_rows(tmp_path):
    first = latency("resnext50", "resnext50", [99.0, 99.0, 99.0])
    retry = latency("resnext50", "resnext50", [10.0, 11.0, 12.0])
    error = {**latency("sknet50", "sknet50", [], check=False), "status": "error",
             "error": {"type": "X", "message": "y"}}
    fixed = latency("sknet50", "sknet50", [13.0, 14.0, 15.0])
    run = load_run(write_run(tmp_path / "s" / "r1", [first, error, retry, fixed], MANIFEST))
    frame = run.frame("latency")
    assert list(frame["label"]) == ["resnext50", "sknet50"]
    assert list(frame["p50_ms"]) == [11.0, 14.0] and list(frame["n"]) == [3, 3]


def test_throughput_is_pooled_images_over_seconds_with_a_ci(tmp_path):
    def loops(label: str, name: str, loop_s: list[float]) -> dict:
        return {**latency(label, name, [x * 1e3 / 2 for x in loop_s]), "kind": "throughput", "batch_size": 8,
                "task_id": f"throughput:{label}", "loop_samples_s": loop_s, "images": 16 * len(loop_s)}

    rx, sk = [0.40, 0.42, 0.38, 0.41], [0.50, 0.52, 0.48, 0.51]
    frame = load_run(write_run(tmp_path / "s" / "r1", [loops("resnext50", "resnext50", rx),
                                                       loops("sknet50", "sknet50", sk)], MANIFEST)).frame("throughput")
    rx_row, sk_row = frame.iloc[0], frame.iloc[1]
    assert rx_row["img_s"] == pytest.approx(16 * 4 / sum(rx)) and rx_row["loops"] == 4
    assert rx_row["img_s_ci_low"] < rx_row["img_s"] < rx_row["img_s_ci_high"]
    assert sk_row["ratio_plain"] == pytest.approx(sum(rx) / sum(sk))
    assert sk_row["ratio_plain_ci_low"] < sk_row["ratio_plain"] < sk_row["ratio_plain_ci_high"] < 1.0


def test_by_round_gives_one_row_per_round(tmp_path):
    records = [latency("resnext50", "resnext50", [10.0, 10.0, 10.0], 0),
               latency("resnext50", "resnext50", [20.0, 20.0, 20.0], 1)]
    frame = load_run(write_run(tmp_path / "s" / "r1", records, MANIFEST)).frame("latency", by_round=True)
    assert list(frame["round"]) == [0, 1] and list(frame["p50_ms"]) == [10.0, 20.0]


def test_complexity_and_module_frames(tmp_path):
    records = [complexity("resnext50", 4_000, 100), complexity("sknet50", 4_200, 130)]
    run = load_run(write_run(tmp_path / "s" / "r1", records, MANIFEST))
    cx = run.frame("complexity").set_index("label")
    assert cx.loc["sknet50", "macs_ratio_plain"] == pytest.approx(1.05)
    assert cx.loc["sknet50", "activations"] == 130 and cx.loc["sknet50", "input_size"] == "3x224x224"
    modules = run.frame("modules")
    sk = modules[modules["label"] == "sknet50"].set_index("module")
    assert sk.loc["stages.0", "is_stage"] and sk.loc["stages.0", "macs"] == 4_190
    assert sk.loc["stages.0.0.conv2.paths.1", "part"] == "conv2.paths.1"
    assert sk.loc["stages.0.0.conv2.paths.1", "stage"] == "stages.0"
    assert part_of("layer1.0.conv2", "layer1") == "conv2" and part_of("stages.1.2", "stages.1") == ""


def test_load_runs_concatenates_with_run_ids(tmp_path):
    a, b = (write_run(tmp_path / "s" / name, [latency("resnext50", "resnext50", samples)], {**MANIFEST, "run_id": name})
            for name, samples in (("a", [1.0, 2.0, 3.0]), ("b", [4.0, 5.0, 6.0])))
    runs = harness.load_runs([a, b])
    frame = runs.frame("latency")
    assert len(runs) == 2 and list(frame["run_id"]) == ["a", "b"] and list(frame["p50_ms"]) == [2.0, 5.0]




def _report_rows(run_dir: Path, section: str, heading: str) -> dict[str, list[str]]:
    report = (ROOT / "reports" / run_dir.parent.name / f"{run_dir.name}.md").read_text()
    block = report.split(section, 1)[1].split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(cells[0]) <= set(":-") and cells[0] != "model":
            rows[cells[0].removesuffix(" ⚠")] = cells
    return rows


def _ratio_cell(f: pd.Series) -> str:
    if f["ratio_base_ci_low"] == f["ratio_base_ci_high"]:  # itself, or too few samples: no interval
        return f"{f['ratio_base']:.3f}"
    cell = f"{f['ratio_base']:.3f} ({f['ratio_base_ci_low']:.3f}–{f['ratio_base_ci_high']:.3f})"
    contended = f.get("ratio_base_contended")
    return f"{cell} ⚠ contended" if contended == contended and contended else cell  # timed under contention


def test_latency_frame_reproduces_the_committed_default_reports_latency_table():
    frame = load_run(DEFAULT_RUN).frame("latency").set_index("label")
    rows = _report_rows(DEFAULT_RUN, "## Latency", "### batch 1 · fp32 · cpu")
    assert set(rows) == set(frame.index) == {"resnext50", "senet50", "sknet50", "timm:skresnext50_32x4d"}
    for label, cells in rows.items():
        f = frame.loc[label]
        assert cells[1:4] == [str(f["n"]), str(f["rounds"]), f"{f['p50_ms']:.2f}"]
        assert cells[4] == f"{f['p90_ms']:.2f}" and cells[5] == "–"  # p99 below 100 samples
        assert cells[6] == f"{f['ci_low_ms']:.2f}–{f['ci_high_ms']:.2f}" and cells[7] == f"{f['cv'] * 100:.1f}%"
        assert cells[8] == _ratio_cell(f)


@pytest.mark.parametrize("run_dir", committed_runs())
def test_timing_frames_equal_every_committed_reports_tables(run_dir):
    run = load_run(run_dir)
    for kind, section in (("latency", "## Latency"), ("throughput", "## Throughput (inference)")):
        frame = run.frame(kind)
        for (bs, mode, device), rows in frame.groupby(["batch_size", "mode", "device"]):
            cells = _report_rows(run_dir, section, f"### batch {bs} · {mode} · {device}")
            assert set(cells) == set(rows["label"])
            for _, f in rows.iterrows():
                row = cells[f["label"]]
                if kind == "latency":
                    p99 = "–" if f["n"] < P99_MIN_SAMPLES else f"{f['p99_ms']:.2f}"
                    assert row[3:6] == [f"{f['p50_ms']:.2f}", f"{f['p90_ms']:.2f}", p99] and row[8] == _ratio_cell(f)
                else:
                    assert row[1:4] == [f"{f['img_s']:.1f}", f"{f['img_s_ci_low']:.1f}–{f['img_s_ci_high']:.1f}",
                                        _ratio_cell(f)]


def test_training_frames_have_a_row_per_epoch_and_per_seed(tmp_path):
    def epoch(seed: int, n: int) -> dict:
        return {"task_id": f"train:sk:seed{seed}", "kind": "train_epoch", "status": "ok", "model": "sknet29",
                "label": "sk", "options": {}, "seed": seed, "epoch": n, "train_loss": 1.0 / n, "test_acc": 0.5 + n / 10,
                "lr": 0.1, "img_per_s": 100.0, "wall_s": 2.0, "train_wall_s": 1.5, "dataset": "cifar10",
                "synthetic": True, "device": "cpu"}

    final = {"task_id": "train:sk:seed0", "kind": "train", "status": "ok", "model": "sknet29", "label": "sk",
             "options": {}, "seed": 0, "epochs": 2, "top1_err": 30.0, "train_time_s": 4.0, "params": 10, "macs": 20,
             "num_classes": 10, "dataset": "cifar10", "synthetic": True, "device": "cpu",
             "distributed": {"world_size": 2, "backend": "gloo"}, "curve": [epoch(0, 1), epoch(0, 2)]}
    records = [epoch(0, 1), epoch(0, 2), epoch(1, 1), epoch(0, 2), final]  # epoch 2 of seed 0 recorded twice
    run = load_run(write_run(tmp_path / "s" / "r1", records, MANIFEST))
    epochs = run.frame("train_epoch")
    assert list(zip(epochs["seed"], epochs["epoch"], strict=True)) == [(0, 1), (1, 1), (0, 2)]
    train = run.frame("train").iloc[0]
    assert (train["top1_err"], train["world_size"], train["synthetic"]) == (30.0, 2, True)


def test_statistics_computed_for_all_benchmarks_at_once_are_each_benchmarks_own(tmp_path):
    """A frame takes one bootstrap per sample count for all its benchmarks; every number is the one a benchmark's
    own summary, images/s interval and ratio give, in every layout: paired in one process (cycles and pairing),
    unpaired (runs before the paired engine), and in worker processes."""
    from harness.results import summaries as S

    rng = np.random.default_rng(1)
    models = (("resnext50", "resnext50"), ("senet50", "senet50"), ("sknet50", "sknet50"))
    runs = [{"index": p, "pairing": f"p{p}", "cycles": 6} for p in (0, 1)]
    layouts = {1: lambda n, rnd: {"cycles": list(range(n)), "pairing": f"s{rnd}"},  # one process
               2: lambda n, rnd: {},  # unpaired
               4: lambda n, rnd: {"cycles": list(range(n // 2)) * 2, "pairing": f"s{rnd}",  # two processes
                                  "processes": [0] * (n // 2) + [1] * (n // 2), "process_runs": runs,
                                  "processes_planned": 2}}
    records = []
    for batch, layout in layouts.items():
        for label, name in models:
            for rnd in range(2):
                samples = [float(x) for x in rng.lognormal(3, 0.05, 12)]
                records.append({**latency(label, name, samples, rnd), "batch_size": batch,
                                "task_id": f"latency:{label}:bs{batch}:r{rnd}", **layout(12, rnd)})
                loops = [float(x) for x in rng.lognormal(-1, 0.05, 6)]
                records.append({**latency(label, name, [x * 1e3 for x in loops], rnd), "kind": "throughput",
                                "task_id": f"throughput:{label}:bs{batch}:r{rnd}", "batch_size": batch,
                                "loop_samples_s": loops, "images": 6 * batch, **layout(6, rnd)})
    run = load_run(write_run(tmp_path / "s" / "r1", records, MANIFEST))
    scopes = set()
    for kind in ("latency", "throughput"):
        frame = run.frame(kind).set_index(["batch_size", "label"])
        benches = {(b.batch_size, b.label): b for b in S.benchmarks(load_run(run.path), kind)}
        for (batch, label), bench in benches.items():
            row, own = frame.loc[(batch, label)], bench.summary
            assert (row["n"], row["p50_ms"], row["ci_low_ms"], row["ci_high_ms"]) == (own.n, own.median,
                                                                                       own.ci_low, own.ci_high)
            if label != "resnext50":
                alone = S.ratio(benches[(batch, "resnext50")], bench)
                assert (row["ratio_base"], row["ratio_base_ci_low"], row["ratio_base_ci_high"]) == (
                    alone.value, alone.low, alone.high)
                scopes.add((alone.scope, alone.pairs > 0))
            if kind == "throughput":
                loops = S.summarize(bench.loop_s)
                assert (row["img_s_ci_low"], row["img_s_ci_high"]) == bench.img_per_s_ci
                assert (row["loop_cv"], row["unstable"]) == (loops.cv, loops.unstable)
    assert scopes == {("within-process", True), ("within-process", False), ("processes", True)}


def test_loops_of_different_lengths_in_different_processes_are_read_per_image(tmp_path):
    """A worker sizes its loops from its own warm-up: one process may time 2 iterations a loop where another times 1.
    Each loop's time per image is its mean iteration time ÷ the batch, not the record's images spread evenly over
    its loops (which made one process's loops look twice as slow, and a ratio's interval 0.34–3.04)."""
    from harness.results import summaries as S

    runs = [{"index": p, "pairing": f"p{p}", "cycles": 3} for p in (0, 1)]
    records = []
    for label, iter_s in (("resnext50", 0.20), ("sknet50", 0.22)):
        # process 0: 2 iterations a loop, process 1: 1 (for sknet50; resnext50 the other way round)
        iters = (2, 1) if label == "sknet50" else (1, 2)
        loops = [iter_s * iters[p] * (1 + 0.01 * c) for p in (0, 1) for c in range(3)]
        samples_ms = [s * 1e3 / iters[p] for p, s in zip([0] * 3 + [1] * 3, loops, strict=True)]
        records.append({**latency(label, label, samples_ms), "kind": "throughput", "batch_size": 8,
                        "task_id": f"throughput:{label}", "loop_samples_s": loops,
                        "images": 8 * 3 * (iters[0] + iters[1]), "cycles": [0, 1, 2] * 2,
                        "processes": [0] * 3 + [1] * 3, "process_runs": runs, "processes_planned": 2,
                        "pairing": "s"})
    run = load_run(write_run(tmp_path / "s" / "r1", records, MANIFEST))
    base, sk = S.benchmarks(run, "throughput")
    assert np.allclose(sk.s_per_image, [0.22 * (1 + 0.01 * c) / 8 for c in range(3)] * 2)
    r = S.ratio(base, sk)
    assert abs(r.value - 0.20 / 0.22) < 1e-9 and abs(r.high - r.low) < 1e-9  # every process says the same


def test_a_benchmarks_samples_by_process_are_keyed_by_pairing_and_cycle_a_later_sample_winning():
    """What paired ratios pair (``Benchmark.by_process``): per process (the group's session, the process index), its
    (pairing, cycle) keys in order and the time of each. Samples of two processes interleaved; a process without a
    pairing token (never paired) left out; a later record's sample of the same cycle (a retried round) replacing the
    earlier one; a record from before the process level is one process, ("", 0), under its own pairing."""
    from harness.results.records import parse_record
    from harness.results.summaries import Benchmark, BenchmarkKey

    def record(samples, cycles, *, processes=None, runs=None, pairing="s1", rnd=0):
        raw = {**latency("a", "resnext50", samples, rnd), "cycles": cycles, "pairing": pairing}
        if processes is not None:
            raw |= {"processes": processes, "process_runs": runs}
        return parse_record(raw, where="test")

    runs = [{"index": 0, "pairing": "p0"}, {"index": 1, "pairing": "p1"}, {"index": 2, "pairing": None}]
    first = record([5.0, 7.0, 6.0, 8.0, 9.0, 4.0], [0, 0, 1, 1, 2, 0], processes=[0, 1, 0, 1, 2, 0], runs=runs)
    retry = record([6.5], [1], processes=[0], runs=runs[:1])
    old = record([3.0, 2.0], [1, 0], pairing="old", rnd=1)
    bench = Benchmark(BenchmarkKey.of(first), (first, retry, old))
    got = {process: (keys, times.tolist()) for process, (keys, times) in bench.by_process.items()}
    assert got == {("", 0): ((("old", 0), ("old", 1)), [2.0, 3.0]),
                   ("s1", 0): ((("p0", 0), ("p0", 1)), [4.0, 6.5]),  # cycle 0: 4.0 replaced 5.0; cycle 1: the retry
                   ("s1", 1): ((("p1", 0), ("p1", 1)), [7.0, 8.0])}
    assert list(got) == sorted(got)
