"""A gate that needs no frozen baseline: measure the base and the head of a change in the same job, on the
same runner, alternating processes, and judge head against base with the gate's statistics.

This is what asv's ``continuous`` does. A baseline frozen on another day, or on another machine of the
"same" type, carries that day's noise into every comparison; two checkouts measured side by side see the
same machine. Each side runs ``pairs`` times as separate ``python -m harness run`` processes, in the order
B H H B B H … (each pair reversed from the last, so a drift of the machine's speed during the job hits both
sides alike). A process runs with its checkout as working directory and on ``PYTHONPATH``: the harness's
own code (when the checkout is a harness repository) and a user's plugin named by a relative path in the
suite's ``imports:`` (when it is the user's repository) both come from that checkout. The suite file is the
same for both sides, so the two measure the same benchmarks.

The base runs are also compared with each other (even against odd runs): that A/A comparison is the noise
check the report shows beside the verdict.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, ResultsError
from harness.gate.samples import BenchmarkSet, BenchSamples
from harness.gate.sources import load_benchmarks
from harness.gate.verdicts import CheckReport, Verdict
from harness.results.summaries import BenchmarkKey

log = logging.getLogger(__name__)

MAX_PAIRS = 100  # runs per side: more is hours of CI, never a sharper verdict worth having


@dataclass(frozen=True)
class Side:
    name: str  # "base" | "head"
    checkout: Path


@dataclass(frozen=True)
class ABRuns:
    """The run dirs of both sides, in the order they ran."""

    base: tuple[Path, ...]
    head: tuple[Path, ...]
    order: tuple[str, ...]


def schedule(pairs: int) -> list[str]:
    """B H, H B, B H, …: each pair reversed from the last (ABBA), so a linear drift cancels."""
    order: list[str] = []
    for i in range(pairs):
        order += ["base", "head"] if i % 2 == 0 else ["head", "base"]
    return order


def check_inputs(base: Path, head: Path, suite: Path, pairs: int) -> None:
    for name, path in (("base", base), ("head", head)):
        if not Path(path).is_dir():
            raise ConfigError(f"--ab: the {name} checkout {str(path)!r} is not a folder; pass two checkouts, "
                              "e.g. `git worktree add ../base origin/main` and `.`")
    if not Path(suite).is_file():
        raise ConfigError(f"--suite {str(suite)!r} not found; pass the suite both sides run, e.g. "
                          "suites/ci_latency.yaml")
    if not 2 <= pairs <= MAX_PAIRS:
        raise ConfigError(f"--pairs {pairs}: the same-job gate needs 2 to {MAX_PAIRS} runs per side (default 3)")
    from harness.config import load_suite

    imports = load_suite(suite).imports or []
    for name, path in (("base", base), ("head", head)):
        if not own_code(Path(path), imports):
            plugins = [p for p in imports if not _outside(p)]
            raise ConfigError(
                f"--ab: the {name} checkout {str(path)!r} has no harness/ package"
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


def _run_once(side: Side, *, suite: Path, out: Path, index: int, device: str) -> Path:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(side.checkout.resolve()), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, "-m", "harness", "run", str(suite), "--out", str(out / side.name), "--reports",
               str(out / "reports" / side.name), "--device", device, "--no-progress"]
    log.info("%s run %d: %s (in %s)", side.name, index + 1, " ".join(command), side.checkout)
    done = subprocess.run(command, cwd=side.checkout, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        tail = " / ".join(line for line in done.stderr.strip().splitlines()[-3:])
        raise ResultsError(f"--ab: the {side.name} run {index + 1} in {side.checkout} failed "
                           f"(exit {done.returncode}): {tail}")
    return side.checkout / done.stdout.splitlines()[0]  # relative: to the checkout the run ran in


def run_ab(*, base: Path, head: Path, suite: Path, pairs: int, out: Path, device: str = "cpu",
           on_step: Callable[[int, int, str], None] | None = None) -> ABRuns:
    """Run the suite ``pairs`` times in each checkout, alternating processes; returns the run dirs.

    ``on_step(step, steps, side)`` is called before each run (the CLI shows progress with it).
    """
    check_inputs(base, head, suite, pairs)
    # Each side runs in its own checkout: a relative --out would land under each checkout, not here.
    out = Path(out).resolve()
    sides = {"base": Side("base", Path(base).resolve()), "head": Side("head", Path(head).resolve())}
    dirs: dict[str, list[Path]] = {"base": [], "head": []}
    order = schedule(pairs)
    for step, name in enumerate(order):
        if on_step is not None:
            on_step(step + 1, len(order), name)
        dirs[name].append(_run_once(sides[name], suite=Path(suite).resolve(), out=out, index=len(dirs[name]),
                                    device=device))
    return ABRuns(base=tuple(dirs["base"]), head=tuple(dirs["head"]), order=tuple(order))


def pool(sets: list[BenchmarkSet], *, source: str) -> BenchmarkSet:
    """Several runs of one side as one set: each benchmark's rounds (and reference rounds) concatenated."""
    if not sets:
        raise ResultsError(f"{source}: no runs to pool")
    keys: list[BenchmarkKey] = list(dict.fromkeys(k for s in sets for k in s.benchmarks))
    pooled = {}
    for key in keys:
        parts = [s.benchmarks[key] for s in sets if key in s.benchmarks]
        if len({p.yardstick for p in parts}) > 1:  # runs of different checkouts' timers: one yardstick for all
            parts = [p.with_round_yardstick() for p in parts]
        interleaved = parts[0].yardstick == "interleaved"
        pooled[key] = BenchSamples(
            rounds=tuple(r for p in parts for r in p.rounds),
            reference_rounds=tuple(r for p in parts for r in _aligned_refs(p)),
            threads=parts[0].threads,
            yardstick=parts[0].yardstick,
            round_reference_rounds=tuple(r for p in parts for r in _aligned(p.round_reference_rounds, p))
            if interleaved and all(p.round_reference_rounds for p in parts) else (),
        )
    return BenchmarkSet(environment=sets[0].environment, benchmarks=pooled, source=source, origin="harness-ab",
                        failed=tuple(f for s in sets for f in s.failed))


def _aligned_refs(samples: BenchSamples) -> tuple[tuple[float, ...], ...]:
    return _aligned(samples.reference_rounds, samples)


def _aligned(refs: tuple[tuple[float, ...], ...], samples: BenchSamples) -> tuple[tuple[float, ...], ...]:
    # a run without reference samples contributes empty reference rounds, keeping the rounds aligned
    if len(refs) == len(samples.rounds):
        return refs
    return tuple(() for _ in samples.rounds)


def load_sides(runs: ABRuns) -> tuple[BenchmarkSet, BenchmarkSet, BenchmarkSet, BenchmarkSet]:
    """(base, head, base even runs, base odd runs): the last two are the A/A noise check."""
    base = [load_benchmarks(p) for p in runs.base]
    head = [load_benchmarks(p) for p in runs.head]
    return (pool(base, source=f"base ({len(base)} runs)"), pool(head, source=f"head ({len(head)} runs)"),
            pool(base[0::2], source="base runs 1, 3, …"), pool(base[1::2], source="base runs 2, 4, …"))


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
