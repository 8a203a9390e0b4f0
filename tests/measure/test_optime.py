"""Time per operator kind: the attribution rules on tiny modules whose op mix is known exactly, the kinds adding
up to the profiled time, the paired protocol's order and its refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.errors import MeasurementError
from harness.measure.mode import Mode
from harness.measure.opkinds import OP_KINDS, conv_kind, kind_of, op_class
from harness.measure.optime import _cycles, attribution_hooks, profile_op_time
from harness.measure.timer import prepare_benchmark
from harness.models.se import SqueezeExcite
from harness.models.sk import PAPER_BRANCHES, SelectiveKernel

# Self times telescope (an event's self time is its total minus its children's totals), so the kinds of one
# iteration sum to the iteration range's total exactly; what is left is float rounding of µs sums (≪ 1 ns).
SUM_TOL_MS = 1e-6


class GroupedConvAdd(nn.Module):
    """Only a grouped 3×3 conv and a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


def _bench(model: nn.Module, size=(8, 8, 8), batch: int = 1):
    return prepare_benchmark(model, input_shape=size, batch_size=batch, device="cpu", mode=Mode())


def _profile(benches, iterations=3):
    torch.manual_seed(0)
    return profile_op_time(benches, iterations=iterations, warmup=1, unprofiled_iterations=1)


def _kinds_with_time(model_result) -> set[str]:
    return {k for k, v in model_result.kinds_ms.items() if any(v)}


def test_a_grouped_conv_and_an_add_are_conv_grouped_and_eltwise():
    result = _profile({"tiny": _bench(GroupedConvAdd())})
    tiny = result.models["tiny"]
    kinds = _kinds_with_time(tiny)
    assert {"conv.grouped", "eltwise"} <= kinds
    # nothing else the module does: the interpreter between ops and (maybe) allocation bookkeeping only
    assert kinds <= {"conv.grouped", "eltwise", "python", "memory"}
    assert set(tiny.ops_ms["eltwise"]) == {"aten::add"}
    assert set(tiny.ops_ms["conv.grouped"]) == {"aten::conv2d"}  # the conv's internals count as the conv
    assert tiny.op_calls == {"conv.grouped": 1, "eltwise": 1}  # the two ops the forward calls, once each
    assert len(tiny.total_ms) == 3 and len(tiny.unprofiled_ms) == 1 and len(tiny.warmup_ms) == 1
    for i, total in enumerate(tiny.total_ms):
        assert abs(sum(v[i] for v in tiny.kinds_ms.values()) - total) < SUM_TOL_MS
    assert tiny.host_ms == tiny.total_ms  # on CPU the profiled time is the host's


def test_sk_unit_splits_into_branches_attention_and_select():
    sk = SelectiveKernel(8, 8, stride=1, branches=PAPER_BRANCHES, groups=4).eval()
    se = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), SqueezeExcite(8, reduction=2)).eval()
    result = _profile({"sk": _bench(sk), "se": _bench(se)})
    sk_kinds = _kinds_with_time(result.models["sk"])
    # branch 1: grouped 3×3; branch 2: grouped 3×3 with dilation 2; fuse: mean of each branch; fc_reduce and
    # fc_select: 1×1 convs on the 1×1 pooled map; softmax over two branches: a sigmoid; select: sub_/mul_/add_
    assert {"conv.grouped", "conv.dilated", "attn.pool", "attn.fc", "attn.softmax", "eltwise"} <= sk_kinds
    assert not sk_kinds & {"conv.1x1", "conv.dense", "conv.other", "fc", "pool"}
    assert set(result.models["sk"].ops_ms["attn.softmax"]) == {"aten::sigmoid"}
    se_kinds = _kinds_with_time(result.models["se"])
    assert {"conv.1x1", "attn.pool", "attn.fc", "attn.softmax", "eltwise"} <= se_kinds
    assert not se_kinds & {"conv.grouped", "conv.dilated", "pool", "fc"}
    assert list(result.kinds) == [k for k in OP_KINDS if k in result.kinds]
    for m in result.models.values():
        for i, total in enumerate(m.total_ms):
            assert abs(sum(v[i] for v in m.kinds_ms.values()) - total) < SUM_TOL_MS


