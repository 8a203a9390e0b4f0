"""Report: a pure function of a run dir → markdown (+ PNG plots next to it). Never measures.

The report is the header, then every section of ``SECTIONS`` in order (each a function
``section(run, assets_dir, stem) -> list[str]`` that returns nothing when the run has no records for it),
then the errors and skipped tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import one_line
from harness.fileio import under_root, write_text_atomic
from harness.report import attention, complexity, cost, latency, modes, optime, training
from harness.report import eval as eval_section
from harness.report.markdown import table
from harness.results import RunData, load_run
from harness.results.records import AttentionRecord, FailedRecord, Manifest, SkippedRecord, TimedRecord

log = logging.getLogger(__name__)

Section = Callable[[RunData, Path, str], list[str]]
SECTIONS: tuple[Section, ...] = (complexity.section, latency.section, modes.section, cost.section, optime.section,
                                 training.section, eval_section.section, attention.section)


def report_path(run_dir: Path, reports_root: Path) -> Path:
    """``reports/<suite folder>/<run folder>.md``, named by the run dir's real folders and kept under the root."""
    run_dir = Path(run_dir).resolve()
    return under_root(reports_root, Path(reports_root) / (run_dir.parent.name or "runs") / f"{run_dir.name}.md",
                      what="the report")


def render(run_dir: Path, *, reports_root: Path = Path("reports"), out: Path | None = None) -> Path:
    """Render ``run_dir`` to markdown; returns the path written."""
    run = load_run(run_dir)
    out = Path(out) if out is not None else report_path(run_dir, reports_root)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = _header(run)
    for section in SECTIONS:
        lines += section(run, out.parent, out.stem)
    lines += _problems(run)
    write_text_atomic(out, "\n".join(lines).rstrip() + "\n")
    return out


def _header(run: RunData) -> list[str]:
    m = run.typed_manifest
    env, git = m.environment, m.git
    cpu = env.cpu if env else None
    commit = ((git.commit if git else None) or "unknown")[:12] + (" (dirty)" if git and git.dirty else "")
    # per-epoch and per-unit records are parts of a task, not tasks
    counts = {s: sum(1 for r in run.records if r.status == s and r.kind != "train_epoch"
                     and not (isinstance(r, AttentionRecord) and r.parent_task)) for s in ("ok", "error", "skipped")}
    rows: list[list[Any]] = [
        ["suite", m.suite_name], ["run", m.run_id], ["created (UTC)", m.created_utc],
        ["git commit", commit], ["device", m.device],
        ["torch", ((env.packages if env else None) or {}).get("torch") or (env.torch if env else None)],
        ["CPU", cpu.model if cpu else None], ["torch threads", cpu.torch_threads if cpu else None],
        ["GPU", ", ".join(str(g.name or "?") for g in (env.gpus if env else None) or []) or None],
        ["tasks", f"{counts['ok']} ok, {counts['error']} error, {counts['skipped']} skipped"],
    ]
    if m.shard:
        rows.append(["shard", f"{m.shard.index + 1} of {m.shard.count}"])
    return [f"# {m.suite_name}: Selective Kernel Networks reproduction", "",
            *table(["", ""], [r for r in rows if r[1] is not None], align="ll"), "", *_shards(m), *_contention(run)]


def _contention(run: RunData) -> list[str]:
    """The headline of a run timed under contention: said once, at the top, in words."""
    hit: set[tuple[Any, int]] = set()
    seen: set[tuple[Any, int]] = set()
    for r in run.records:
        if isinstance(r, TimedRecord):
            for p in r.process_runs or ():
                seen.add((r.pairing, p.index))
                if p.contended:
                    hit.add((r.pairing, p.index))
    if not hit:
        return []
    return [f"⚠ **Timed under contention**: in {len(hit)} of {len(seen)} timing processes, other processes left "
            "fewer free cores than the harness's threads. The ratios marked *contended* below carry that in their "
            "intervals but may be biased; absolute times are slower than on a quiet machine. Rerun on a quiet "
            "machine (stop the other work, or `--wait-quiet 300`) for numbers to quote.", ""]


def _shards(m: Manifest) -> list[str]:
    """A merged run: which machine measured each shard, and the shards that did not end (``incomplete``)."""
    merged = [(e.shard, e.machine) for e in m.merged_from or () if e.shard]
    lines: list[str] = []
    if merged:
        rows = [[f"{shard.index + 1} of {shard.count}", latency.machine_name(machine)] for shard, machine in merged]
        lines += ["Merged from shards; each measured its models on one machine (timing records carry their "
                  "`shard`):", "", *table(["shard", "machine"], rows, align="ll"), ""]
    for problem in m.incomplete or ():
        lines += [f"⚠ **Incomplete run**: shard {problem.shard} {problem.reason}; the records it "
                  f"wrote before that are included, the rest of its tasks are missing. Log: `{problem.log}`", ""]
    return lines


def _problems(run: RunData) -> list[str]:
    bad = [r for r in run.records if isinstance(r, (FailedRecord, SkippedRecord)) and r.kind != "train_epoch"]
    if not bad:
        return []
    groups: dict[tuple[Any, ...], list[FailedRecord | SkippedRecord]] = {}
    for r in bad:
        # one line each: a record written before messages were kept to one line may hold a whole traceback
        why = one_line(r.reason if isinstance(r, SkippedRecord) else f"{r.error.type}: {r.error.message}")
        groups.setdefault((r.kind, r.status, why), []).append(r)
    rows = []
    for (kind, status, why), recs in groups.items():
        labels = ", ".join(dict.fromkeys(str(r.label or r.model) for r in recs))
        batches = ", ".join(dict.fromkeys(str(r.batch_size) for r in recs if r.batch_size is not None))
        rows.append([kind, labels, batches or None, f"{status} ×{len(recs)}", why])
    return ["## Errors and skipped tasks", "",
            *table(["kind", "models", "batch", "status", "why"], rows, align="lllll"), ""]
