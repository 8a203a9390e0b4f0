"""Matching many records to their plain counterparts at once gives what matching each one does."""

from __future__ import annotations

from harness.models.plain import plain_match, plain_matches
from harness.models.registry import canonical_options


def _fields(name: str, plain: str | None, **options) -> dict:
    out = {"model": name, "options": options, "canonical_options": canonical_options(name, options)}
    if plain is not None:
        shared = {k: v for k, v in options.items() if k == "width"}
        out["plain"] = {"model": plain, "canonical_options": canonical_options(plain, shared)}
    else:
        out["plain"] = None
    return out


def test_plain_matches_is_plain_match_of_every_item():
    items = [_fields("sknet50", "resnext50", width=0.5), _fields("resnext50", None),
             _fields("senet50", "resnext50"), _fields("resnext50", None, width=0.5), _fields("resnext50", None),
             _fields("sknet50", "resnext50", width=0.25), {"model": "senet50", "options": {}}]  # older: no plain
    assert plain_matches(items) == [plain_match(item, items) for item in items] == [3, None, 1, None, None, None, 1]
