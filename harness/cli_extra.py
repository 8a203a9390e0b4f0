"""Subcommands beyond run / report / list, registered into ``harness.cli``."""

from __future__ import annotations

from harness.cli import _EXTRA_COMMANDS  # noqa: F401