def test_hooks_are_removed_after_profiling():
    model = GroupedConvAdd()
    with attribution_hooks(model):
        assert model.conv._forward_pre_hooks and model.conv._forward_hooks
    assert not model.conv._forward_pre_hooks and not model.conv._forward_hooks


@pytest.mark.parametrize(("conv", "shape", "kind"), [
    (nn.Conv2d(8, 8, 3, groups=4), (1, 8, 5, 5), "grouped"),
    (nn.Conv2d(8, 8, 3, groups=4, dilation=2), (1, 8, 5, 5), "dilated"),  # dilated wins over grouped (SK)
    (nn.Conv2d(8, 8, 3, groups=8), (1, 8, 5, 5), "depthwise"),
    (nn.Conv2d(8, 16, 1), (1, 8, 5, 5), "1x1"),
    (nn.Conv2d(8, 16, 1), (1, 8, 1, 1), "fc"),  # a 1×1 conv on a pooled map is a fully connected layer
    (nn.Conv2d(3, 8, 7), (1, 3, 9, 9), "dense"),
])
def test_conv_kind(conv, shape, kind):
    assert conv_kind(conv, torch.zeros(shape)) == kind


def test_op_table_and_kind_rules():
    assert [op_class(n) for n in ("aten::conv2d", "aten::mkldnn_convolution", "aten::_slow_conv2d_forward",
                                  "aten::cudnn_convolution")] == ["conv"] * 4
    assert op_class("aten::_convert_indices_from_coo_to_csr") == "other"
    assert [op_class(n) for n in ("aten::mean", "aten::adaptive_avg_pool2d", "aten::max_pool2d")] == ["pool"] * 3
    assert [op_class(n) for n in ("aten::cat", "aten::stack", "aten::copy_", "aten::empty")] == ["memory"] * 4
    assert [op_class(n) for n in ("aten::add", "aten::mul_", "aten::addcmul", "aten::sum")] == ["eltwise"] * 4
    assert op_class("aten::batch_norm") == "bn" and op_class("aten::relu_") == "act"
    assert kind_of("aten::mean", conv=None, attention=True) == "attn.pool"
    assert kind_of("aten::mean", conv=None, attention=False) == "pool"
    assert kind_of("aten::sigmoid", conv=None, attention=True) == "attn.softmax"
    assert kind_of("aten::sigmoid", conv=None, attention=False) == "act"
    assert kind_of("aten::softmax", conv=None, attention=True) == "attn.softmax"
    assert kind_of("aten::conv2d", conv="fc", attention=True) == "attn.fc"
    assert kind_of("aten::conv2d", conv="dilated", attention=True) == "conv.dilated"  # SK's branch, in SK
    assert kind_of("aten::conv2d", conv=None, attention=False) == "conv.other"
    assert kind_of("aten::linear", conv=None, attention=False) == "fc"
    assert kind_of(None, conv="grouped", attention=False) == "python"
    assert kind_of("aten::frobnicate", conv=None, attention=False) == "other"


class Event:
    """A profiler event as ``attribute`` reads it: a name, a parent, its self time."""

    def __init__(self, name: str, parent: Event | None = None, self_us: float = 0.0, start: int = 0) -> None:
        from torch.autograd import DeviceType

        self.name, self.cpu_parent, self.self_cpu_time_total = name, parent, self_us
        self.device_type, self.is_async, self.kernels = DeviceType.CPU, False, []
        self.cpu_time_total = self_us
        self.time_range = type("Range", (), {"start": start})()


