"""Model options are type-checked against the builder's annotations: coerced where the meaning is clear
(``"false"`` → False, ``"1e-9"`` → 1e-9), refused with one line naming the option otherwise."""

from __future__ import annotations

import pytest
from torch import nn

import harness
from harness.errors import ConfigError
from harness.models.registry import canonical_options, resolve_options


def test_a_string_false_is_false_not_true():
    model = harness.create_model("sknet29", attention="false", width=0.125)
    assert all(not m.attention for m in model.modules() if hasattr(m, "attention") and isinstance(m.attention, bool))
    assert resolve_options("sknet29", {"attention": "false"})["attention"] is False
    assert canonical_options("sknet29", {"attention": "false"}) == canonical_options("sknet29", {"attention": False})


def test_numbers_written_as_strings_are_coerced():
    options = resolve_options("sknet29", {"width": "1e-9", "r": "8", "num_classes": 7.0})
    assert options == {"width": 1e-9, "r": 8, "num_classes": 7}
    assert type(options["width"]) is float and type(options["r"]) is int


@pytest.mark.parametrize(("options", "message"), [
    ({"attention": "maybe"}, "model 'sknet29': option 'attention' expects bool, got 'maybe'"),
    ({"width": "wide"}, "model 'sknet29': option 'width' expects float, got 'wide'"),
    ({"r": 2.5}, "model 'sknet29': option 'r' expects int, got 2.5"),
    ({"layers": "3,4,6,3"}, "model 'sknet50': option 'layers' expects Sequence[int], got '3,4,6,3'"),
])
def test_values_of_the_wrong_type_are_one_line_errors(options, message):
    name = "sknet50" if "layers" in options else "sknet29"
    with pytest.raises(ConfigError) as info:
        resolve_options(name, options)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_unannotated_plugin_options_are_checked_against_their_defaults(monkeypatch):
    from harness.models import registry

    registry.list_models()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @registry.register_model("untyped_plugin_net")
    def build(*, depth=2, gate=True, name="x", extra=None):
        return nn.Identity()

    assert resolve_options("untyped_plugin_net", {"depth": "3", "gate": "no", "extra": [1]}) == {
        "depth": 3, "gate": False, "extra": [1]}
    with pytest.raises(ConfigError, match="option 'depth' expects int"):
        resolve_options("untyped_plugin_net", {"depth": "deep"})
