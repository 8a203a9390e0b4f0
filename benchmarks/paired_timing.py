"""Does the headline reproduce? The default suite run again and again, quiet and beside a CPU-bound process.

Each run is ``python -m harness run suites/sknet_vs_senet.yaml --device cpu --threads T`` (the harness's paired
engine: the four models timed together, one iteration or loop of each per cycle), followed in the same
condition by the method the harness used before it, reproduced here: every model timed on its own, one model
after another in rounds (3 latency rounds, 2 throughput rounds, the old suite's windows), its ratios those of
pooled medians / pooled images per second with independent bootstraps. Conditions alternate quiet / loaded
(a ``python -c "while True: pass"`` process beside the run) so a drift of the machine hits both alike; the
``--quiet`` and ``--loaded`` runs use one thread, so both conditions time the same work, and ``--auto`` more
runs (one quiet, one loaded each) show what the default thread choice does.

For ``sknet50 ÷ resnext50``, ``senet50 ÷ resnext50`` and ``sknet50 ÷ timm:skresnext50_32x4d`` it prints, per
run and overall, the latency (batch 1) and throughput (batch 8) ratios with their 95% CIs and the load that the
run recorded, and checks the acceptance limits of the paired method (spread over quiet runs, over all runs, CI
widths, loaded vs quiet medians, the suite's wall time).

    python benchmarks/paired_timing.py --out results/paired_timing/paired_timing.json     # ~30 min on 2 cores
    python benchmarks/paired_timing.py --table results/paired_timing/paired_timing.json --readme README.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "suites" / "sknet_vs_senet.yaml"
MODELS = ("resnext50", "senet50", "sknet50", "timm:skresnext50_32x4d")
PAIRS = (("sknet50", "resnext50"), ("senet50", "resnext50"), ("sknet50", "timm:skresnext50_32x4d"))
MARKERS = ("<!-- paired-timing:start -->", "<!-- paired-timing:end -->")
# the acceptance limits: (spread over quiet runs, over all runs, each CI width, loaded median vs quiet median)
LIMITS = {"latency": (0.02, 0.04, 0.04, 0.02), "throughput": (0.03, 0.06, 0.10, 0.03)}
# the method before the paired engine: the old suite's windows, per model and round
SEPARATE = {"latency": {"batch": 1, "rounds": 3, "min_time_s": 1.0, "max_time_s": 8 / 3, "min_samples": 7},
            "throughput": {"batch": 8, "rounds": 2, "min_time_s": 1.5, "max_time_s": 4.0, "min_samples": 3}}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quiet", type=int, default=5, help="quiet runs at --threads 1")
    p.add_argument("--loaded", type=int, default=5, help="runs beside a CPU-bound process at --threads 1")
    p.add_argument("--auto", type=int, default=1, help="quiet + loaded pairs of runs at the default --threads auto")
    p.add_argument("--suite", type=Path, default=SUITE)
    p.add_argument("--no-separate", action="store_true", help="skip the per-model (old) method")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to every `harness run` (e.g. --set latency.min_samples=60)")
    p.add_argument("--workdir", type=Path, help="run dirs go here (default: a temporary folder)")
    p.add_argument("--out", type=Path, help="JSON summary to write")
    p.add_argument("--table", type=Path, metavar="JSON", help="print the tables of a summary (no measuring)")
    p.add_argument("--readme", type=Path, help="with --table: write them between the paired-timing markers")
    p.add_argument("--separate-only", nargs=2, metavar=("THREADS", "JSON"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- the paired engine: the harness itself ----------------------------------------------------------------


def _ratios_of_run(run_dir: Path) -> dict[str, Any]:
    from harness.results import load_run
    from harness.results import summaries as S

    run = load_run(run_dir)
    out: dict[str, Any] = {"threads": (run.manifest.get("threads") or {}).get("threads")}
    for kind in ("latency", "throughput"):
        benches = {b.label: b for b in S.benchmarks(run, kind)}
        loads = [r["load"] for r in run.of_kind(kind) if isinstance(r.get("load"), dict)]
        out[kind] = {"ratios": {}, "n": {label: int(b.samples_ms.size) for label, b in benches.items()},
                     "other_cores": max((x["other_cores"] for x in loads), default=None),
                     "loadavg_1m": max((x["loadavg_1m"] for x in loads), default=None)}
        for num, den in PAIRS:
            if num in benches and den in benches:
                r = S.ratio(benches[den], benches[num])
                out[kind]["ratios"][f"{num} ÷ {den}"] = None if r is None else [r.value, r.low, r.high, r.pairs]
    return out


def _paired_run(workdir: Path, suite: Path, threads: str, overrides: list[str]) -> dict[str, Any]:
    start = time.perf_counter()
    sets = [w for o in overrides for w in ("--set", o)]
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(suite), "--device", "cpu", "--threads", threads,
                           "--out", str(workdir / "results"), "--reports", str(workdir / "reports"), "--no-progress",
                           *sets], capture_output=True, text=True, cwd=ROOT)
    wall_s = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"harness run failed (exit {done.returncode}): {done.stderr[-800:]}")
    run_dir = Path(done.stdout.splitlines()[0])
    return {"run_dir": str(run_dir), "wall_s": wall_s, **_ratios_of_run(run_dir)}


# --- the method before: every model timed on its own, one after another --------------------------------------


def separate(threads: int) -> dict[str, Any]:
    """Each model timed alone in turn (rounds), ratios of pooled statistics: what the harness did before."""
    import numpy as np
    import torch

    from harness import create_model
    from harness.measure.load import LoadMonitor
    from harness.measure.mode import Mode
    from harness.measure.sampling import SampleWindow
    from harness.measure.stats import bootstrap_ci, ratio_of_medians_ci
    from harness.measure.timer import prepare_benchmark

    torch.set_num_threads(threads)
    out: dict[str, Any] = {}
    for kind, cfg in SEPARATE.items():
        benches = {}
        for name in MODELS:
            torch.manual_seed(0)
            benches[name] = prepare_benchmark(create_model(name), input_shape=(3, 224, 224), batch_size=cfg["batch"],
                                              device="cpu", mode=Mode())
            benches[name].warmup(2)
        window = SampleWindow(cfg["min_time_s"], cfg["max_time_s"], cfg["min_samples"], 10_000)
        samples: dict[str, list[float]] = {name: [] for name in MODELS}
        with LoadMonitor() as monitor:
            for _ in range(cfg["rounds"]):
                for name in MODELS:
                    samples[name] += benches[name].sample(window)  # one model alone, then the next
        ratios = {}
        for num, den in PAIRS:
            a, b = np.asarray(samples[den]), np.asarray(samples[num])
            if kind == "latency":
                ratios[f"{num} ÷ {den}"] = list(ratio_of_medians_ci(a, b)) + [0]
            else:  # images/s ratio = mean s/image of den ÷ mean s/image of num
                value = float(a.mean() / b.mean())
                low, high = bootstrap_ci((a, b), lambda x, y, axis=-1: np.mean(x, axis=axis) / np.mean(y, axis=axis))
                ratios[f"{num} ÷ {den}"] = [value, low, high, 0]
        out[kind] = {"ratios": ratios, "n": {k: len(v) for k, v in samples.items()},
                     "other_cores": monitor.load.other_cores, "loadavg_1m": monitor.load.loadavg_1m}
    return out


def _separate_run(workdir: Path, threads: int, index: int) -> dict[str, Any]:
    path = workdir / f"separate_{index:02d}.json"
    done = subprocess.run([sys.executable, __file__, "--separate-only", str(threads), str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"separate timing failed (exit {done.returncode}): {done.stderr[-800:]}")
    return json.loads(path.read_text())


# --- the plan, the summary, the tables ------------------------------------------------------------------------


def _plan(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(condition, threads) in the order run: quiet and loaded alternate, then the automatic thread choice."""
    quiet, loaded = [("quiet", "1")] * args.quiet, [("loaded", "1")] * args.loaded
    plan = [run for pair in zip(quiet, loaded, strict=False) for run in pair]
    plan += quiet[len(loaded):] + loaded[len(quiet):]
    return plan + [("quiet", "auto"), ("loaded", "auto")] * args.auto


