from __future__ import annotations

import pytest
from helpers import plugin_model_name
from torch import nn

import harness
from harness.errors import ConfigError, DuplicateModelError, UnknownModelError
from harness.models.plugins import import_plugin
from harness.models.registry import canonical_options, get_entry, list_models, register_model


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


# ------------------------------------------------------------------------------ registration forms


@pytest.fixture
def scratch_registry(monkeypatch):
    """The real registry, with user names registered by a test removed afterwards."""
    from harness.models import registry

    list_models()  # built-ins in
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry


def _net(*, width: int = 2) -> nn.Module:
    return nn.Linear(width, width)


def test_register_model_bare_called_named_and_plain(scratch_registry):
    @register_model
    def bare_form(*, k: int = 1) -> nn.Module:
        """Bare decorator, as timm users write it."""
        return nn.Identity()

    @register_model()
    def called_form() -> nn.Module:
        return nn.Identity()

    @register_model("named_form", family="user", description="explicit")
    def whatever() -> nn.Module:
        return nn.Identity()

    def plain_form(*, width: int = 3) -> nn.Module:
        return nn.Linear(width, 1)

    assert register_model(plain_form) is plain_form
    # every form returns the builder itself, so the decorated name is still the function
    assert callable(bare_form) and bare_form.__name__ == "bare_form" and whatever.__name__ == "whatever"
    assert {"bare_form", "called_form", "named_form", "plain_form"} <= set(list_models())
    assert get_entry("bare_form").description == "Bare decorator, as timm users write it."
    assert get_entry("named_form").description == "explicit"
    assert harness.create_model("plain_form", width=5).in_features == 5


@pytest.mark.parametrize("bad", [3, 1.5, ["x"], b"name"])
def test_register_model_with_a_non_string_name_is_a_type_error(scratch_registry, bad):
    with pytest.raises(TypeError, match=r"register_model's name must be a string.*@register_model\('my_name'\)"):
        register_model(bad)


def test_a_user_duplicate_of_a_builtin_is_blamed_on_the_user(scratch_registry):
    def resnext50() -> nn.Module:
        return nn.Identity()

    with pytest.raises(DuplicateModelError) as info:
        register_model(resnext50)
    message = str(info.value)
    assert "registers model 'resnext50', which is already registered by harness.models.resnext.resnext50" in message
    assert "test_registry" in message.split("registers")[0]


def test_builtins_load_first_even_when_a_plugin_registers_before_any_lookup():
    """A fresh process: the first registration is a user's, yet list_models() still has every built-in."""
    code = (
        "from torch import nn\nfrom harness import register_model, list_models\n"
        "def mine():\n    return nn.Identity()\nregister_model(mine)\n"
        "names = list_models()\nassert 'mine' in names and 'sknet50' in names and 'resnext50' in names, names\n"
        "try:\n    register_model('resnext50')(mine)\nexcept Exception as exc:\n    print(type(exc).__name__)\n"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "DuplicateModelError"


def test_a_failed_builtin_load_is_retried_not_remembered(monkeypatch):
    from harness.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_builtins_state", "unloaded")
    monkeypatch.setattr(registry, "BUILTIN_MODULES", ("harness_no_such_builtin_module",))
    with pytest.raises(ModuleNotFoundError):
        registry.list_models()
    assert registry._builtins_state == "unloaded"
    monkeypatch.setattr(registry, "BUILTIN_MODULES", ("harness.models.resnext",))
    import importlib

    import harness.models.resnext

    importlib.reload(harness.models.resnext)  # its registrations ran into the real registry before
    assert "resnext50" in registry.list_models()
    assert registry._builtins_state == "loaded"


def test_attention_models_name_the_plain_network_they_extend():
    assert get_entry("sknet50").plain == get_entry("senet50").plain == "resnext50"
    assert get_entry("sknet101").plain == get_entry("senet101").plain == "resnext101"
    assert get_entry("sknet29").plain == get_entry("senet29").plain == "resnext29_16x32d"
    assert get_entry("resnext50").plain is None
    for name in list_models():
        plain = get_entry(name).plain
        assert plain is None or get_entry(plain).input_size == get_entry(name).input_size
