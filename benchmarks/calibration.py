"""Do the intervals hold? The calibration of the harness's ratio intervals, measured as a user runs a suite.

(a) **A/A**: two separately built copies of ResNeXt-50 (labels ``a`` and ``b``, built in an order shuffled per
process), latency at batch 1 and throughput at batch 8, R runs: the true ratio is 1.0, so an honest 95% interval
contains 1.0 in about 95% of the runs. (b) **The default suite's timing** (``suites/sknet_vs_senet.yaml``: its
latency and throughput sections as they are, the other sections left out) R runs in three conditions, round
robin so a drift of the machine hits all alike: ``quiet``; ``neighbour``, beside one ``python -c "while True:
pass"``; ``contended``, beside two (other processes want more cores than are free). Every run uses ``--threads
1``, and each is made with the harness's default process level (``--processes K``) and with ``--processes 1``
(one process, as before the process level) in the same condition, back to back.

Per ratio (sknet50 ÷ resnext50, senet50 ÷ resnext50, sknet50 ÷ timm, latency and throughput), method, condition
and per-process estimator (median of per-cycle ratios, low quantile, minimum; the records keep every sample, so
all three are computed from the same runs): the spread of the estimates (max ÷ min − 1), how often a run's CI
contains another run's estimate of the same condition (honest: about 83%), how often it contains the condition's
median (honest: about 95%), the mean CI half-width, and whether the contended runs are marked.

    python benchmarks/calibration.py --out results/calibration/calibration.json      # about 1½ hours on 2 cores
    python benchmarks/calibration.py --table results/calibration/*.json    # the tables, no measuring
    python benchmarks/calibration.py --table FILE... --write README.md --write-full docs/measurement.md  # markers
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.fileio import write_between_markers

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "suites" / "sknet_vs_senet.yaml"
PAIRS = {"suite": (("sknet50", "resnext50"), ("senet50", "resnext50"), ("sknet50", "timm:skresnext50_32x4d")),
         "aa": (("b", "a"),)}
KINDS = ("latency", "throughput")
CONDITIONS = {"quiet": 0, "neighbour": 1, "contended": 2}  # CPU-bound processes beside the run
MARKERS = ("<!-- calibration:start -->", "<!-- calibration:end -->")
BURNER = "while True: pass"


def off_condition(run: dict[str, Any]) -> bool:
    """Whether the load a run recorded contradicts its condition: other work on a 'quiet' run (half a core or more),
    none beside a 'neighbour' run, less than a core beside a 'contended' one. Such runs are counted in the tables,
    never silently relabelled."""
    other = run.get("other_cores", 0.0)
    return {"quiet": other >= 0.5, "neighbour": other < 0.5, "contended": other < 1.0}[run["condition"]]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--aa", type=int, default=20, help="A/A runs per method (quiet)")
    p.add_argument("--suite-runs", type=int, default=4, help="runs of the suite per condition and method")
    p.add_argument("--conditions", default="quiet,neighbour,contended")
    p.add_argument("--processes", type=int, default=None, help="K of the process-level method (default: the "
                   "harness's default)")
    p.add_argument("--no-single", action="store_true", help="skip the --processes 1 runs")
    p.add_argument("--aa-single", type=int, default=None, help="A/A runs of --processes 1 (default: --aa)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the runs time (default: cpu)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to every `harness run` (e.g. smaller windows for a dry run)")
    p.add_argument("--workdir", type=Path, help="run dirs go here (default: a temporary folder)")
    p.add_argument("--out", type=Path, help="JSON of every run's per-process paired samples and load")
    p.add_argument("--table", type=Path, nargs="+", metavar="JSON", help="print the tables of calibration files "
                   "(their runs together)")
    p.add_argument("--write-full", type=Path, nargs="*", default=[],
                   help="with --table: as --write, with every estimator compared and the allocation table")
    p.add_argument("--write", type=Path, nargs="*", default=[], help="with --table: write them between the "
                   "calibration markers of these files")
    return p.parse_args(argv)


# --- the suites ------------------------------------------------------------------------------------------


def _suites(folder: Path) -> dict[str, Path]:
    """The default suite's timing sections alone, and the A/A suite with the same windows."""
    import yaml

    full = yaml.safe_load(SUITE.read_text())
    timing = {k: full[k] for k in ("schema", "name", "models", "latency", "throughput")}
    timing["name"] = "calibration_suite"
    aa = {**timing, "name": "calibration_aa", "models": [{"name": "resnext50", "label": "a"},
                                                           {"name": "resnext50", "label": "b"}]}
    for section in ("latency", "throughput"):
        aa[section] = {k: v for k, v in full[section].items() if k != "models"}
    out = {}
    for name, suite in (("suite", timing), ("aa", aa)):
        out[name] = folder / f"{name}.yaml"
        out[name].write_text(json.dumps(suite))
    return out


