"""MACs of the building blocks against hand-computed formulas; SK attention properties."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import harness
from harness.errors import ConfigError
from harness.measure.macs import count_macs
from harness.models.se import SqueezeExcite
from harness.models.sk import Branch, SelectiveKernel, attention_dim, parse_branch


def test_grouped_conv_macs():
    cin, cout, k, g, h, w = 64, 128, 3, 32, 14, 14
    conv = nn.Conv2d(cin, cout, k, padding=1, groups=g, bias=False)
    assert count_macs(conv, input_size=(cin, h, w)).macs == cout * h * w * (cin // g) * k * k


def test_se_unit_macs():
    c, r, h, w = 256, 16, 7, 7
    se = SqueezeExcite(c, reduction=r)
    # two 1×1 convs on a 1×1 map (fvcore counts the weight MACs, not the bias adds); mean/sigmoid/mul uncounted
    expected = c * (c // r) + (c // r) * c
    result = count_macs(se, input_size=(c, h, w))
    assert result.macs == expected
    assert {"aten::mean", "aten::sigmoid", "aten::mul"} <= set(result.uncounted_ops)


def test_sk_unit_macs():
    c, g, h, w = 128, 32, 8, 8
    sk = SelectiveKernel(c, c, stride=1, branches=[Branch(3, 1), Branch(3, 2)], groups=g, r=16, L=32)
    d = max(c // 16, 32)
    # fvcore counts an affine eval-mode BN as 2 per element (scale and shift)
    branch = c * h * w * (c // g) * 9 + 2 * c * h * w  # grouped conv + BN
    attention = c * d + 2 * d + d * 2 * c  # fc_reduce + BN on the 1×1 map + fc_select
    assert count_macs(sk, input_size=(c, h, w)).macs == 2 * branch + attention


def test_attention_dims_of_sknet50_are_32_32_32_64():
    model = harness.create_model("sknet50")
    dims = []
    for stage in model.stages:
        dims.append(stage[0].conv2.fc_reduce[0].out_channels)
    assert dims == [32, 32, 32, 64]
    assert [attention_dim(c, r=16, L=32) for c in (128, 256, 512, 1024)] == [32, 32, 32, 64]


def _reference_forward(sk: SelectiveKernel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The literal formulation of [P] Eq. 1–6: stack, sum, GAP, fc, BN, ReLU, fc, softmax, weighted sum."""
    u = torch.stack([p(x) for p in sk.paths], dim=1)  # B, M, C, H, W
    s = u.sum(1).mean((2, 3), keepdim=True)
    conv, bn, relu = sk.fc_reduce
    z = relu(bn(conv(s)))
    a = sk.fc_select(z).view(x.shape[0], len(sk.paths), -1, 1, 1).softmax(dim=1)
    return (u * a).sum(1), a


def _randomise_bn(module: nn.Module) -> None:
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(bn.weight, 0.5, 1.5)
            nn.init.uniform_(bn.bias, -0.2, 0.2)


@pytest.mark.parametrize("branches", [["3x3", "3x3d2"], ["3x3", "3x3d2", "3x3d3"]])
@pytest.mark.parametrize("train", [False, True])
def test_sk_fast_path_equals_literal_formulation(branches, train):
    torch.manual_seed(0)
    sk = SelectiveKernel(64, 64, stride=2, branches=[parse_branch(b) for b in branches], groups=8)
    _randomise_bn(sk)
    x = torch.randn(3, 64, 16, 16)
    sk.train(train)
    if not train:
        with torch.inference_mode():
            fast = sk(x)
            ref, _ = _reference_forward(sk, x)
    else:
        sk.eval()  # BN in eval so both passes see identical statistics; autograd on
        fast = sk(x)
        ref, _ = _reference_forward(sk, x)
        fast.sum().backward()
        assert all(p.grad is not None for p in sk.parameters() if p.requires_grad)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


def test_sk_attention_sums_to_one_per_channel():
    torch.manual_seed(0)
    sk = SelectiveKernel(64, 64, stride=1, branches=[Branch(3, 1), Branch(3, 2), Branch(3, 3)], groups=8).eval()
    with torch.inference_mode():
        attn = sk.attention_weights(torch.randn(4, 64, 8, 8))
    assert attn.shape == (4, 3, 64)
    torch.testing.assert_close(attn.sum(dim=1), torch.ones(4, 64))
    assert (attn > 0).all()


def test_without_attention_branches_are_summed():
    sk = SelectiveKernel(32, 32, stride=1, branches=[Branch(3, 1), Branch(3, 2)], groups=4, attention=False).eval()
    x = torch.randn(2, 32, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(sk(x), sk.paths[0](x) + sk.paths[1](x))
    assert not hasattr(sk, "fc_select")


def test_branch_parsing_and_errors():
    assert parse_branch("5x5g64") == Branch(5, 1, 64)
    assert parse_branch({"kernel": 3, "dilation": 2}) == Branch(3, 2)
    assert parse_branch("3x3d3").receptive == 7
    with pytest.raises(ConfigError, match="not understood"):
        parse_branch("3x5")
    with pytest.raises(ConfigError, match="needs at least 2 branches"):
        harness.create_model("sknet50", branches=["3x3"], attention=True)


def test_bn_folding_at_inference_is_exact_and_invisible_to_fvcore():
    torch.manual_seed(0)
    model = harness.create_model("sknet50", width=0.25, num_classes=10).eval()
    _randomise_bn(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), torch.enable_grad():
        unfolded = model(x).detach()  # autograd on → the plain conv → BN path
    with torch.inference_mode():
        folded = model(x)
    torch.testing.assert_close(folded, unfolded, rtol=1e-4, atol=1e-5)
    # a change of the BN statistics invalidates the cached folded weights
    for bn in model.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_var.mul_(2.0)
    with torch.inference_mode():
        refolded = model(x)
    with torch.no_grad(), torch.enable_grad():
        expected = model(x).detach()
    torch.testing.assert_close(refolded, expected, rtol=1e-4, atol=1e-5)
    # fvcore traces the unfolded graph, so BN is still counted
    assert "batch_norm" in count_macs(model, input_size=(3, 64, 64)).by_operator


def test_under_torch_compile_the_bn_runs_unfolded(monkeypatch):
    """The fold's cache key (data pointers, version counters) is Python state dynamo cannot trace: compiled, the
    conv → BN → ReLU runs as the modules it is, and Inductor fuses it."""
    from harness.models.blocks import conv_bn_act

    block = conv_bn_act(3, 4, kernel=3).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.inference_mode():
        block(x)
        assert block._folded is not None  # eager inference folds (and caches)
        block._folded = None
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        torch.testing.assert_close(block(x), block[2](block[1](block[0](x))))
        assert block._folded is None  # compiled: never folded


@pytest.mark.slow
def test_a_compiled_sk_network_is_one_graph_without_breaks():
    """Measured before the fix: SKNet-50 compiled into 33 graphs with 47 breaks (one per conv) and reached dynamo's
    recompilation limit."""
    model = harness.create_model("sknet26", width=0.125).eval()
    with torch.inference_mode():
        explained = torch._dynamo.explain(model)(torch.randn(1, 3, 64, 64))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
