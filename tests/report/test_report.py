"""The report on small hand-written run dirs: tables against the records' numbers, ✓/✗ against the paper's
tolerances, SYNTHETIC labels, and error rows. Nothing is measured here."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import pytest
from helpers import write_run

from harness.models.registry import canonical_options
from harness.report import SECTIONS, render
from harness.report.complexity import GMACS_TOL_PCT, PARAMS_TOL_PCT


def _model(name: str, label: str | None = None, **options) -> dict:
    return {"model": name, "label": label or name, "options": options,
            "canonical_options": canonical_options(name, options)}


def _complexity(name: str, params: int, macs: int, size=(3, 224, 224), **options) -> dict:
    return {"task_id": f"complexity:{name}", "kind": "complexity", "status": "ok", **_model(name, **options),
            "params": params, "params_trainable": params, "macs": macs, "input_size": list(size),
            "macs_counter": {"name": "fvcore", "version": "0.1.5", "convention": "1 multiply-add = 1 MAC",
                             "uncounted_ops": {"aten::mean": 3}}}


def _row(text: str, heading: str, first_cell: str) -> list[str]:
    block = text.split(heading, 1)[1].split("\n## ", 1)[0]
    if heading.startswith("### "):
        block = block.split("\n### ", 1)[0]
    line = next(x for x in block.splitlines() if x.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def _render(tmp_path: Path, records: list[dict], **manifest) -> str:
    run_dir = write_run(tmp_path / "results" / "s" / "r1", records, manifest or None)
    return render(run_dir, reports_root=tmp_path / "reports").read_text()


def test_sections_are_an_explicit_list_of_functions():
    assert [s.__module__ for s in SECTIONS] == ["harness.report.complexity", "harness.report.latency",
                                                "harness.report.modes", "harness.report.cost", "harness.report.optime",
                                                "harness.report.training",
                                                "harness.report.eval", "harness.report.attention"]


def test_complexity_rows_deltas_and_verdicts(tmp_path):
    records = [
        _complexity("resnext50", 25_028_904, 4_259_381_248),  # timm's exact counts: within tolerance
        _complexity("sknet50", 28_000_000, 4_497_132_736),  # +1.82% params: outside ±1%
        _complexity("senet29", 25_660_000, 2_500_000_000, size=(3, 32, 32)),  # the documented Table 5 gap
        {**_complexity("resnext50", 1_000, 2_000, size=(3, 64, 64)), "label": "tiny", "task_id": "c:tiny"},
    ]
    text = _render(tmp_path, records)
    rx = _row(text, "### P Table 2", "ResNeXt-50")
    assert rx[1:5] == ["resnext50", "25.00", "25.029", "+0.12%"] and rx[5:8] == ["4.24", "4.259", "+0.46%"]
    assert rx[-1] == "✓"
    sk = _row(text, "### P Table 2", "SKNet-50")
    assert sk[3:5] == ["28.000", "+1.82%"] and sk[-1] == "✗" and abs(1.82) > PARAMS_TOL_PCT
    assert _row(text, "### P Table 5", "SENet-29")[-1] == "✗"
    assert "**SENet-29 / SKNet-29 (Table 5).**" in text  # the gap is explained, not hidden
    assert _row(text, "### P Table 2", "AttentionNeXt-56")[1] == "not built¹"
    # matched rows: T1 ×2, T2 ×2, T3 ×2, T5 ×1, T7 K3 (resnext50), RX ResNeXt-50 → count the verdicts
    within, compared = map(int, re.search(r"\*\*(\d+) of (\d+) paper rows within tolerance", text).groups())
    verdicts = [line.rstrip(" |").rsplit("|", 1)[1].strip() for line in text.splitlines()
                if line.startswith("| ") and line.rstrip().endswith(("✓ |", "✗ |"))]
    assert (within, compared) == (verdicts.count("✓"), len(verdicts)) and 0 < within < compared
    others = _row(text, "### Models without a paper row", "tiny")
    assert others == ["tiny", "resnext50", "0.001", "0.000", "3×64×64"]
    assert "`aten::mean`" in text and GMACS_TOL_PCT == 1.5


def _latency(label: str, name: str, samples: list[float], rnd: int = 0) -> dict:
    return {"task_id": f"latency:{label}:r{rnd}", "kind": "latency", "status": "ok", **_model(name, label),
            "batch_size": 1, "device": "cpu", "dtype": "fp32", "channels_last": False, "compile": None,
            "samples_ms": samples, "warmup_ms": [9.0], "round": rnd, "wall_s": sum(samples) / 1e3}


def test_latency_statistics_ratios_and_unstable_flag(tmp_path):
    base = [10.0, 10.2, 9.8, 10.1, 9.9, 10.0]
    sk = [12.0, 12.3, 11.8, 12.1, 11.9, 12.0]
    noisy = [10.0, 30.0, 10.0, 30.0, 10.0, 30.0]
    records = [_latency("resnext50", "resnext50", base[:3], 0), _latency("resnext50", "resnext50", base[3:], 1),
               _latency("sknet50", "sknet50", sk), _latency("noisy", "senet50", noisy),
               _complexity("resnext50", 25_028_904, 4_259_381_248), _complexity("sknet50", 27_479_784, 4_497_132_736)]
    text = _render(tmp_path, records)
    row = _row(text, "### batch 1 · fp32 · cpu", "resnext50")
    assert row[1:4] == ["6", "2", f"{statistics.median(base):.2f}"] and row[8] == "1.000"
    assert row[5] == "–" and "p99 is shown from 100 samples on" in text
    sk_row = _row(text, "### batch 1 · fp32 · cpu", "sknet50")
    assert sk_row[3] == f"{statistics.median(sk):.2f}"
    ratio, ci = sk_row[8].split(" ", 1)
    # records without cycles (made before the paired engine) are compared unpaired, and say so
    assert ratio == f"{statistics.median(sk) / statistics.median(base):.3f}" and ci.startswith("(")
    assert ci.endswith("*unpaired*")
    ci = ci.removesuffix(" *unpaired*")
    low, high = (float(x) for x in ci.strip("()").split("–"))
    assert low < float(ratio) < high
    assert sk_row[9:11] == [f"{4.47 / 4.24:.3f}", f"{4_497_132_736 / 4_259_381_248:.3f}"]  # paper and ours
    assert sk_row[11:14] == ["resnext50", sk_row[8], f"{4_497_132_736 / 4_259_381_248:.3f}"]  # its plain network
    assert _row(text, "### batch 1 · fp32 · cpu", "noisy ⚠")[0] == "noisy ⚠"
    assert "⚠ unstable (CV ≥ 10%): noisy" in text


def test_throughput_is_images_over_loop_time(tmp_path):
    rec = {**_latency("resnext50", "resnext50", [100.0, 100.0]), "kind": "throughput", "batch_size": 8,
           "task_id": "throughput:resnext50", "loop_samples_s": [0.4, 0.4], "images": 64, "samples_per_s": 80.0}
    peak = {"task_id": "peak", "kind": "peak", "status": "ok", "model": None, "label": "peak fp32",
            "dtype": "fp32", "peak_gmacs_per_s": 100.0}
    text = _render(tmp_path, [rec, peak, _complexity("resnext50", 25_028_904, 4_259_381_248)])
    row = _row(text, "## Throughput (inference)", "resnext50")
    assert row[1:4] == ["80.0", "80.0–80.0", "1.000"]  # two identical loops: the interval is the value
    assert row[8:10] == [f"{4_259_381_248 * 80 / 1e9:.1f}", "341%"]
    assert "Device peak (matmul): fp32: 100.0 GMAC/s" in text


def _train(label: str, name: str, seed: int, err: float, *, synthetic: bool) -> dict:
    curve = [{"epoch": 1, "test_acc": 1 - err / 100, "img_per_s": 100.0, "train_loss": 1.0}]
    return {"task_id": f"train:{label}:seed{seed}", "kind": "train", "status": "ok", **_model(name, label),
            "seed": seed, "dataset": "cifar10", "synthetic": synthetic, "epochs": 1, "top1_err": err,
            "train_time_s": 10.0, "curve": curve, "params": 1_000_000, "macs": 50_000_000, "device": "cpu",
            "config": {"epochs": 1, "schedule": "cosine", "batch_size": 32, "lr": 0.05, "weight_decay": 5e-4}}


@pytest.mark.parametrize("synthetic", [True, False])
def test_training_table_seeds_and_synthetic_label(tmp_path, synthetic):
    records = [_train("rx", "resnext29_16x32d", s, e, synthetic=synthetic) for s, e in enumerate([10.0, 12.0])]
    records += [_train("sk", "sknet29", s, e, synthetic=synthetic) for s, e in enumerate([8.0, 9.0])]
    text = _render(tmp_path, records)
    assert ("SYNTHETIC" in text) is synthetic
    rx = _row(text, "## Training", "rx ⚠" if synthetic else "rx")
    assert rx[1] == "3.87"  # [P] Table 5, ResNeXt-29 16×32d on CIFAR-10
    assert rx[2] == f"11.00 ± {statistics.stdev([10.0, 12.0]):.2f} (n=2)"
    pair = _row(text, "## Training", "rx − sk")
    assert pair[2] == "+2.50" and pair[4] in {"significant", "not significant at this budget"}


def test_errors_and_skips_are_grouped(tmp_path):
    err = {"kind": "latency", "status": "error", "error": {"type": "MeasurementError", "message": "boom"},
           "batch_size": 1}
    skip = {"kind": "train", "status": "skipped", "reason": "cifar10 not found", "batch_size": 128}
    records = [{**err, "task_id": f"e{i}", **_model("sknet50", f"m{i}")} for i in range(2)]
    records += [{**skip, "task_id": f"s{i}", **_model("sknet29", f"t{i}")} for i in range(3)]
    text = _render(tmp_path, records)
    assert _row(text, "## Errors and skipped tasks", "latency") == [
        "latency", "m0, m1", "1", "error ×2", "MeasurementError: boom"]
    assert _row(text, "## Errors and skipped tasks", "train")[3] == "skipped ×3"
    assert "| tasks | 0 ok, 2 error, 3 skipped |" in text
    assert "Skipped: cifar10 not found" in text


def test_a_section_that_breaks_is_not_silently_dropped(tmp_path, monkeypatch):
    import harness.report as report

    def broken(run, assets, stem):
        raise ImportError("a section's import broke")

    monkeypatch.setattr(report, "SECTIONS", (broken,))
    with pytest.raises(ImportError, match="a section's import broke"):
        _render(tmp_path, [_complexity("resnext50", 1, 1)])


def test_a_run_merged_from_several_machines_names_the_machine_of_every_timing_table(tmp_path):
    """Shards timed on different machines: each table is one machine's (a timing group never spans shards),
    and its heading says which; one machine for all shards adds nothing."""
    from fake_records import MANIFEST, latency

    from harness.results import merge_runs

    def shard(index: int, host: str, batch: int) -> Path:
        manifest = {**MANIFEST, "run_id": f"s{index}", "suite_name": "t", "suite": {"name": "t"},
                    "shard": {"index": index, "count": 2},
                    "environment": {**MANIFEST["environment"], "hostname": host}}
        records = [dict(latency(name, name, [10.0 + i, 11.0, 12.0]), batch_size=batch,
                        task_id=f"latency:{name}:b{batch}", shard={"index": index, "count": 2})
                   for i, name in enumerate(["resnext50", "sknet50"])]
        return write_run(tmp_path / "shards" / f"s{index}", records, manifest)

    two = merge_runs([shard(0, "node-a", 1), shard(1, "node-b", 8)], out_root=tmp_path / "merged")
    text = render(two, out=tmp_path / "two.md").read_text()
    assert "### batch 1 · fp32 · cpu · measured on node-a (Test CPU; no GPU)" in text
    assert "### batch 8 · fp32 · cpu · measured on node-b (Test CPU; no GPU)" in text
    one = merge_runs([shard(0, "node-a", 1), shard(1, "node-a", 8)], out_root=tmp_path / "merged1")
    text = render(one, out=tmp_path / "one.md").read_text()
    assert "### batch 1 · fp32 · cpu\n" in text and "measured on" not in text


def test_a_run_of_many_timing_tables_plots_the_first_ones_and_says_so(tmp_path, monkeypatch):
    """A figure of hundreds of panels is unreadable and takes minutes to draw: the plots show the first
    ``MAX_PANELS`` tables, and the report says how many there are; every table is still in the text."""
    from harness.report import plots

    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, path, **kw: (drawn.append(len(fig.axes)), path)[1])
    tables = plots.MAX_PANELS + 2
    records = [_complexity("resnext50", 25_028_904, 4_259_381_248), _complexity("sknet50", 27_479_784, 4_497_132_736)]
    for batch in range(1, tables + 1):
        for name in ("resnext50", "sknet50"):
            records.append({**_latency(name, name, [10.0, 10.5, 9.5, 10.2]), "batch_size": batch,
                            "task_id": f"latency:{name}:bs{batch}"})
    text = _render(tmp_path, records)
    assert text.count("### batch ") == tables
    latency_figure, overhead_figure = drawn[-2:]
    assert latency_figure == overhead_figure == plots.MAX_PANELS  # complexity's figure is drawn first
    assert text.count(f"the plot shows the first {plots.MAX_PANELS} of {tables}") == 2


def test_a_frame_table_is_a_markdown_table_of_its_display_cells():
    """Every cell as it is shown: None and NaN as "–", a pipe escaped, a line break a space, no padding (a changed
    number changes one line of a diff); one alignment mark per column."""
    import pandas as pd

    from harness.report.markdown import frame_table

    frame = pd.DataFrame({"model": ["sknet50", "a|b", None], "p50 ms": ["1.25", float("nan"), " 3 "],
                          "note": ["two\nlines", "", "✓"]})
    assert frame_table(frame, align="lrc") == [
        "| model | p50 ms | note |",
        "|:--|--:|:-:|",
        "| sknet50 | 1.25 | two lines |",
        "| a\\|b | – |  |",
        "| – | 3 | ✓ |",
    ]
    assert frame_table(frame)[1] == "|:--|--:|--:|"
