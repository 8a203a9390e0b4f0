"""Operator kinds: which kind of work every profiled op's time is (``harness.measure.optime`` attributes with it).

One table of rules (``_OP_RULES``, by aten op name), refined by module knowledge an op name lacks: a conv's kind
comes from its module (groups, dilation, kernel, input), and pooling, fully connected layers and gates inside an
attention module (SE, SK) are the attention's. The kinds and the reasons for each rule are written beside them.
"""

from __future__ import annotations

import re

import torch
from torch import nn

# Attention modules by class name: nothing in a module's structure says "this gates another tensor", so they are
# named. Ours (harness.models.se / sk) and timm's SE / SK / ECA / CBAM-style modules.
ATTENTION_MODULES = frozenset({
    "SqueezeExcite", "SelectiveKernel",  # harness.models.se, harness.models.sk (our SK's select runs in it too)
    "SEModule", "EffectiveSEModule", "SqueezeExciteCl", "SelectiveKernelAttn",  # timm
    "EcaModule", "CecaModule", "CbamModule", "LightCbamModule", "GatherExcite",  # timm
})

# Kinds in the order reports list them. Every self time lands in exactly one.
OP_KINDS = (
    "conv.dense",      # k×k conv, groups 1 (the stem's 7×7, a ResNet's 3×3)
    "conv.1x1",        # 1×1 conv, groups 1, on a spatial map (a bottleneck's reduce / expand, a projection shortcut)
    "conv.grouped",    # k×k grouped conv, dilation 1 (ResNeXt's 3×3 with 32 groups, SK's first branch)
    "conv.depthwise",  # groups = input channels (ShuffleNetV2's 3×3)
    "conv.dilated",    # dilation > 1, grouped or not (SK's second branch: 3×3 with dilation 2 = the paper's "5×5")
    "conv.other",      # a conv op with no conv module around it (functional calls we did not hook, a compiled model)
    "conv.im2col",     # ... run by aten's im2col + matmul path (``_slow_conv2d_forward``), not oneDNN (compiled)
    "bn",              # batch norm that ran as its own op (ours fold BN into the conv at inference; timm's do not)
    "act",             # ReLU and other activations (a sigmoid outside an attention module is one)
    "pool",            # the network's own pooling: stem max pool, global average pool of the head
    "fc",              # linear layers outside attention (the classifier)
    "attn.pool",       # the attention's global pooling (SE's squeeze, SK's fuse: mean of each branch)
    "attn.fc",         # the attention's fully connected layers (1×1 convs on a 1×1 map, or linear)
    "attn.softmax",    # the attention's gate: SK's softmax across branches (a sigmoid for two), SE's sigmoid
    "eltwise",         # element-wise arithmetic: residual adds, SE's scale, SK's select (a·U1 + (1−a)·U2), sums
    "memory",          # allocation, copies, views and layout: cat / stack / copy_ / clone / contiguous / empty / view …
    "fused",           # a compiled model's generated kernels (Inductor's C++ / Triton): fused BN, activations, sums …
    "guards",          # a compiled model's guard checks before each call (dynamo's cache lookup)
    "python",          # the interpreter between ops: module calls, hooks, the profiler's own ranges
    "other",           # any other op
)