# --- one run ---------------------------------------------------------------------------------------------


def _paired_parts(run_dir: Path, kind: str, num: str, den: str) -> dict[str, Any] | None:
    """Per process, the two models' paired samples (ms per iteration, or s per image for throughput)."""
    from harness.results import load_run
    from harness.results import summaries as S

    benches = {b.label: b for b in S.benchmarks(load_run(run_dir), kind)}
    if num not in benches or den not in benches:
        return None
    parts = S.paired_by_process(benches[den], benches[num])
    contended = {**S.contended_processes(benches[den]), **S.contended_processes(benches[num])}
    return {"parts": [[a.tolist(), b.tolist()] for a, b in parts.values()],
            "contended": [bool(contended.get(k)) for k in parts]}


def _one_run(suite: Path, *, processes: int | None, out: Path, device: str = "cpu",
             overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    command = [sys.executable, "-m", "harness", "run", str(suite), "--threads", "1", "--device", device, "--out",
               str(out), "--no-report", "--no-progress", *(["--processes", str(processes)] if processes else []),
               *[w for item in overrides for w in ("--set", item)]]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    run_dir = Path(done.stdout.strip().splitlines()[0])
    from harness.results import load_run
    from harness.results.records import TimedRecord

    loads = [p.load for r in load_run(run_dir).records if isinstance(r, TimedRecord) for p in r.process_runs or ()
             if p.load]
    return {"run_dir": str(run_dir), "wall_s": wall, "other_cores": max((x.other_cores for x in loads), default=0)}


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    from harness.measure.processes import DEFAULT_PROCESSES

    k = args.processes or DEFAULT_PROCESSES
    methods = {f"processes {k}": k, **({} if args.no_single else {"processes 1": 1})}
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="calibration-"))
    work.mkdir(parents=True, exist_ok=True)
    suites = _suites(work)
    runs: list[dict[str, Any]] = []
    aa_single = args.aa if args.aa_single is None else args.aa_single
    plan = [("aa", "quiet", m) for i in range(args.aa) for m in methods if methods[m] != 1 or i < aa_single]
    plan += [("suite", c, m) for _ in range(args.suite_runs) for c in conditions for m in methods]
    for i, (which, condition, method) in enumerate(plan):
        # each CPU-bound neighbour in a session of its own, as separate jobs would be: the kernel's autogroup
        # scheduling shares the cores between sessions, so two burners of one session would take one core
        burners = [subprocess.Popen([sys.executable, "-c", BURNER], start_new_session=True)
                   for _ in range(CONDITIONS[condition])]
        try:
            time.sleep(1.0 if burners else 0.0)
            run = _one_run(suites[which], processes=methods[method], out=work / "runs", device=args.device,
                           overrides=tuple(args.overrides))
        finally:
            for b in burners:
                b.kill()
                b.wait()
        for kind in KINDS:
            for num, den in PAIRS[which]:
                run[f"{kind}: {num} ÷ {den}"] = _paired_parts(Path(run["run_dir"]), kind, num, den)
        runs.append({"which": which, "condition": condition, "method": method, **run})
        print(f"[{i + 1}/{len(plan)}] {which} {condition} {method}: {run['wall_s']:.0f} s, other processes "
              f"{run['other_cores']:.2f} cores" + (f" — NOT {condition} (other work on the machine?)"
                                                   if off_condition(runs[-1]) else ""), file=sys.stderr)
        if args.out:
            _save(args.out, runs)
    return {"runs": runs}


