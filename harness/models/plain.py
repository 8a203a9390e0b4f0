"""A model's plain counterpart: the registered network it adds attention to (SKNet-50 and SENet-50 → ResNeXt-50),
and matching records to it.

The registry says which network is plain (``ModelEntry.plain``); the runner writes each model's plain counterpart
into its records (``plain``), and readers match records by it, so a report needs no registry. Only records from
before that field ask today's registry (imported on call: importing this module imports neither torch nor it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.errors import HarnessError
from harness.fileio import canonical_json


def plain_of(model: str | None) -> str | None:
    """The registered plain network ``model`` adds attention to (None for plain, timm and unknown models)."""
    from harness.models.registry import TIMM_PREFIX, get_entry

    if not model or model.startswith(TIMM_PREFIX):
        return None
    try:
        return get_entry(model).plain
    except HarnessError:  # a plugin model whose plugin is not imported in this process
        return None


def identity(model: str | None, options: dict[str, Any] | None, canonical: dict[str, Any] | None) -> tuple[str, str]:
    """(model, options) as compared across records: the builder's canonical options when recorded."""
    return str(model), canonical_json(canonical if canonical is not None else (options or {}))


def plain_identity(model: str | None, options: dict[str, Any] | None) -> tuple[str, str] | None:
    """The identity of ``model``'s plain counterpart with the options they share (width, layers, classes …)."""
    from harness.models.registry import canonical_options, get_entry

    plain = plain_of(model)
    if plain is None:
        return None
    shared = {k: v for k, v in (options or {}).items() if k in get_entry(plain).options}
    try:
        return plain, canonical_json(canonical_options(plain, shared))
    except HarnessError:
        return None


def _wanted(item: dict[str, Any]) -> tuple[str, str] | None:
    """The identity of ``item``'s plain counterpart: from its ``plain`` field, or (older records) today's registry."""
    if "plain" in item:
        plain = item["plain"]
        if not isinstance(plain, dict):
            return None
        return str(plain.get("model")), canonical_json(plain.get("canonical_options") or {})
    return plain_identity(item.get("model"), item.get("options"))


def plain_match(item: dict[str, Any], items: Sequence[dict[str, Any]]) -> int | None:
    """Index in ``items`` of ``item``'s plain counterpart (fields model, options, canonical_options, plain).

    Records carry their plain counterpart as the run's registry named it (``plain``); older records are
    matched through today's registry (which imports the model code).
    """
    wanted = _wanted(item)
    if wanted is None:
        return None
    for i, other in enumerate(items):
        if identity(other.get("model"), other.get("options"), other.get("canonical_options")) == wanted:
            return i
    return None


def plain_matches(items: Sequence[dict[str, Any]]) -> list[int | None]:
    """``plain_match(item, items)`` of every item, through one index of the items' identities (linear, where a
    search per item is quadratic in a run of many models)."""
    first: dict[tuple[str, str], int] = {}
    for i, other in enumerate(items):
        first.setdefault(identity(other.get("model"), other.get("options"), other.get("canonical_options")), i)
    out = []
    for item in items:
        wanted = _wanted(item)
        out.append(None if wanted is None else first.get(wanted))
    return out
