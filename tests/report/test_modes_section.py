"""The report's "SK's cost by execution mode" and the export's per-mode columns, from a run written by hand: every
number checked against the samples it was made from."""

from __future__ import annotations

import numpy as np
from fake_records import MANIFEST, _checked, _model, complexity
from helpers import write_run

from harness.report import render
from harness.results import load_run

PROCESSES, CYCLES = 3, 8
BASE_MS = {"fp32": 100.0, "fp32, channels_last": 90.0, "fp32, compile:default": 80.0}
MODES = {"fp32": {}, "fp32, channels_last": {"channels_last": True}, "fp32, compile:default": {"compile": "default"}}
# each model's time ÷ ResNeXt-50's, per mode
SLOWER = {"resnext50": {m: 1.0 for m in MODES},
          "sknet50": {"fp32": 1.16, "fp32, channels_last": 1.12, "fp32, compile:default": 1.05},
          "timm:skresnext50_32x4d": {"fp32": 1.20, "fp32, channels_last": 1.10, "fp32, compile:default": 1.04}}


def _timed(name: str, mode: str) -> dict:
    rng = np.random.default_rng(len(name) + len(mode))
    ms = BASE_MS[mode] * SLOWER[name][mode]
    # every cycle's sample at least the model's fastest: the fastest iterations keep the ratio exactly
    samples = [ms * (1.0 + (0.0 if c == 0 else float(rng.uniform(0.01, 0.2)))) for _ in range(PROCESSES)
               for c in range(CYCLES)]
    record = {"task_id": f"latency:{name}:{mode}", "kind": "latency", "status": "ok", **_model(name),
              "batch_size": 1, "device": "cpu", "dtype": "fp32", "channels_last": False, "compile": None,
              **MODES[mode], "samples_ms": samples, "cycles": list(range(CYCLES)) * PROCESSES,
              "processes": [p for p in range(PROCESSES) for _ in range(CYCLES)], "pairing": "s1",
              "process_runs": [{"index": p, "pairing": f"s1p{p}", "cycles": CYCLES} for p in range(PROCESSES)],
              "processes_planned": PROCESSES, "round": 0, "threads": 1, "group_size": 12}
    if mode.endswith("compile:default"):
        record.update(compile_s=[30.0, 5.0, 7.0], compiled_graphs=1, graph_breaks=0, graph_break_reasons=[],
                      compile_cache_hits=[0, 3, 3])
    return _checked(record)


def _run(tmp_path):
    records = [complexity("resnext50", 4_230_000_000, 12_000_000), complexity("sknet50", 4_467_000_000, 15_600_000),
               complexity("timm:skresnext50_32x4d", 4_500_000_000, 15_000_000)]
    records += [_timed(name, mode) for name in SLOWER for mode in MODES]
    records.append(_checked({"task_id": "latency:sknet50:bf16", "kind": "latency", "status": "skipped",
                             **_model("sknet50"), "batch_size": 1, "device": "cpu", "dtype": "bf16",
                             "channels_last": False, "compile": None,
                             "reason": "bf16 is only emulated on this CPU (no AVX512-BF16 or AMX, as oneDNN reports)"}))
    return write_run(tmp_path / "results" / "modes" / "r1", records, MANIFEST)


def _rows(text: str, heading: str) -> dict[str, list[str]]:
    block = text.split(heading, 1)[1].split("\n\n", 2)[1]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")]
                                             for line in block.splitlines()[2:])}


def test_the_section_gives_overhead_speed_up_and_compile_cost_per_mode(tmp_path):
    run_dir = _run(tmp_path)
    text = render(run_dir, reports_root=tmp_path / "reports").read_text()
    assert "## SK's cost by execution mode" in text
    over = _rows(text, "Overhead ÷ resnext50 per mode:")
    # sknet50 ÷ resnext50, then timm ÷ resnext50, then ours ÷ timm, per mode
    # (every process's estimate is the same here: an interval of no width is shown as the value alone)
    assert over["fp32"] == ["1.160", "1.200", "0.967"]
    assert over["fp32, compile:default"] == ["1.050", "1.040", "1.010"]
    assert over["bf16"][0].startswith("*skipped*")
    assert over["*MACs ratio*"][:2] == ["1.056", "1.064"]
    assert over["*activations ratio*"][:2] == ["1.300", "1.250"]
    speed = _rows(text, "Speed-up over the model's own eager fp32:")
    # eager time ÷ the mode's: ResNeXt 100 ÷ 80 ms compiled; SKNet (100 × 1.16) ÷ (80 × 1.05)
    assert [cell.split(" (")[0] for cell in speed["fp32, compile:default"][:2]] == ["1.250", f"{116 / 84:.3f}"]
    compiled = [line for line in text.splitlines() if line.startswith("| sknet50 | fp32, compile:default |")]
    assert compiled == ["| sknet50 | fp32, compile:default | 30.0 | 6.0 | 1 | 0 | 0, 3, 3 | – |"]
    assert "- **sknet50 ÷ resnext50** (MACs 1.056, activations 1.300): fp32 +16.0% time (+16.0 to +16.0%), " \
           "2.9× its MACs' +5.6%, below its activations' +30.0%" in text
    assert "¹ skipped: bf16 is only emulated on this CPU" in text
    assert (tmp_path / "reports" / "modes" / "r1_modes.png").stat().st_size > 1000


def test_the_export_has_a_row_per_model_mode_and_batch_with_the_ratio_to_eager(tmp_path):
    frame = load_run(_run(tmp_path)).frame("latency")
    assert len(frame) == 9 and set(frame["mode"]) == set(MODES)
    row = frame[(frame["label"] == "sknet50") & (frame["mode"] == "fp32, compile:default")].iloc[0]
    assert row["ratio_base"] == np.float64(1.05) or abs(row["ratio_base"] - 1.05) < 1e-12
    assert abs(row["ratio_eager"] - 84 / 116) < 1e-12 and row["ratio_eager_processes"] == PROCESSES
    assert row["compile_s"] == 30.0 and row["compile_s_later"] == 6.0 and row["compiled_graphs"] == 1
    eager = frame[(frame["label"] == "sknet50") & (frame["mode"] == "fp32")].iloc[0]
    assert eager["eager_mode"] == "fp32" and np.isnan(eager["ratio_eager"])
