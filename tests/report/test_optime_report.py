"""The "Where the time goes" section on hand-written op_time records: medians per kind and shares, the paired extra
per kind over the plain network, MACs / activations ratios from the complexity records, errors, absent records."""

from __future__ import annotations

from fake_records import MANIFEST, complexity
from helpers import write_run

from harness.report import render

KINDS = ["conv.1x1", "conv.grouped", "conv.dilated", "attn.pool", "eltwise", "python"]


def _model(name: str, plain: str | None, kinds: dict[str, list[float]], unprofiled: list[float],
           calls: dict[str, int] | None = None) -> dict:
    full = {k: kinds.get(k, [0.0, 0.0, 0.0]) for k in KINDS}
    total = [sum(v[i] for v in full.values()) for i in range(3)]
    return {"model": name, "label": name, "options": {}, "canonical_options": None, "plain": plain,
            "input_size": [3, 224, 224], "kinds_ms": full, "total_ms": total, "host_ms": total,
            "unprofiled_ms": unprofiled, "warmup_ms": [50.0], "ops_ms": {}, **({"op_calls": calls} if calls else {})}


def _record(errors: dict | None = None) -> dict:
    rx = _model("resnext50", None, {"conv.1x1": [40.0, 41.0, 39.0], "conv.grouped": [10.0, 10.0, 10.0],
                                    "eltwise": [2.0, 2.0, 2.0], "python": [8.0, 8.0, 8.0]}, [55.0, 56.0, 57.0],
            {"conv.1x1": 36, "conv.grouped": 16, "eltwise": 16})
    # SK: the same first-branch convs, 1×1 convs 4 ms slower in the median but noisy (CI below 0), a dilated
    # branch of 10 ms, pooling 1, select 3 more, python 2 more
    sk = _model("sknet50", "resnext50", {"conv.1x1": [48.0, 37.0, 43.0], "conv.grouped": [10.0, 10.0, 10.0],
                                         "conv.dilated": [10.0, 10.0, 10.0], "attn.pool": [1.0, 1.0, 1.0],
                                         "eltwise": [5.0, 5.0, 5.0], "python": [10.0, 10.0, 10.0]},
                [70.0, 71.0, 72.0], {"conv.1x1": 36, "conv.grouped": 16, "conv.dilated": 16, "attn.pool": 32,
                                     "eltwise": 96})
    return {"task_id": "op_time:resnext50+sknet50:x:bs1:fp32:cpu", "kind": "op_time", "status": "ok", "model": None,
            "label": "op time: resnext50, sknet50", "options": {}, "device": "cpu", "batch_size": 1,
            "models": {"resnext50": rx, "sknet50": sk}, "order": ["resnext50", "sknet50"], "errors": errors or {},
            "iterations": 3, "warmup": 1, "unprofiled_iterations": 3, "dtype": "fp32", "channels_last": False,
            "compile": None, "kinds": KINDS, "timer": "profiler_cpu_self_time", "threads": 1, "caveat": "…"}


def _row(text: str, heading: str, first: str) -> list[str]:
    block = text.split(heading, 1)[1].split("\n#", 1)[0]
    line = next(x for x in block.splitlines() if x.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _render(tmp_path, records) -> str:
    run_dir = write_run(tmp_path / "results" / "s" / "r1", records, MANIFEST)
    return render(run_dir, reports_root=tmp_path / "reports").read_text()


def test_kinds_per_model_and_the_extra_over_plain(tmp_path):
    records = [complexity("resnext50", 4_000 * 10**6, 100 * 10**6),
               complexity("sknet50", 4_200 * 10**6, 130 * 10**6), _record()]
    text = _render(tmp_path, records)
    assert text.index("## Where the extra cost goes") < text.index("## Where the time goes: operator kinds")
    heading = "### batch 1 · cpu · fp32 · 1 thread(s) · 3 paired iterations"
    assert _row(text, heading, "conv.1x1") == ["conv.1x1", "40.00 (67%)", "43.00 (54%)"]
    assert _row(text, heading, "**sum of kinds**") == ["**sum of kinds**", "60.00", "79.00"]
    assert _row(text, heading, "unprofiled iteration (median)")[1:] == ["56.00", "71.00"]
    extra = "#### sknet50 over resnext50"
    # the summed extra is 20 ms: the dilated branch 10 (50%), 1×1 4 (20%), select 3 (15%), python 2, pool 1
    assert _row(text, extra, "conv.dilated") == ["conv.dilated", "0.00", "10.00", "+10.00", "+16.7%", "+50%", "+16"]
    one = _row(text, extra, "conv.1x1")
    assert one[3].startswith("+4.00 (-") and one[4:] == ["+6.7%", "+20%", "+0"]  # its interval reaches below 0
    assert _row(text, extra, "**sum of kinds**")[3:] == ["+20.00", "+33.3%", "100%", "+128"]
    assert _row(text, extra, "python")[-1] == "–"  # the interpreter calls no ops of its own
    # per-cycle totals differ by 24, 12 and 20 ms
    assert _row(text, extra, "profiled iteration (paired median Δ)")[3].startswith("+20.00 (+")
    assert _row(text, extra, "unprofiled iteration (paired median Δ)")[1:4] == ["56.00", "71.00", "+15.00"]
    assert _row(text, heading, "ops called per iteration")[1:] == ["68", "196"]
    summary = next(x for x in text.splitlines() if x.startswith("- **sknet50 over resnext50**"))
    assert "+20.00 ms per iteration profiled (+31.7%; unprofiled +26.8%) vs MACs +5.0%, activations +30.0%" in summary
    # conv.1x1's 4 ms are within its noise: not named as a cause
    assert summary.endswith("(of the kinds whose 95% CI is above 0): conv.dilated +10.00 ms (50%), "
                            "eltwise +3.00 ms (15%), python +2.00 ms (10%).")
    assert "Profiled ÷ unprofiled iteration" in text and "resnext50 +7.1%" in text


def test_failed_models_and_absent_records(tmp_path):
    err = {"senet50": {"model": "senet50", "label": "senet50", "plain": "resnext50",
                       "error": {"type": "MeasurementError", "message": "out of memory"}}}
    text = _render(tmp_path, [_record(errors=err)])
    assert "- senet50: not profiled (MeasurementError: out of memory)" in text
    assert "vs MACs –, activations –" in text  # no complexity records: the ratios are absent, not invented
    failed = {"task_id": "op_time:a", "kind": "op_time", "status": "error", "model": None, "label": "op time: a",
              "error": {"type": "MeasurementError", "message": "no model of the group could run"}}
    text = _render(tmp_path / "b", [failed])
    assert "## Where the time goes" not in text and "no model of the group could run" in text
    assert "## Where the time goes" not in _render(tmp_path / "c", [complexity("resnext50", 10, 1)])