def _save(path: Path, runs: list[dict[str, Any]]) -> None:
    import torch

    from harness.environment import capture_environment

    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = (capture_environment("cpu").get("cpu") or {}).get("model")
    path.write_text(json.dumps({"machine": {"cpu": cpu,
                                            "torch": torch.__version__, "cores": _cores()},
                                "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": runs},
                               indent=0) + "\n")


def _cores() -> int:
    from harness.measure.load import usable_cores

    return usable_cores()


# --- the analysis ----------------------------------------------------------------------------------------


def _interval(entry: dict[str, Any], estimator: str, kind: str) -> tuple[float, float, float, int] | None:
    from harness.measure.stats import process_ratio

    if not entry or not entry["parts"]:
        return None
    # throughput's ratio is of images/s: base time ÷ other time
    parts = [(a, b) if kind == "latency" else (b, a) for a, b in entry["parts"]]
    r = process_ratio(parts, estimator=estimator)
    return r.value, r.low, r.high, sum(entry["contended"])


def _stats(values: list[tuple[float, float, float, int]]) -> dict[str, Any]:
    est = [v for v, _, _, _ in values]
    median = statistics.median(est)
    pairs = [(i, j) for i, j in itertools.permutations(range(len(values)), 2)]
    holds_other = sum(values[i][1] <= est[j] <= values[i][2] for i, j in pairs)
    return {"n": len(values), "median": median, "min": min(est), "max": max(est),
            "spread": max(est) / min(est) - 1, "holds_other": (holds_other, len(pairs)),
            "holds_median": (sum(lo <= median <= hi for _, lo, hi, _ in values), len(values)),
            "halfwidth": statistics.mean(math.sqrt(hi / lo) - 1 for _, lo, hi, _ in values),
            "marked": sum(c > 0 for _, _, _, c in values)}


def analyse(doc: dict[str, Any]) -> dict[str, Any]:
    from harness.measure.stats import ESTIMATORS

    out: dict[str, Any] = {}
    runs = doc["runs"]
    for which, condition, method in sorted({(r["which"], r["condition"], r["method"]) for r in runs}):
        mine = [r for r in runs if (r["which"], r["condition"], r["method"]) == (which, condition, method)]
        for kind in KINDS:
            for num, den in PAIRS[which]:
                name = f"{kind}: {num} ÷ {den}"
                for estimator in ESTIMATORS:
                    values = [v for r in mine if (v := _interval(r.get(name), estimator, kind)) is not None]
                    if not values:
                        continue
                    stats = _stats(values)
                    if which == "aa":
                        stats["holds_one"] = (sum(lo <= 1.0 <= hi for _, lo, hi, _ in values), len(values))
                    stats["wall_s"] = statistics.mean(r["wall_s"] for r in mine)
                    stats["off_condition"] = sum(off_condition(r) for r in mine)
                    out[f"{which}|{condition}|{method}|{name}|{estimator}"] = stats
    return out


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _frac(pair: tuple[int, int]) -> str:
    a, b = pair
    return f"{a}/{b} ({a / b:.0%})" if b else "–"


def _contended_vs_quiet(doc: dict[str, Any], method: str, name: str, estimator: str) -> tuple[int, int] | None:
    """Contended runs whose estimate is within 5% of the quiet runs' median, or whose CI contains it."""
    kind = name.split(":")[0]
    quiet = [v for r in doc["runs"] if r["which"] == "suite" and r["condition"] == "quiet" and r["method"] == method
             if (v := _interval(r.get(name), estimator, kind)) is not None]
    contended = [v for r in doc["runs"] if r["which"] == "suite" and r["condition"] == "contended"
                 and r["method"] == method if (v := _interval(r.get(name), estimator, kind)) is not None]
    if not quiet or not contended:
        return None
    centre = statistics.median(v for v, _, _, _ in quiet)
    return sum(abs(v / centre - 1) <= 0.05 or lo <= centre <= hi for v, lo, hi, _ in contended), len(contended)