def test_a_compiled_models_time_is_its_kernels_its_convolutions_by_backend_and_its_guards():
    from harness.measure.optime import MODEL_RANGE, attribute

    root = Event(MODEL_RANGE + "sk", self_us=0.0)
    root.cpu_time_total = 1000.0
    region = Event("Torch-Compiled Region: 0/0", root, self_us=10.0)  # a wrapper: its own time is the interpreter's
    call = Event("## Call CompiledFxGraph f1 ##", region, self_us=20.0)
    conv = Event("aten::convolution", call, self_us=5.0)
    events = [root, region, call, conv,
              Event("TorchDynamo Cache Lookup", root, self_us=30.0),
              Event("graph_0_cpp_fused__native_batch_norm_legit_no_training_relu_3", call, self_us=200.0),
              Event("aten::_slow_conv2d_forward", Event("aten::_convolution", conv), self_us=500.0),
              Event("aten::mkldnn_convolution", Event("aten::_convolution", conv), self_us=235.0)]
    (iteration,) = attribute(events, device_time=False)["sk"]
    assert dict(iteration["kinds"]) == {"python": 30.0, "guards": 30.0, "fused": 200.0, "conv.im2col": 500.0,
                                        "conv.other": 240.0}
    assert sum(iteration["kinds"].values()) == 1000.0  # self times still add up to the iteration
    assert kind_of("triton_poi_fused_add_0", conv=None, attention=False) == "fused"


def test_cycles_follow_the_engines_rotation():
    # the timing engine's Williams design: every model in every position and after every other one alike
    assert list(_cycles(["a", "b", "c"], 7)) == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"],
                                                  ["c", "b", "a"], ["a", "c", "b"], ["b", "a", "c"],
                                                  ["a", "b", "c"]]


def test_a_group_must_share_batch_and_be_inference():
    with pytest.raises(MeasurementError, match="same batch"):
        profile_op_time({"a": _bench(GroupedConvAdd()), "b": _bench(GroupedConvAdd(), batch=2)}, iterations=1,
                        warmup=0, unprofiled_iterations=0)
    train = prepare_benchmark(GroupedConvAdd(), input_shape=(8, 8, 8), batch_size=1, device="cpu", mode=Mode(),
                              train=True)
    with pytest.raises(MeasurementError, match="inference"):
        profile_op_time({"a": train}, iterations=1, warmup=0, unprofiled_iterations=0)
    with pytest.raises(MeasurementError, match="at least one model"):
        profile_op_time({}, iterations=1, warmup=0, unprofiled_iterations=0)


@pytest.mark.gpu
def test_cuda_kinds_are_kernel_time_and_add_up():
    bench = prepare_benchmark(SelectiveKernel(64, 64, stride=1, branches=PAPER_BRANCHES, groups=8), input_shape=(
        64, 32, 32), batch_size=8, device="cuda", mode=Mode())
    result = profile_op_time({"sk": bench}, iterations=3, warmup=2, unprofiled_iterations=1)
    sk = result.models["sk"]
    assert result.timer == "profiler_cuda_device_time"
    assert {"conv.grouped", "conv.dilated", "attn.pool", "eltwise"} <= _kinds_with_time(sk)
    assert "python" not in _kinds_with_time(sk)  # the interpreter launches kernels; it runs none
    for i, total in enumerate(sk.total_ms):
        assert total > 0 and abs(sum(v[i] for v in sk.kinds_ms.values()) - total) < SUM_TOL_MS
    assert all(h > 0 for h in sk.host_ms)


def test_the_profilers_own_chatter_stays_off_the_terminal(capfd):
    """libkineto writes "USDT: … profiler_start/stop" lines straight to fd 2 when the profiler starts and stops: they
    go to the debug log; anything else written to stderr meanwhile still reaches it."""
    import os

    class Chatty(GroupedConvAdd):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            os.write(2, b"a warning of the model's own\n")
            return super().forward(x)

    _profile({"tiny": _bench(Chatty())}, iterations=1)
    err = capfd.readouterr().err
    assert "USDT" not in err and "profiler_start" not in err
    assert "a warning of the model's own" in err
