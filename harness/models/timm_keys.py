"""The explicit key map from timm's ResNeXt family to ours, and which timm model equals which of ours.

timm's ``resnext50_32x4d``, ``resnext101_32x4d`` (``timm.models.resnet.Bottleneck``), ``seresnext50_32x4d``,
``seresnext101_32x4d`` (the same with ``se``) and ``skresnext50_32x4d`` (``timm.models.sknet.
SelectiveKernelBottleneck``) compute the same functions as our ``resnext50``, ``resnext101``, ``senet50``,
``senet101`` and ``sknet50`` ([P] Table 1 architectures; asserted to 1e-4 on random weights by the tests). Every
timm key is renamed by exactly one rule below; a key no rule takes is an error, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from harness.errors import WeightsError

if TYPE_CHECKING:
    import torch

# Our model ← the timm model with the same function (asserted to 1e-4 on random weights by the tests).
TIMM_EQUIVALENTS: dict[str, str] = {
    "resnext50": "resnext50_32x4d",
    "resnext101": "resnext101_32x4d",
    "senet50": "seresnext50_32x4d",
    "senet101": "seresnext101_32x4d",
    "sknet50": "skresnext50_32x4d",
}

_BN = r"(?P<p>weight|bias|running_mean|running_var|num_batches_tracked)"
_BLOCK = r"layer(?P<layer>[1-9])\.(?P<block>\d+)\."
# timm key (full match) → our key; "{blk}" is our block prefix ``stages.<layer - 1>.<block>.``.
# timm.models.resnet (ResNet, Bottleneck with optional SE) and timm.models.sknet (SelectiveKernelBottleneck).
_TIMM_TO_OURS: tuple[tuple[str, str], ...] = (
    (r"conv1\.weight", "stem.0.0.weight"),
    (rf"bn1\.{_BN}", "stem.0.1.{p}"),
    (r"fc\.(?P<p>weight|bias)", "fc.{p}"),
    # Bottleneck: conv1/bn1 (1×1), conv2/bn2 (3×3 grouped), conv3/bn3 (1×1), se, downsample
    (_BLOCK + r"conv(?P<i>[123])\.weight", "{blk}conv{i}.0.weight"),
    (_BLOCK + rf"bn(?P<i>[123])\.{_BN}", "{blk}conv{i}.1.{p}"),
    (_BLOCK + r"se\.fc(?P<i>[12])\.(?P<p>weight|bias)", "{blk}post.fc{i}.{p}"),
    (_BLOCK + r"downsample\.0\.weight", "{blk}shortcut.0.weight"),
    (_BLOCK + rf"downsample\.1\.{_BN}", "{blk}shortcut.1.{p}"),
    # SelectiveKernelBottleneck: conv1/conv3 are ConvNormAct, conv2 the SK unit (paths + attn)
    (_BLOCK + r"conv(?P<i>[13])\.conv\.weight", "{blk}conv{i}.0.weight"),
    (_BLOCK + rf"conv(?P<i>[13])\.bn\.{_BN}", "{blk}conv{i}.1.{p}"),
    (_BLOCK + r"conv2\.paths\.(?P<m>\d+)\.conv\.weight", "{blk}conv2.paths.{m}.0.weight"),
    (_BLOCK + rf"conv2\.paths\.(?P<m>\d+)\.bn\.{_BN}", "{blk}conv2.paths.{m}.1.{p}"),
    (_BLOCK + r"conv2\.attn\.fc_reduce\.weight", "{blk}conv2.fc_reduce.0.weight"),
    (_BLOCK + rf"conv2\.attn\.bn\.{_BN}", "{blk}conv2.fc_reduce.1.{p}"),
    (_BLOCK + r"conv2\.attn\.fc_select\.weight", "{blk}conv2.fc_select.weight"),
)
_COMPILED = tuple((re.compile(pattern), template) for pattern, template in _TIMM_TO_OURS)
SHOWN = 3  # keys named in an error


def convert_timm_state_dict(state: Mapping[str, torch.Tensor], *, where: str = "timm state dict"
                            ) -> dict[str, torch.Tensor]:
    """Rename every key of a timm ResNeXt / SE-ResNeXt / SK-ResNeXt state dict to ours (``_TIMM_TO_OURS``)."""
    out: dict[str, torch.Tensor] = {}
    unmatched = []
    for key, value in state.items():
        new = _rename(key)
        if new is None:
            unmatched.append(key)
        else:
            out[new] = value
    if unmatched:
        raise WeightsError(
            f"{where}: {len(unmatched)} keys have no counterpart in our models ({first_keys(unmatched)}); only "
            f"timm's {', '.join(sorted(TIMM_EQUIVALENTS.values()))} convert"
        )
    return out


def _rename(key: str) -> str | None:
    for pattern, template in _COMPILED:
        match = pattern.fullmatch(key)
        if match:
            groups = match.groupdict()
            blk = f"stages.{int(groups['layer']) - 1}.{groups['block']}." if "layer" in groups else ""
            return template.format(blk=blk, **groups)
    return None


def first_keys(keys: list[str]) -> str:
    """The first ``SHOWN`` keys and how many more, for one-line errors."""
    more = f" … +{len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more
