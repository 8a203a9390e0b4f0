"""The same-job gate (``gate ab``), base and head in one process: both checkouts' models built side by side and timed
alternately, iteration for iteration, so the two see the same machine at the same moments.

Why: on a shared VM the machine's speed moves by about 10% from one second to the next and from one process
to the next, and a fixed reference workload corrects only part of it (a neighbour slows the model and the
reference by different factors). Measured with ``benchmarks/gate_noise_sources.py`` on the 2-core development
VM (8 processes), the run-to-run scatter of a model's statistic is 3.8% normalised by an interleaved reference
and 0.5% when the model is timed against a copy of itself in one process. Separate processes per side cannot see a
5% slowdown through that much noise with a few runs; one process per pair can.

How: the harness's one timing driver (``harness.measure.processes``), as for a suite: ``pairs`` fresh worker
processes one after another, each building both sides' models and timing each benchmark's base and head as one
group per round (the paired engine, cycle by cycle in a Williams order; which side comes first alternates by
round, which side is built first is shuffled per process). A worker builds a side's models by importing that
checkout's ``harness`` package (or the installed one, for a checkout that has none) and the suite's plugins from
that checkout, building every benchmark's model, and then dropping those modules again, so the other side
imports its own (``side_model``). Only public API is used on a checkout (``create_model``, ``register_model``
via the plugins), so the base may be an older harness. The suite's backend flags (cudnn.benchmark, TF32) are
set as ``harness run`` sets them. What cannot work in one process: a change to torch itself, or plugins that
register process-global state twice (a ``torch.library`` op of the same name); compare runs with a frozen
baseline (``gate check``) for those.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ResultsError
from harness.gate import AB_THRESHOLD_PCT, ALPHA
from harness.gate.sets import BenchmarkSet, BenchSamples
from harness.gate.verdict import CheckReport, Verdict, compare
from harness.results.summaries import BenchmarkKey

log = logging.getLogger(__name__)

SIDES = ("base", "head")
MAX_PAIRS = 100  # worker processes: more is hours of CI, never a sharper verdict worth having


def worker_spec(*, base: Path, head: Path, suite_path: Path, device: str) -> dict[str, Any]:
    """What a worker builds and times, from the suite (read with this harness)."""
    from harness.config import load_suite
    from harness.measure.mode import Mode
    from harness.measure.sampling import TimingConfig

    suite = load_suite(suite_path)
    section = suite.latency
    if section is None:
        raise ConfigError(f"{suite_path}: gate ab times the suite's latency section, and it has none")
    if section.modes is not None:
        raise ConfigError(f"{suite_path}: gate ab times one mode, and the latency section lists modes "
                          f"({', '.join(m.label for m in section.modes_for(device))}): give the gate a suite whose "
                          "section sets its mode with dtype / channels_last / compile")
    models = section.models or suite.models
    benchmarks = [{"name": m.name, "label": m.label or m.name, "options": dict(m.options or {}),
                   "input_size": list(m.input_size) if m.input_size else None, "batch_size": bs}
                  for bs in section.batch_sizes_for(device) for m in models]
    if not benchmarks:
        raise ConfigError(f"{suite_path}: the latency section has no batch size (or no model) for --device "
                          f"{device}; nothing would be timed: add batch sizes for {device}")
    return {
        "checkouts": {"base": str(Path(base).resolve()), "head": str(Path(head).resolve())},
        "imports": list(suite.imports or []),
        "device": device,
        "benchmarks": benchmarks,
        "input_size": list(section.input_size) if section.input_size else None,
        # the section is a TimingConfig and a Mode: their fields, whatever they are, travel to the workers
        "timing": {name: getattr(section, name) for name in TimingConfig.model_fields},
        "rounds": section.rounds,
        "mode": {name: getattr(section, name) for name in Mode.model_fields},
        # the section's backend flags, as `harness run` of the same suite sets them
        "cudnn_benchmark": section.cudnn_benchmark,
        "tf32": section.tf32,
    }


# --- the worker --------------------------------------------------------------------------------------------


def _own_module(name: str, origin: str, checkout: Path) -> bool:
    """Whether module ``name`` is one of the checkout's own: ``harness*``, a suite plugin, or a module the checkout
    itself provides at its top level (``<checkout>/<top>.py`` or ``<checkout>/<top>/…``, as a plugin imports its
    siblings). Third-party code that merely lives under it (a ``.venv/`` inside the repository) is not: dropping
    torch or numpy and importing them again crashes the process."""
    if name == "harness" or name.startswith(("harness.", "_harness_ab_")):
        return True
    if not origin:
        return False
    try:
        parts = Path(origin).resolve().relative_to(checkout).parts
    except ValueError:
        return False
    top = name.split(".")[0]
    return len(parts) > 0 and (parts[0] == top or (len(parts) == 1 and Path(parts[0]).stem == top))


def _origin(module: Any) -> str:
    """Where a module was loaded from: its file, or the first folder of a namespace package (which has none)."""
    origin = getattr(module, "__file__", None)
    if origin:
        return str(origin)
    try:
        return str(next(iter(getattr(module, "__path__", None) or []), ""))
    except TypeError:  # a __path__ that is not iterable: a module that fakes one
        return ""


def _drop_modules(checkout: Path, keep: set[str]) -> dict[str, Any]:
    """Remove the checkout's own modules (``_own_module``; those in ``keep`` only if ``harness*``) from
    ``sys.modules``; returns them."""
    checkout = Path(checkout).resolve()
    dropped = {}
    for name, module in list(sys.modules.items()):
        if name in keep and not (name == "harness" or name.startswith("harness.")):
            continue
        if _own_module(name, _origin(module), checkout):
            dropped[name] = sys.modules.pop(name)
    return dropped


def _build_side(side: str, spec: dict[str, Any]) -> list[tuple[Any, tuple[int, int, int]]]:
    """Every benchmark's model as ``side``'s checkout builds it, and its input size (C, H, W)."""
    checkout = Path(spec["checkouts"][side])
    before = set(sys.modules)
    saved = _drop_modules(checkout, keep=set())
    sys.path.insert(0, str(checkout))
    try:
        api = importlib.import_module("harness")
        for i, plugin in enumerate(spec["imports"]):
            path = Path(plugin) if Path(plugin).is_absolute() else checkout / plugin
            module_spec = importlib.util.spec_from_file_location(f"_harness_ab_{side}_{i}", path)
            if module_spec is None or module_spec.loader is None:
                raise ConfigError(f"{side} checkout: plugin {plugin!r} not found at {path}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        built = []
        for bench in spec["benchmarks"]:
            model = api.create_model(bench["name"], **bench["options"])
            size = bench["input_size"] or spec["input_size"]
            if size is None:
                from harness.models.registry import default_input_size  # the checkout's registry

                size = default_input_size(bench["name"])
            built.append((model, tuple(size)))
        return built
    finally:
        sys.path.remove(str(checkout))
        _drop_modules(checkout, keep=before)
        sys.modules.update(saved)


_BUILT: dict[str, list[tuple[Any, tuple[int, int, int]]]] = {}  # side → its models, built once per worker process


def side_model(side: str, spec: dict[str, Any], index: int) -> Any:
    """Benchmark ``index``'s model as ``side``'s checkout builds it (the timing driver's factory: picklable; the
    first call of a side in a worker process builds all of that side's models, module juggling included)."""
    if side not in _BUILT:
        _BUILT[side] = _build_side(side, spec)
    return _BUILT[side][index][0]


def input_sizes(spec: dict[str, Any]) -> list[tuple[int, int, int]]:
    """Each benchmark's input size (C, H, W): the suite's, else the model's own as the head checkout registers it
    (the same input goes to both sides: a paired comparison needs it)."""
    missing = [b for b in spec["benchmarks"] if not (b["input_size"] or spec["input_size"])]
    try:
        built = _build_side("head", {**spec, "benchmarks": missing}) if missing else []
    except Exception as exc:  # noqa: BLE001 - the checkout's code: whatever it raises, the gate cannot judge
        raise ResultsError(f"gate ab: the head checkout cannot build its models: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:300]}") from None
    sizes = iter(size for _, size in built)
    return [tuple(b["input_size"] or spec["input_size"] or next(sizes)) for b in spec["benchmarks"]]


def session_request(spec: dict[str, Any], pairs: int) -> Any:
    """The gate's timing session for the timing driver (``harness.measure.processes``): per benchmark and round
    one group of base and head (the side that comes first alternates by round), timed in ``pairs`` processes."""
    import functools

    from harness.measure.mode import Mode
    from harness.measure.processes import GroupRequest, MemberRequest, SessionRequest
    from harness.measure.sampling import TimingConfig

    timing = TimingConfig(**spec["timing"])
    window = timing.split(spec["rounds"])
    mode = Mode(**spec["mode"])
    groups = []
    for i, (bench, size) in enumerate(zip(spec["benchmarks"], input_sizes(spec), strict=True)):
        members = {side: MemberRequest(key=f"{side}:{i}", factory=functools.partial(side_model, side, spec, i),
                                       input_size=size) for side in SIDES}
        for r in range(spec["rounds"]):
            order = ("head", "base") if r % 2 == 0 else ("base", "head")
            groups.append(GroupRequest(
                name=f"{i}:{r}", members=tuple(members[side] for side in order), batch_size=bench["batch_size"],
                device=spec["device"], mode=mode, loops=False, warmup=timing.warmup, window=window,
                processes=pairs, cudnn_benchmark=spec["cudnn_benchmark"], tf32=spec["tf32"], memory=False))
    # the checkouts' models are built in each worker (the coordinator never imports a checkout's code for them)
    return SessionRequest(groups=tuple(groups), threads=_threads(), seed=0, prebuild=False)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def worker_documents(spec: dict[str, Any], outcomes: list[Any], pairs: int) -> list[dict[str, Any]]:
    """Per process, its samples by benchmark, side and round (what ``load_pairs`` reads); a failed process is
    a ``ResultsError`` (a verdict needs every pair)."""
    from harness.environment import capture_environment

    environment = capture_environment(spec["device"])
    docs = []
    for k in range(pairs):
        results = []
        for i, bench in enumerate(spec["benchmarks"]):
            rounds: dict[str, list[list[float]]] = {side: [] for side in SIDES}
            loads, threads = [], None
            for r in range(spec["rounds"]):
                outcome = outcomes[i * spec["rounds"] + r]
                part = outcome.parts[k]
                failed = part.error or next((m.error for m in part.members if m.error), None)
                if failed is not None:
                    raise ResultsError(f"gate ab: worker {k + 1} failed: {failed['type']}: {failed['message']}")
                order = ("head", "base") if r % 2 == 0 else ("base", "head")
                for side, member in zip(order, part.members, strict=True):
                    rounds[side].append(list(member.samples_ms))
                loads.append(part.load.to_record() if part.load is not None else None)
                threads = part.threads
            results.append({"benchmark": bench, "rounds": rounds, "threads": threads, "load": loads})
        docs.append({"environment": environment, "results": results})
    return docs


# --- the coordinator ---------------------------------------------------------------------------------------


def check_inputs(base: Path, head: Path, suite: Path, pairs: int) -> None:
    for name, path in (("base", base), ("head", head)):
        if not Path(path).is_dir():
            raise ConfigError(f"gate ab: the {name} checkout {str(path)!r} is not a folder; pass two checkouts, "
                              "e.g. `git worktree add ../base origin/main` and `.`")
    if not Path(suite).is_file():
        raise ConfigError(f"--suite {str(suite)!r} not found; pass the suite both sides run, e.g. "
                          "suites/ci_latency.yaml")
    if not 2 <= pairs <= MAX_PAIRS:
        raise ConfigError(f"--pairs {pairs}: gate ab needs 2 to {MAX_PAIRS} worker processes (default 3)")
    from harness.config import load_suite

    imports = load_suite(suite).imports or []
    for name, path in (("base", base), ("head", head)):
        if not own_code(Path(path), imports):
            plugins = [p for p in imports if not _outside(p)]
            raise ConfigError(
                f"gate ab: the {name} checkout {str(path)!r} has no harness/ package"
                + (f" and none of the suite's plugins ({', '.join(plugins)})" if plugins else
                   " and the suite names no plugin file of its own")
                + "; it would be measured with the installed harness: pass a checkout of the code under test "
                "(did `git worktree add` fail?)")


def _outside(plugin: str) -> bool:
    """A plugin named by an absolute (or ~) path is the same file for both sides: no side's own code."""
    return plugin.startswith("~") or Path(plugin).is_absolute()


def own_code(checkout: Path, imports: list[str] | tuple[str, ...]) -> list[str]:
    """What ``checkout`` contributes itself: its ``harness/`` package and the suite's plugins found in it."""
    found = ["harness/"] if (checkout / "harness" / "__init__.py").is_file() else []
    for plugin in imports:
        if _outside(plugin):
            continue
        if plugin.endswith(".py") or "/" in plugin:
            if (checkout / plugin).is_file():
                found.append(plugin)
        else:
            module = checkout.joinpath(*plugin.split("."))
            if module.with_suffix(".py").is_file() or (module / "__init__.py").is_file():
                found.append(plugin)
    return found





def run_inprocess(*, base: Path, head: Path, suite: Path, pairs: int, out: Path, device: str = "cpu",
                  on_step: Callable[[int, int, str], None] | None = None) -> list[Path]:
    """Time both sides in ``pairs`` worker processes of the timing driver, one after another; returns their
    result files (kept under ``out``, one per process)."""
    from harness.fileio import write_json_atomic
    from harness.measure.processes import run_session

    check_inputs(base, head, suite, pairs)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    spec = worker_spec(base=base, head=head, suite_path=suite, device=device)
    write_json_atomic(out / "spec.json", spec)

    def step(k: int, n: int) -> None:
        if on_step is not None:
            on_step(k, n, "base and head")

    outcomes = run_session(session_request(spec, pairs), workdir=out, on_process=step)
    files = []
    for k, doc in enumerate(worker_documents(spec, outcomes, pairs)):
        files.append(write_json_atomic(out / f"pair{k + 1}.json", doc))
    return files


def _key(bench: dict[str, Any], spec_mode: dict[str, Any], device: str) -> BenchmarkKey:
    return BenchmarkKey.from_fields({"model": bench["name"], "label": bench["label"], "options": bench["options"],
                                 "batch_size": bench["batch_size"], "device": device, "kind": "latency",
                                 "dtype": spec_mode["dtype"], "channels_last": spec_mode["channels_last"],
                                 "compile": spec_mode["compile"]})


def load_pairs(files: list[Path]) -> tuple[BenchmarkSet, BenchmarkSet, BenchmarkSet, BenchmarkSet]:
    """(base, head, base of workers 1, 3, …, base of workers 2, 4, …): the last two are the noise check.

    The yardstick of a round, on both sides, is the round's samples of both sides together (timed together by
    the engine): dividing by it makes every round's head/base comparison a paired one (the machine's speed of
    that round cancels), while the gate's statistic (the low quantile of ``harness.gate.verdict``), test and
    interval stay as for any run. In the noise check it asks whether base stood in the same relation to head
    in the odd and the even processes.

    Why not the median of per-cycle ratios, as the report's ratios: for a model of a few ms on a machine
    whose other processes take most of its cores, most iterations are preempted, and whether an iteration
    was preempted decides its cycle's ratio. Re-judging the same 74 + 74 stored trials of
    ``benchmarks/ab_error_rates.py`` (load 2-6 on 2 cores) with it caught 54 of 74 +5% changes (ratios down
    to 0.87), against 66 of 75 for the low quantile, which reads the undisturbed iterations.
    """
    spec = json.loads((files[0].parent / "spec.json").read_text())
    docs = [json.loads(f.read_text()) for f in files]

    def side_set(side: str, picked: list[dict[str, Any]], source: str) -> BenchmarkSet:
        benchmarks: dict[BenchmarkKey, BenchSamples] = {}
        for doc in picked:
            for res in doc["results"]:
                key = _key(res["benchmark"], spec["mode"], spec["device"])
                old = benchmarks.get(key, BenchSamples(threads=res["threads"]))
                ours = tuple(tuple(r) for r in res["rounds"][side])
                pair = tuple(tuple(b) + tuple(h) for b, h in zip(res["rounds"]["base"], res["rounds"]["head"],
                                                                 strict=True))
                benchmarks[key] = BenchSamples(rounds=old.rounds + ours, reference_rounds=old.reference_rounds + pair,
                                               threads=res["threads"])
        return BenchmarkSet(environment=docs[0]["environment"], benchmarks=benchmarks, source=source,
                            origin="harness-ab")

    n = len(docs)
    head = side_set("head", docs, f"head ({n} processes)")
    # both sides ran in the same processes: a contended process is said once, as the candidate's
    head = replace(head, contended=_contended_processes(docs))
    return (side_set("base", docs, f"base ({n} processes)"), head,
            side_set("base", docs[0::2], "base in processes 1, 3, …"),
            side_set("base", docs[1::2], "base in processes 2, 4, …"))


def _contended_processes(docs: list[dict[str, Any]]) -> tuple[str, ...]:
    from harness.measure.load import Load
    from harness.measure.processes import contended

    out = []
    for k, doc in enumerate(docs, 1):
        for res in doc["results"]:
            loads = [x for x in res.get("load") or () if isinstance(x, dict)]
            hit = [Load(**{f: x[f] for f in Load.__dataclass_fields__}) for x in loads]
            hit = [x for x in hit if contended(x, int(res.get("threads") or 1))]
            if hit:
                worst = max(x.other_cores for x in hit)
                out.append(f"process {k} timed under contention (other processes kept {worst:.2f} of "
                           f"{hit[0].cores} cores busy)")
                break
    return tuple(out)


def noise_note(noise: CheckReport) -> str:
    """One line on the A/A comparison of base runs against base runs: how much the machine moved."""
    ratios = [r.normalised_ratio if r.normalised_ratio is not None else r.raw_ratio for r in noise.rows]
    spread = max((abs(x - 1.0) for x in ratios if x is not None and math.isfinite(x)), default=math.nan)
    flagged = [r.key.label for r in noise.rows if r.verdict in (Verdict.REGRESSION, Verdict.IMPROVEMENT)]
    line = f"noise check (base runs 1, 3, … against 2, 4, …): largest change {spread * 100:.1f}%"
    if flagged:
        return line + f"; NOISY: unchanged code was judged changed for {', '.join(flagged)}, so a verdict here may " \
                      "be noise: rerun the job"
    return line + ", no benchmark judged changed"


def same_job(*, base: Path, head: Path, suite: Path, pairs: int, out: Path, device: str = "cpu",
             threshold_pct: float = AB_THRESHOLD_PCT, alpha: float = ALPHA, force: bool = False,
             on_step: Callable[[int, int, str], None] | None = None) -> CheckReport:
    """``gate ab``: time both checkouts' models in ``pairs`` worker processes and judge head against base; the
    report's notes say how both were measured and what the noise check (base against base) found."""
    files = run_inprocess(base=base, head=head, suite=suite, pairs=pairs, out=out, device=device, on_step=on_step)
    base_set, head_set, base_even, base_odd = load_pairs(files)
    report = compare(base_set, head_set, threshold_pct=threshold_pct, alpha=alpha, force=force)
    noise = compare(base_even, base_odd, threshold_pct=threshold_pct, alpha=alpha, force=True)
    notes = (f"same job, in one process: {len(files)} processes each timed base ({base}) and head ({head}) "
             f"cycle by cycle; samples under {out}", noise_note(noise))
    return replace(report, notes=notes)
