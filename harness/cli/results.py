"""``export`` (run dirs → CSV / parquet / JSON), ``compare`` (runs and machines side by side), ``history``
(every run of a suite in time order, with change points) and ``schema`` (the record types)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import ConfigError, ResultsError

FORMATS = ("csv", "parquet", "json", "pytest-benchmark")
PARQUET_HINT = ("--format parquet needs pyarrow: pip install -e \".[parquet]\" (or pip install pyarrow), or use "
                "--format csv")


def _output(value: str | Path | None) -> Path | None:
    """An ``-o`` path, refused in one line when it is one of a run dir's own files (an export of a run written over
    its records would leave a run that no longer loads)."""
    from harness.results.store import refuse_run_file

    return None if value is None else refuse_run_file(Path(value), what="-o")


def _write(frame, fmt: str, output: Path | None) -> str | None:  # noqa: ANN001 (pandas is imported lazily)
    """Write ``frame`` (atomically: a failed write leaves an earlier file at ``output`` as it was); returns the text
    for stdout when there is no output file."""
    from harness.fileio import write_atomic, write_text_atomic

    if fmt == "parquet":
        if output is None:
            raise ConfigError("--format parquet writes a binary file: give -o FILE.parquet")
        try:
            write_atomic(output, lambda handle: frame.to_parquet(handle, index=False))
        except ImportError:
            raise ConfigError(PARQUET_HINT) from None
        except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError: a column of mixed types
            reason = " ".join(str(exc).split())[:300]
            raise ResultsError(f"{output}: cannot write parquet ({reason}); a column holds values of mixed types "
                               "(records edited by hand or by another tool): use --format csv or json") from None
        return None
    text = frame.to_csv(index=False) if fmt == "csv" else frame.to_json(orient="records", indent=1)
    if output is None:
        return text
    write_text_atomic(output, text if text.endswith("\n") else text + "\n")
    return None


def _export_pytest_benchmark(args: argparse.Namespace) -> int:
    import json

    from harness.fileio import write_text_atomic
    from harness.results.pytest_benchmark import to_pytest_benchmark
    from harness.results.records import TIMED_KINDS

    if len(args.run_dirs) != 1 or args.by_round:
        raise ConfigError("--format pytest-benchmark exports one run dir, rounds pooled (as pytest-benchmark "
                          "stores a benchmark): give one RUN_DIR and no --by-round")
    output = _output(args.output)
    doc = to_pytest_benchmark(Path(args.run_dirs[0]), kinds=(args.kind,) if args.kind else TIMED_KINDS)
    text = json.dumps(doc, indent=4, ensure_ascii=True) + "\n"
    if output is not None:
        write_text_atomic(output, text)
        print(output)
    else:
        sys.stdout.write(text)
    print(f"{len(doc['benchmarks'])} benchmarks", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from harness.results import load_runs

    if args.format == "pytest-benchmark":
        return _export_pytest_benchmark(args)
    args.kind = args.kind or "latency"
    output = _output(args.output)
    frame = load_runs([Path(p) for p in args.run_dirs]).frame(args.kind, by_round=args.by_round)
    text = _write(frame, args.format, output)
    if text is not None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        print(output)
    print(f"{len(frame)} rows of {args.kind}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import render_compare

    print(render_compare([Path(p) for p in args.run_dirs], out=_output(args.output), reports_root=Path(args.reports)))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from harness.report.history import render_history

    print(render_history(Path(args.suite_dir), metric=args.metric, threshold_pct=args.threshold,
                         out=_output(args.output),
                         reports_root=Path(args.reports)))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from harness.results.records import json_schema, markdown

    print(markdown() if args.markdown else json.dumps(json_schema(), indent=1, sort_keys=True))
    return 0


def register(sub: argparse._SubParsersAction, *, parents: list[argparse.ArgumentParser]) -> None:
    from harness.results.store import FRAME_KINDS

    export = sub.add_parser("export", parents=parents,
                            help="results as a table: one row per benchmark, task or epoch (CSV, parquet, JSON)")
    export.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    export.add_argument("--kind", choices=FRAME_KINDS,
                        help="which records (default: latency; --format pytest-benchmark: every timed kind)")
    export.add_argument("--format", choices=FORMATS, default="csv")
    export.add_argument("--by-round", action="store_true", help="one row per round instead of rounds pooled")
    export.add_argument("-o", "--output", help="file to write (default: stdout; parquet needs a file)")
    export.set_defaults(func=cmd_export)

    compare = sub.add_parser("compare", parents=parents,
                             help="line up the same benchmarks across runs and machines → markdown + PNG")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    compare.add_argument("-o", "--output", type=Path,
                         help="markdown to write (default: reports/compare/<suite>/<run>_vs_<run>.md)")
    compare.add_argument("--reports", default="reports", help="reports root for the default path")
    compare.set_defaults(func=cmd_compare)

    history = sub.add_parser("history", parents=parents,
                             help="every run of a suite in time order: trend table, plot and change points")
    history.add_argument("suite_dir", metavar="SUITE_DIR",
                         help="a suite's results folder, e.g. results/sknet_vs_senet/")
    history.add_argument("--metric", choices=("p50", "img_s"), default="p50",
                         help="p50: latency medians; img_s: throughput (default: p50)")
    history.add_argument("--threshold", type=float, metavar="PCT",
                         help="smallest step that counts, percent (default: the regression gate's, 5)")
    history.add_argument("-o", "--output", type=Path,
                         help="markdown to write (default: reports/<suite>/history-METRIC.md)")
    history.add_argument("--reports", default="reports", help="reports root for the default path")
    history.set_defaults(func=cmd_history)

    schema = sub.add_parser("schema", parents=parents,
                            help="the record types of records.jsonl: JSON Schema (or --markdown, docs/records.md)")
    schema.add_argument("--markdown", action="store_true", help="the field reference as markdown")
    schema.set_defaults(func=cmd_schema)
