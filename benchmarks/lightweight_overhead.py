"""SE / SK time overhead over the plain network beside the MFLOPs overhead, from ``lightweight_cpu`` run dirs.

For every attention model of a run (registry ``plain`` names its plain counterpart, e.g. ``shufflenetv2_050_sk``
→ ``shufflenetv2_050``), per batch size and thread count: the plain and attention p50 latency with the spread
of the samples (IQR / p50), the latency ratio median(attention) / median(plain) with its bootstrap 95% CI
(``harness.measure.stats.ratio_of_medians_ci``, rounds pooled), the range of the per-round ratios, the
throughput ratio (plain img/s ÷ attention img/s, so > 1 means slower, like the latency ratio) and the MACs
ratio from the run's complexity records (fvcore). Prints one markdown table (the README's).

    python benchmarks/lightweight_overhead.py results/lightweight_cpu/RUN_ALL results/lightweight_cpu/RUN_ONE
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.measure.stats import ratio_of_medians_ci, summarize
from harness.models.registry import get_entry
from harness.results import load_run


def _samples(records: list[dict[str, Any]]) -> list[float]:
    return [x for r in records for x in r["samples_ms"]]


def _rate(records: list[dict[str, Any]]) -> float:
    return sum(r["images"] for r in records) / sum(sum(r["loop_samples_s"]) for r in records)


def _per_round_ratios(plain: list[dict[str, Any]], attn: list[dict[str, Any]]) -> list[float]:
    by_round = {r["round"]: statistics.median(r["samples_ms"]) for r in plain}
    return [statistics.median(r["samples_ms"]) / by_round[r["round"]] for r in attn if r["round"] in by_round]


def _group(records: list[dict[str, Any]], kind: str) -> dict[tuple[str, int], list[dict[str, Any]]]:
    out: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["kind"] == kind and r["status"] == "ok" and not r.get("options"):
            out[(r["model"], r["batch_size"])].append(r)
    return out


def rows(run_dir: Path) -> list[list[str]]:
    run = load_run(run_dir)
    ok = [r for r in run.records if r["status"] == "ok"]
    macs = {r["model"]: r["macs"] for r in ok if r["kind"] == "complexity" and not r.get("options")}
    latency, throughput = _group(ok, "latency"), _group(ok, "throughput")
    out = []
    for (model, bs), attn in sorted(latency.items()):
        plain_name = get_entry(model).plain
        if plain_name is None or (plain_name, bs) not in latency:
            continue
        plain = latency[(plain_name, bs)]
        p, a = summarize(_samples(plain)), summarize(_samples(attn))
        ratio, low, high = ratio_of_medians_ci(_samples(plain), _samples(attn))
        per_round = _per_round_ratios(plain, attn)
        tp_plain, tp_attn = throughput.get((plain_name, bs)), throughput.get((model, bs))
        tp = f"{_rate(tp_plain) / _rate(tp_attn):.3f}" if tp_plain and tp_attn else "–"
        mac_ratio = f"{macs[model] / macs[plain_name]:.3f}" if model in macs and plain_name in macs else "–"
        out.append([model, str(attn[0]["threads"]), str(bs), f"{p.median:.2f} ({p.iqr / p.median:.0%})",
                    f"{a.median:.2f} ({a.iqr / a.median:.0%})", f"**{ratio:.3f}** [{low:.3f}, {high:.3f}]",
                    f"{min(per_round):.3f}–{max(per_round):.3f} ({len(per_round)})", tp, mac_ratio,
                    f"{p.n} / {a.n}"])
    return out


HEADERS = ["model", "threads", "batch", "plain p50 ms (IQR/p50)", "p50 ms (IQR/p50)", "latency ÷ plain [95% CI]",
           "per-round ÷ plain (rounds)", "throughput: plain ÷ this", "MACs ÷ plain", "samples plain / this"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    table = [r for d in args.run_dirs for r in rows(d)]
    print("| " + " | ".join(HEADERS) + " |")
    print("|" + "---|" * len(HEADERS))
    for r in table:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