def _spread(values: list[float]) -> float | None:
    return max(values) / min(values) - 1 if values else None


def summarise(runs: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """Per kind and pair, over the one-thread runs: spreads, CI widths and loaded vs quiet, against the limits."""
    out: dict[str, Any] = {}
    fixed = [r for r in runs if r["threads_arg"] == "1" and method in r]
    for kind, (lim_quiet, lim_all, lim_ci, lim_loaded) in LIMITS.items():
        for pair in (f"{a} ÷ {b}" for a, b in PAIRS):
            rows = [(r["condition"], r[method][kind]["ratios"].get(pair)) for r in fixed]
            rows = [(c, x) for c, x in rows if x]
            if not rows:
                continue
            quiet = [x[0] for c, x in rows if c == "quiet"]
            loaded = [x[0] for c, x in rows if c == "loaded"]
            widths = [(x[2] - x[1]) / x[0] for _, x in rows]
            shift = statistics.median(loaded) / statistics.median(quiet) - 1 if quiet and loaded else None
            spread_q, spread_all = _spread(quiet), _spread(quiet + loaded)
            out[f"{kind}: {pair}"] = {
                "quiet_median": statistics.median(quiet) if quiet else None,
                "loaded_median": statistics.median(loaded) if loaded else None,
                "spread_quiet": spread_q, "spread_all": spread_all, "max_ci_width": max(widths),
                "loaded_vs_quiet": shift,
                "meets": {"spread_quiet": spread_q is not None and spread_q <= lim_quiet,
                          "spread_all": spread_all is not None and spread_all <= lim_all,
                          "ci_width": max(widths) <= lim_ci,
                          "loaded_vs_quiet": shift is not None and abs(shift) <= lim_loaded}}
    return out


def _cell(x: list[float] | None) -> str:
    return "–" if not x else f"{x[0]:.3f} ({x[1]:.3f}–{x[2]:.3f})"


def tables(doc: dict[str, Any]) -> list[str]:
    lines = ["Per run (latency at batch 1, throughput at batch 8; ratio (95% CI); *other cores*: the cores other "
             "processes kept busy while the harness timed, the busier of its two timing groups):", "",
             "| # | condition | threads | method | "
             + " | ".join(f"{k[:3]}. {a} ÷ {b}" for k in ("latency", "throughput") for a, b in PAIRS)
             + " | other cores | suite wall s |",
             "|---|---|---|---|" + "---|" * (2 * len(PAIRS)) + "---|---|"]
    for i, run in enumerate(doc["runs"], 1):
        for method in ("paired", "separate"):
            if method not in run:
                continue
            m = run[method]
            cells = [_cell(m[k]["ratios"].get(f"{a} ÷ {b}")) for k in ("latency", "throughput") for a, b in PAIRS]
            cores = max((m[k]["other_cores"] or 0.0) for k in ("latency", "throughput"))
            wall = f"{run['paired']['wall_s']:.0f}" if method == "paired" else ""
            threads = m.get("threads") or run["threads_used"]
            lines.append(f"| {i} | {run['condition']} | {threads} ({run['threads_arg']}) | {method} | "
                         + " | ".join(cells) + f" | {cores:.2f} | {wall} |")
    lines += ["", "Over the one-thread runs (spread = max ÷ min − 1; limits of the paired method in brackets):", "",
              "| method | ratio | quiet median | loaded median | spread quiet | spread all | widest CI | "
              "loaded vs quiet | within limits |", "|---|---|---|---|---|---|---|---|---|"]
    for method in ("paired", "separate"):
        for name, s in doc["summary"].get(method, {}).items():
            kind = name.split(":")[0]
            lq, la, lc, ll = LIMITS[kind]
            ok = "yes" if all(s["meets"].values()) else "no: " + ", ".join(k for k, v in s["meets"].items() if not v)
            fmt = (lambda v: "–" if v is None else f"{v:.1%}")  # noqa: E731
            lines.append(f"| {method} | {name} | {s['quiet_median']:.3f} | "
                         f"{'–' if s['loaded_median'] is None else format(s['loaded_median'], '.3f')} | "
                         f"{fmt(s['spread_quiet'])} [{lq:.0%}] | {fmt(s['spread_all'])} [{la:.0%}] | "
                         f"{fmt(s['max_ci_width'])} [{lc:.0%}] | {fmt(s['loaded_vs_quiet'])} [±{ll:.0%}] | {ok} |")
    walls = [r["paired"]["wall_s"] for r in doc["runs"] if r["condition"] == "quiet"]
    lines += ["", f"Default suite wall time, quiet runs: {min(walls):.0f}–{max(walls):.0f} s. Measured by "
              f"`python benchmarks/paired_timing.py` ({doc['settings']['quiet']} quiet + {doc['settings']['loaded']} "
              f"loaded runs at one thread, {doc['settings']['auto']} quiet + loaded pair at `--threads auto`"
              + "".join(f", `--set {o}`" for o in doc["settings"].get("overrides", []))
              + ") on "
              f"{doc['machine']}; tables written by `--table … --readme README.md`."]
    return lines


def _write_tables(path: Path, readme: Path | None) -> None:
    lines = tables(json.loads(path.read_text()))
    print("\n".join(lines))
    if readme is not None:
        text = readme.read_text()
        start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
        readme.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[end:])


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.separate_only:
        threads, path = args.separate_only
        Path(path).write_text(json.dumps(separate(int(threads))))
        return 0
    if args.table:
        _write_tables(args.table, args.readme)
        return 0
    from harness.environment import capture_environment

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="paired_timing_"))
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    for i, (condition, threads) in enumerate(_plan(args)):
        background = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "loaded" else None
        try:
            run: dict[str, Any] = {"condition": condition, "threads_arg": threads,
                                   "paired": _paired_run(workdir, args.suite, threads, args.overrides)}
            run["threads_used"] = run["paired"]["threads"]
            if not args.no_separate:
                run["separate"] = _separate_run(workdir, run["threads_used"], i)
        finally:
            if background is not None:
                background.kill()
                background.wait()
        runs.append(run)
        lat = run["paired"]["latency"]["ratios"].get("sknet50 ÷ resnext50")
        print(f"run {i + 1:2d} {condition:6s} threads {run['threads_used']} ({threads}): sknet50 ÷ resnext50 "
              f"latency {_cell(lat)}, other cores {run['paired']['latency']['other_cores']:.2f}, "
              f"{run['paired']['wall_s']:.0f} s", flush=True)
    cpu = capture_environment("cpu").get("cpu", {})
    doc = {"settings": {k: v for k, v in vars(args).items() if k in ("quiet", "loaded", "auto", "overrides")},
           "machine": f"{cpu.get('model', 'this CPU')}, {cpu.get('logical_cores', '?')} cores",
           "runs": runs, "summary": {m: summarise(runs, m) for m in ("paired", "separate")}}
    print("\n".join(tables(doc)))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