# Operator-name rules, first match wins, on the op's name without ``aten::``. Why each class is what it is:
_OP_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # every conv entry point and backend (conv2d → convolution → _convolution → mkldnn_convolution / cudnn_…)
    ("conv", re.compile(r"^_?(?:mkldnn_|cudnn_|miopen_|thnn_|slow_|_slow_|nnpack_|_nnpack_spatial_|mps_)?conv"
                        r"(?!ert)")),
    ("bn", re.compile(r"batch_norm")),
    # linear and the matmuls it lowers to
    ("fc", re.compile(r"^(?:linear|addmm|mm|matmul|bmm|baddbmm)$")),
    # spatial reductions are pooling: SE/SK squeeze with mean((2, 3)), the head with adaptive_avg_pool2d
    ("pool", re.compile(r"^(?:_?adaptive_(?:avg|max)_pool\dd|(?:max|avg)_pool\dd(?:_with_indices)?|mean)$")),
    # gates: a softmax across SK's branches, sigmoid for SE and for SK with two branches
    ("gate", re.compile(r"^(?:_?softmax|_?log_softmax|sigmoid_?|hardsigmoid_?)$")),
    ("act", re.compile(r"^(?:relu_?|clamp_min_?|threshold_?|gelu_?|silu_?|hardswish_?|leaky_relu_?|elu_?|"
                       r"relu6|hardtanh_?|mish_?|prelu|_prelu_kernel)$")),
    ("eltwise", re.compile(r"^(?:add|sub|mul|div|rsub|neg|addcmul|addcdiv|sum|prod|pow|exp|sqrt|rsqrt|abs|"
                           r"maximum|minimum|where|lerp|fill)_?$")),
    # allocation, copies and views: views cost only dispatch time, but it is the same kind of bookkeeping
    ("memory", re.compile(r"^(?:cat|_cat|stack|copy_|clone|contiguous|empty|empty_like|empty_strided|zeros|"
                          r"zeros_like|ones|ones_like|to|_to_copy|as_strided_?|view|_unsafe_view|reshape|"
                          r"_reshape_alias|select|slice|narrow|unsqueeze|squeeze|permute|transpose|t|expand|"
                          r"flatten|resize_|detach|detach_|chunk|split|split_with_sizes|unbind|alias|"
                          r"channel_shuffle|native_channel_shuffle|pixel_shuffle|lift_fresh)$")),
)


def op_class(name: str) -> str:
    """The class of aten op ``name`` (``aten::mean`` → ``pool``): conv, bn, fc, pool, gate, act, eltwise,
    memory or other."""
    bare = name.split("::", 1)[1] if "::" in name else name
    return next((cls for cls, rule in _OP_RULES if rule.search(bare)), "other")


# What torch.compile puts around and between the aten ops a profiler sees. Its generated kernels and guard checks
# are kinds of their own; its wrappers ("Torch-Compiled Region", "## Call CompiledFxGraph …") are not ops: the
# attribution looks through them (``is_wrapper``), as through the harness's own ranges.
FUSED_KERNEL = re.compile(r"^(?:graph_\d+_)?(?:cpp_fused|triton_|cpp_kernel)")
GUARDS = "TorchDynamo Cache Lookup"
# aten's own convolution paths (im2col + matmul, "slow_conv" in their names), taken instead of oneDNN for some
# inputs: a compiled model on the CPU runs its 1×1 convolutions there
SLOW_CONV = re.compile(r"^aten::(?:_slow_conv2d_forward|slow_conv_dilated[23]d|thnn_conv2d|slow_conv3d)")


def is_wrapper(name: str) -> bool:
    """An event that is neither an op nor a kernel (torch.compile's regions and graph calls)."""
    return "::" not in name and not FUSED_KERNEL.search(name) and not name.startswith(GUARDS)


def kind_of(op: str | None, *, conv: str | None, attention: bool, slow_conv: bool = False) -> str:
    """The kind of a self time under outermost op ``op`` (None: outside any op, the interpreter), inside conv range
    ``conv`` (the innermost; None if none) and, if ``attention``, inside an attention module; ``slow_conv``: the
    time is inside aten's im2col convolution path (``SLOW_CONV``)."""
    if op is None:
        return "python"
    if FUSED_KERNEL.search(op):
        return "fused"
    if op.startswith(GUARDS):
        return "guards"
    cls = op_class(op)
    if cls == "conv":
        if conv == "fc":
            return "attn.fc" if attention else "fc"
        return f"conv.{conv}" if conv else ("conv.im2col" if slow_conv else "conv.other")
    if cls in ("pool", "fc"):
        return f"attn.{cls}" if attention else cls
    if cls == "gate":
        return "attn.softmax" if attention else "act"
    return cls


def conv_kind(conv: nn.modules.conv._ConvNd, x: torch.Tensor | None) -> str:
    """A conv's kind: ``fc`` for a 1×1 conv on a 1×1 map (the attention's fcs), else by dilation, groups and
    kernel (``dilated`` wins over ``grouped``: it is what sets SK's second branch apart)."""
    ones = all(k == 1 for k in conv.kernel_size)
    if ones and x is not None and x.dim() >= 3 and all(s == 1 for s in x.shape[2:]):
        return "fc"
    if any(d > 1 for d in conv.dilation):
        return "dilated"
    if conv.groups > 1:
        return "depthwise" if conv.groups == conv.in_channels else "grouped"
    return "1x1" if ones else "dense"
