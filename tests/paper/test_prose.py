"""Numbers quoted in prose stay in step with the data: every #P or GMACs figure in a model module's docstring
(and a registry description) is a published number from ``harness.paper`` or what the code builds."""

from __future__ import annotations

import re

import pytest

import harness
from harness.measure.params import count_params
from harness.models import resnext, senet, sknet
from harness.models.registry import get_entry, list_models
from harness.paper import TABLE5_GAP, all_rows

PUBLISHED_PARAMS = {row.params_m for row in all_rows() if row.params_m is not None}
PUBLISHED_GMACS = {row.gmacs for row in all_rows() if row.gmacs is not None}
# What the caption's configurations build (asserted against count_params below): the documented gaps.
BUILT = {
    "senet29": ("senet29", {}),
    "sknet29": ("sknet29", {}),
    "sknet29 with the backbone's 16 groups": ("sknet29", {"groups": 16}),
}


def _built_millions() -> dict[str, float]:
    return {what: count_params(harness.create_model(name, **opts)).params / 1e6 for what, (name, opts) in BUILT.items()}


def _quoted(text: str) -> tuple[list[str], list[str]]:
    params = re.findall(r"(\d+\.\d+)M\b", text)
    gmacs = re.findall(r"(\d+\.\d+)(?: GMACs| GFLOPs|\))?(?= GMACs)", text) + re.findall(r"/ (\d+\.\d+)\b", text)
    return params, gmacs


def _matches(quoted: str, values: set[float] | list[float]) -> bool:
    digits = len(quoted.split(".")[1])
    return any(round(v, digits) == float(quoted) for v in values)


@pytest.mark.parametrize("module", [resnext, senet, sknet], ids=lambda m: m.__name__)
def test_module_docstring_numbers_are_published_or_built(module):
    built = list(_built_millions().values())
    params, gmacs = _quoted(module.__doc__)
    assert params, "no #P quoted: the test would prove nothing"
    for value in params:
        assert _matches(value, PUBLISHED_PARAMS) or _matches(value, built), f"{module.__name__}: {value}M"
    for value in gmacs:
        assert _matches(value, PUBLISHED_GMACS), f"{module.__name__}: {value} GMACs"


@pytest.mark.parametrize("name", [n for n in list_models() if get_entry(n).family in {"resnext", "senet", "sknet"}])
def test_registry_descriptions_quote_this_models_rows(name):
    description = get_entry(name).description
    rows = [r for r in all_rows() if r.model == name and not r.options]
    params, gmacs = _quoted(description)
    built = count_params(harness.create_model(name)).params / 1e6
    for value in params:
        ok = _matches(value, [r.params_m for r in rows if r.params_m]) or (
            f"this build {value}M" in description and _matches(value, [built]))
        assert ok, f"{name}: {value}M in {description!r}"
    for value in gmacs:
        assert _matches(value, [r.gmacs for r in rows if r.gmacs]), f"{name}: {value} GMACs in {description!r}"


def test_the_table5_gap_note_quotes_what_the_code_builds():
    built = _built_millions()
    quoted = [float(x) for x in re.findall(r"≈(\d+\.\d+)M", TABLE5_GAP)]
    assert quoted == [round(built["senet29"], 1), round(built["sknet29"], 1),
                      round(built["sknet29 with the backbone's 16 groups"], 1)]
    assert "35.0M" in TABLE5_GAP and "27.7M" in TABLE5_GAP
    assert {35.0, 27.7} <= PUBLISHED_PARAMS
