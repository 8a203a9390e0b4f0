"""SE / SK time overhead over the plain network beside the MFLOPs overhead, from ``lightweight_cpu`` run dirs.

For every attention model of a run (registry ``plain`` names its plain counterpart, e.g. ``shufflenetv2_050_sk``
→ ``shufflenetv2_050``), per batch size and thread count: the plain and attention p50 latency with the spread
of the samples (IQR / p50), the paired latency ratio (the median of per-cycle ratios, the two timed together
by the harness's one engine) with its bootstrap 95% CI over cycles, the paired throughput ratio turned into
time (plain img/s ÷ attention img/s, so > 1 means slower, like the latency ratio) and the MACs ratio from the
run's complexity records (fvcore). Every number comes from the run's frames (``load_run(...).frame``), the same
code the report uses. Prints one markdown table (the one in docs/lightweight.md).

    python benchmarks/lightweight_overhead.py results/lightweight_cpu/RUN_TWO results/lightweight_cpu/RUN_ONE
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.report.markdown import table as markdown_table
from harness.results import load_run

HEADERS = ["model", "threads", "batch", "plain p50 ms (IQR/p50)", "p50 ms (IQR/p50)", "latency ÷ plain [95% CI]",
           "cycles", "throughput: plain ÷ this [95% CI]", "MACs ÷ plain"]


def _present(value: object) -> bool:
    return value is not None and value == value


def rows(run_dir: Path) -> list[list[str]]:
    run = load_run(run_dir)
    latency, throughput = run.frame("latency"), run.frame("throughput")
    out = []
    for _, r in latency.iterrows():
        if not _present(r["ratio_plain"]) or r["options"] != "{}":
            continue
        plain = latency[(latency["label"] == r["plain"]) & (latency["batch_size"] == r["batch_size"])].iloc[0]
        tp = throughput[(throughput["label"] == r["label"]) & (throughput["batch_size"] == r["batch_size"])]
        tp_cell = "–"
        if len(tp) and _present(tp.iloc[0]["ratio_plain"]):
            t = tp.iloc[0]
            low, high = 1 / t["ratio_plain_ci_high"], 1 / t["ratio_plain_ci_low"]
            tp_cell = f"{1 / t['ratio_plain']:.3f} [{low:.3f}, {high:.3f}]"
        out.append([r["label"], str(r["threads"]), str(r["batch_size"]),
                    f"{plain['p50_ms']:.2f} ({plain['iqr_ms'] / plain['p50_ms']:.0%})",
                    f"{r['p50_ms']:.2f} ({r['iqr_ms'] / r['p50_ms']:.0%})",
                    f"**{r['ratio_plain']:.3f}** [{r['ratio_plain_ci_low']:.3f}, {r['ratio_plain_ci_high']:.3f}]",
                    str(int(r["ratio_plain_pairs"])) if _present(r["ratio_plain_pairs"]) else "unpaired",
                    tp_cell,
                    f"{r['macs_ratio_plain']:.3f}" if _present(r["macs_ratio_plain"]) else "–"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    table = [r for d in args.run_dirs for r in rows(d)]
    print("\n".join(markdown_table(HEADERS, table)) if table else "no attention model with its plain counterpart in "
          "these runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
