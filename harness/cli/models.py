"""``list``: the registry, by fnmatch pattern (``timm:`` patterns list timm's models)."""

from __future__ import annotations

import argparse

from harness.errors import ConfigError


def cmd_list(args: argparse.Namespace) -> int:
    from harness.models.plugins import import_plugins
    from harness.models.registry import TIMM_PREFIX, get_entry, list_models

    import_plugins(args.imports)  # a plugin's models are listed like the built-in ones
    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no model matches {args.pattern!r}; try `python -m harness list` for all")
    for name in names:
        if name.startswith(TIMM_PREFIX):
            print(name)
            continue
        entry = get_entry(name)
        table = f" [{entry.paper_table}]" if entry.paper_table else ""
        print(f"{name:<20} {entry.family:<8} {entry.description}{table}")
    return 0


def register(sub: argparse._SubParsersAction, *, parents: list[argparse.ArgumentParser]) -> None:
    lst = sub.add_parser("list", parents=parents, help="registered models matching a pattern ('timm:*' lists timm's)")
    lst.add_argument("pattern", nargs="?", default="*")
    lst.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE_OR_FILE.py",
                     help="import user code that registers models first (repeatable), as `run --import` does")
    lst.set_defaults(func=cmd_list)
