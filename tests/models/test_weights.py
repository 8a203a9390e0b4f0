"""Weights: timm → ours (the five structurally equal pairs compute the same function), our own state dicts,
the training task's files, and one-line errors for everything that does not fit."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from harness import create_model
from harness.errors import ConfigError, WeightsError
from harness.models.registry import canonical_options, check_model
from harness.models.timm_keys import TIMM_EQUIVALENTS, convert_timm_state_dict
from harness.models.weights import load_exactly, load_weights, read_state_dict

TOL = 1e-4


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine terms: timm zero-inits the last BN of each block, which would make
    every residual branch vanish and the comparison weak."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=g) + 0.5
            m.bias.data = torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1
            m.running_mean = torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1
            m.running_var = torch.rand(m.running_var.shape, generator=g) + 0.5
    return model


def _max_diff(a: nn.Module, b: nn.Module, size: int = 64) -> float:
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ya, yb = a.eval()(x), b.eval()(x)
    assert ya.abs().max() > 0.1  # a real output, not a vanishing one
    return float((ya - yb).abs().max())


def _pair(ours: str) -> float:
    """timm model with random weights → its state dict → our model: the same outputs."""
    donor = _randomise_bn(timm.create_model(TIMM_EQUIVALENTS[ours], pretrained=False))
    state = donor.state_dict()
    converted = convert_timm_state_dict(state)
    assert len(converted) == len(state)  # one-to-one
    model = create_model(ours)
    load_exactly(model, converted, where="test")  # every key on both sides, every shape
    return _max_diff(donor, model)


@pytest.mark.parametrize("ours", ["resnext50", "senet50", "sknet50"])
def test_timm_50_layer_weights_give_timms_outputs(ours):
    assert _pair(ours) <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("ours", ["resnext101", "senet101"])
def test_timm_101_layer_weights_give_timms_outputs(ours):
    assert _pair(ours) <= TOL


def test_the_five_pairs_are_the_issue_s():
    assert TIMM_EQUIVALENTS == {"resnext50": "resnext50_32x4d", "senet50": "seresnext50_32x4d",
                                "sknet50": "skresnext50_32x4d", "resnext101": "resnext101_32x4d",
                                "senet101": "seresnext101_32x4d"}


@pytest.mark.slow  # 4 s: a full SK-ResNeXt-50 built twice; the sknet50 conversion is also checked in the default tier
def test_a_timm_file_goes_through_weights(tmp_path):
    donor = _randomise_bn(timm.create_model("skresnext50_32x4d", pretrained=False))
    torch.save(donor.state_dict(), tmp_path / "sk.pth")
    model = create_model("sknet50", weights=str(tmp_path / "sk.pth"))
    assert _max_diff(donor, model, size=32) <= TOL


def test_our_state_dict_and_the_training_file_round_trip(tmp_path):
    from harness.train.checkpoint import save_checkpoint

    src = _randomise_bn(create_model("sknet29", width=0.0625))
    torch.save(src.state_dict(), tmp_path / "ours.pt")
    save_checkpoint(tmp_path / "trained.pt", {"model": src.state_dict(), "config": {}})
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "ddp.pt")
    for name, fmt in (("ours.pt", "harness-state-dict"), ("trained.pt", "harness-checkpoint"),
                      ("ddp.pt", "harness-state-dict")):
        model = create_model("sknet29", width=0.0625)
        info = load_weights(model, "sknet29", str(tmp_path / name))
        assert info.format == fmt and not info.converted_from_timm and len(info.sha256) == 64
        assert _max_diff(src, model, size=32) == 0.0


def test_safetensors_files_load(tmp_path):
    from safetensors.torch import save_file

    donor = timm.create_model("resnet18", pretrained=False)
    save_file(donor.state_dict(), str(tmp_path / "model.safetensors"))
    fmt, state = read_state_dict(tmp_path / "model.safetensors")
    assert fmt == "timm-state-dict" and set(state) == set(donor.state_dict())


def _error(model: str, weights, **options) -> str:
    with pytest.raises(WeightsError) as err:
        create_model(model, weights=str(weights), **options)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_extra_and_misshaped_keys_are_one_line(tmp_path):
    state = create_model("resnext50", width=0.25).state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, tmp_path / "missing.pt")
    assert "missing 2 keys (fc.weight, fc.bias)" in _error("resnext50", tmp_path / "missing.pt", width=0.25)
    torch.save({**state, "extra.weight": torch.zeros(1)}, tmp_path / "extra.pt")
    assert "1 keys the model does not have (extra.weight)" in _error("resnext50", tmp_path / "extra.pt", width=0.25)
    msg = _error("resnext50", tmp_path / "missing.pt", width=0.5)
    assert "missing 2 keys" in msg  # checked before shapes
    small = create_model("resnext50", width=0.25, num_classes=10).state_dict()
    torch.save(small, tmp_path / "ten.pt")
    msg = _error("resnext50", tmp_path / "ten.pt", width=0.25)
    assert "2 tensors have the wrong shape (fc.weight (10, 512) vs model (1000, 512)" in msg
    assert "set the model's num_classes to 10" in msg


def test_unreadable_files_and_foreign_timm_models_are_one_line(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    assert "not a readable weights file" in _error("sknet50", tmp_path / "junk.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    assert "holds list, not a state dict" in _error("sknet50", tmp_path / "list.pt")
    torch.save(timm.create_model("skresnet18").state_dict(), tmp_path / "skresnet18.pt")
    msg = _error("sknet50", tmp_path / "skresnet18.pt")
    assert "keys have no counterpart in our models (layer1.0.conv1.paths.0.conv.weight" in msg
    assert "skresnext50_32x4d" in msg


def test_a_weights_file_that_does_not_exist_fails_the_check(tmp_path):
    with pytest.raises(WeightsError, match="weights file .*nope.pt' not found"):
        check_model("sknet50", {"weights": str(tmp_path / "nope.pt")})


@pytest.mark.parametrize("source, match", [
    ("timm:skresnext50_32x4d.nope", "Invalid pretrained tag .* Pretrained tags: skresnext50_32x4d.ra_in1k"),
    ("timm:no_such_model", "timm has no model 'no_such_model'"),
    ("timm:skresnet50", "timm publishes no pretrained weights for it"),
])
def test_timm_sources_are_checked_before_a_run(source, match):
    with pytest.raises(WeightsError, match=match):
        check_model("sknet50", {"weights": source})


def test_unavailable_timm_weights_say_how_to_pass_a_file(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)  # no network here anyway; this skips the retries
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    msg = str(pytest.raises(WeightsError, create_model, "sknet50", weights="timm:skresnext50_32x4d").value)
    assert msg.startswith("timm's pretrained weights skresnext50_32x4d.ra_in1k cannot be had here")
    assert "pass weights: skresnext50_32x4d.ra_in1k.pth" in msg and "\n" not in msg
    msg = str(pytest.raises(WeightsError, create_model, "timm:skresnext50_32x4d", pretrained=True).value)
    assert "skresnext50_32x4d.ra_in1k cannot be had here" in msg


def test_weights_options_are_not_architecture():
    assert canonical_options("sknet50", {"weights": "x.pt"}) == canonical_options("sknet50", {})
    assert canonical_options("timm:resnet18", {"pretrained": True}) == {}
    with pytest.raises(ConfigError, match="has no option 'pretrained'"):
        check_model("sknet50", {"pretrained": True})  # ours take weights: timm:<model>.<tag>
    with pytest.raises(WeightsError, match="pretrained must be true or false"):
        check_model("timm:resnet18", {"pretrained": "yes"})


def test_a_training_file_that_does_not_fit_says_what_it_was_trained_as(tmp_path):
    from harness.train.checkpoint import save_checkpoint

    state = create_model("sknet29", width=0.0625).state_dict()
    save_checkpoint(tmp_path / "w.pt", {"model": state, "model_name": "sknet29", "options": {"width": 0.0625}})
    msg = _error("sknet29", tmp_path / "w.pt", width=0.125)
    assert "tensors have the wrong shape" in msg
    assert msg.endswith("(the file was trained as sknet29 with options {'width': 0.0625})")