def tables(doc: dict[str, Any], estimator: str | None = None, *, compare: bool = True) -> str:
    """The calibration tables: A/A, the suite per condition, quiet and one-neighbour runs together. ``estimator``
    keeps the first two to one per-process estimator (None: all); ``compare`` adds the estimators side by side
    (the measurement the choice rests on)."""
    from harness.measure.stats import ESTIMATOR

    stats = analyse(doc)
    keys = [k.split("|") for k in stats]
    lines = [f"Measured {doc.get('created_utc', '?')} on {doc['machine'].get('cpu')} "
             f"({doc['machine'].get('cores')} cores), torch {doc['machine'].get('torch')}, `--threads 1`; "
             "`python benchmarks/calibration.py` (data: its JSON). Per-process estimator: "
             f"`{estimator or 'each'}`.", ""]
    aa = [k for k in keys if k[0] == "aa" and k[4] == (estimator or ESTIMATOR)]
    if aa:
        lines += ["**A/A** (two copies of ResNeXt-50, true ratio 1.0): runs whose 95% CI contains 1.0; *not quiet*: "
                  "runs whose recorded load says other work was on the machine", "",
                  "| method | ratio | runs | CI holds 1.0 | spread | mean CI half-width | wall s | not quiet |",
                  "|---|---|--:|--:|--:|--:|--:|--:|"]
        for which, condition, method, name, est in aa:
            s = stats["|".join((which, condition, method, name, est))]
            lines.append(f"| {method} | {name} | {s['n']} | {_frac(s['holds_one'])} | {_pct(s['spread'])} | "
                         f"{_pct(s['halfwidth'])} | {s['wall_s']:.0f} | {s['off_condition']} |")
        lines.append("")
    lines += ["**The default suite's ratios** per condition (a run's CI holding another run's estimate: honest about "
              "83%; holding the condition's median: honest about 95%; contended runs: within 5% of the quiet "
              "median or their CI holding it)", "",
              "| condition | method | estimator | ratio | median | spread | CI holds another run's | CI holds median "
              "| mean half-width | contended runs marked | contended vs quiet median | load off the condition |",
              "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for which, condition, method, name, est in sorted(k for k in keys if k[0] == "suite"):
        if estimator is not None and est != estimator:
            continue
        s = stats["|".join((which, condition, method, name, est))]
        versus = _contended_vs_quiet(doc, method, name, est) if condition == "contended" else None
        lines.append(f"| {condition} | {method} | {est} | {name} | {s['median']:.3f} | {_pct(s['spread'])} | "
                     f"{_frac(s['holds_other'])} | {_frac(s['holds_median'])} | {_pct(s['halfwidth'])} | "
                     f"{s['marked']}/{s['n']} | {_frac(versus) if versus else '–'} | {s['off_condition']} |")
    lines.append("")
    pooled = _quiet_and_neighbour(doc)
    if pooled:
        lines += ["**Quiet and one-neighbour runs together** (the acceptance spreads)"
                  + (", every per-process estimator side by side (the choice)" if compare else "") + ":", "",
                  "| method | estimator | ratio | spread | CI holds another run's | CI holds median "
                  "| mean half-width |",
                  "|---|---|---|--:|--:|--:|--:|"]
        for (method, est, name), s in sorted(pooled.items()):
            if not compare and estimator is not None and est != estimator:
                continue
            mark = "**" if est == ESTIMATOR else ""
            lines.append(f"| {method} | {mark}{est}{mark} | {name} | {_pct(s['spread'])} | {_frac(s['holds_other'])} "
                         f"| {_frac(s['holds_median'])} | {_pct(s['halfwidth'])} |")
        lines.append("")
    return "\n".join(lines)


def _quiet_and_neighbour(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    from harness.measure.stats import ESTIMATORS

    out = {}
    runs = [r for r in doc["runs"] if r["which"] == "suite" and r["condition"] in ("quiet", "neighbour")]
    for method in sorted({r["method"] for r in runs}):
        mine = [r for r in runs if r["method"] == method]
        for kind in KINDS:
            for num, den in PAIRS["suite"]:
                name = f"{kind}: {num} ÷ {den}"
                for est in ESTIMATORS:
                    values = [v for r in mine if (v := _interval(r.get(name), est, kind)) is not None]
                    if len(values) >= 2:
                        out[(method, est, name)] = _stats(values)
    return out


def allocation(doc: dict[str, Any]) -> str:
    """Kalibera & Jones's two-level allocation from the quiet process-level runs: the per-process cost (spawn,
    imports, build, warm-up: a run's wall time less its timed cycles, per process), the per-cycle cost, and the two
    variances of the log ratios (within a process per cycle; between processes beyond what the cycles explain).
    The cycles per process that minimise the interval's width for a given time are
    m* = sqrt((c_process / c_cycle) · (v_cycle / v_between)), with v_cycle = (π/2)·σ²_within (a median's
    efficiency); the processes then follow from the time budget."""
    from harness.measure.stats import ESTIMATOR, process_ratio
    from harness.results import load_run
    from harness.results.records import TimedRecord

    lines = ["| ratio | σ within (per cycle) | σ between processes | cycles/process now | m* (K&J) | c_process s | "
             f"c_cycle s | SD of the processes' `{ESTIMATOR}` estimates |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
    runs = [r for r in doc["runs"] if r["which"] == "suite" and r["condition"] == "quiet"
            and not r["method"].endswith(" 1") and Path(r["run_dir"]).is_dir()]
    if not runs:
        return ""
    for kind in KINDS:
        cost_p, cost_c = [], []
        for r in runs:
            records = [x for x in load_run(Path(r["run_dir"])).records if isinstance(x, TimedRecord) and x.process_runs]
            timed = {(x.kind, p.index): p for x in records for p in x.process_runs or () if not p.error}
            k = len({i for _, i in timed})
            total_timed = sum(p.wall_s for p in timed.values())
            cost_p.append((r["wall_s"] - total_timed) / max(k, 1))
            mine = [p for (kd, _), p in timed.items() if kd == kind]
            cost_c.append(sum(p.wall_s for p in mine) / max(1, sum(p.cycles for p in mine)))
        for num, den in PAIRS["suite"]:
            name = f"{kind}: {num} ÷ {den}"
            within, between, cycles, spread = [], [], [], []
            for r in runs:
                entry = r.get(name)
                if not entry:
                    continue
                parts = [(a, b) if kind == "latency" else (b, a) for a, b in entry["parts"]]
                if len(parts) > 1:
                    spread.append(process_ratio(parts).between_sd)
                logs = [[math.log((b if kind == "latency" else a) / (a if kind == "latency" else b))
                         for a, b in zip(pa, pb, strict=True)] for pa, pb in entry["parts"]]
                per = [statistics.median(x) for x in logs]
                m = statistics.mean(len(x) for x in logs)
                cycles.append(m)
                w = [statistics.variance(x) for x in logs if len(x) > 1]
                if w:
                    within.append(statistics.mean(w))
                if len(per) > 1:
                    between.append(max(0.0, statistics.variance(per) - (math.pi / 2) * (within[-1] if w else 0) / m))
            if not between:
                continue
            v_w = statistics.mean(within) if within else 0.0
            v_b = statistics.mean(between)
            c_p, c_c = statistics.mean(cost_p), statistics.mean(cost_c)
            m_star = math.sqrt((c_p / c_c) * ((math.pi / 2) * v_w / v_b)) if v_b > 0 else math.inf
            lines.append(f"| {name} | {_pct(math.sqrt(v_w))} | {_pct(math.sqrt(v_b))} | "
                         f"{statistics.mean(cycles):.0f} | {m_star:.0f} | {c_p:.1f} | {c_c:.2f} | "
                         f"{_pct(statistics.mean(spread)) if spread else '–'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.table:
        docs = [json.loads(path.read_text()) for path in args.table]
        doc = {**docs[0], "runs": [r for d in docs for r in d["runs"]],
               "created_utc": " / ".join(dict.fromkeys(d["created_utc"][:10] for d in docs))}
        from harness.measure.stats import ESTIMATOR

        print(tables(doc))
        print(allocation(doc))
        for path in args.write:
            write_between_markers(path, MARKERS, tables(doc, estimator=ESTIMATOR, compare=False))
        for path in args.write_full:
            write_between_markers(path, MARKERS, tables(doc, estimator=ESTIMATOR) + "\n" + allocation(doc))
        return 0
    doc = _measure(args)
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
        print(tables(json.loads(args.out.read_text())))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as exc:  # bad input: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
