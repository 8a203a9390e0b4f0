from __future__ import annotations

import pytest
from helpers import plugin_model_name
from torch import nn

import harness
from harness.errors import ConfigError, DuplicateModelError, UnknownModelError
from harness.registry import canonical_options, get_entry, import_plugin, list_models, register_model


def test_list_models_fnmatch_sorted():
    names = list_models("sk*")
    assert names == sorted(names)
    assert {"sknet26", "sknet29", "sknet50", "sknet101"} <= set(names)
    assert all(n.startswith("sk") for n in names)
    assert list_models("no_such_*") == []


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match=r"unknown model 'sknet5'.*did you mean .*sknet50"):
        harness.create_model("sknet5")


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"model 'sknet50' has no option 'reduction'.*valid options: .*\br\b"):
        harness.create_model("sknet50", reduction=8)


def test_duplicate_name_raises():
    with pytest.raises(DuplicateModelError, match="already registered"):
        register_model("sknet50")(lambda: nn.Identity())


def test_timm_prefix_is_reserved_and_builds_timm_models():
    with pytest.raises(DuplicateModelError, match="reserved"):
        register_model("timm:foo")(lambda: nn.Identity())
    model = harness.create_model("timm:resnet18", num_classes=7)
    assert model.fc.out_features == 7
    with pytest.raises(UnknownModelError, match="unknown timm model 'resnet1800'"):
        harness.create_model("timm:resnet1800")


def test_plugin_file_registers_models(plugin_file):
    import_plugin(str(plugin_file))
    name = plugin_model_name(plugin_file)
    assert name in list_models("tinynet_*")
    assert get_entry(name).input_size == (3, 16, 16)
    assert isinstance(harness.create_model(name, channels=4), nn.Sequential)


def test_missing_plugin_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        import_plugin(str(tmp_path / "nope.py"))
    with pytest.raises(ConfigError, match="cannot be imported"):
        import_plugin("no_such_module_xyz")


def test_canonical_options_fill_defaults_and_normalise():
    a = canonical_options("sknet50", {})
    b = canonical_options("sknet50", {"branches": ["3X3", "3x3d2"], "layers": (3, 4, 6, 3)})
    assert a == b
    assert a["r"] == 16 and a["L"] == 32
    assert canonical_options("sknet50", {"attention": False}) != a
