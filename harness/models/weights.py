"""Loading trained weights into a model: our own state dicts, the training task's checkpoints, and timm's
state dicts of the structurally equal timm models, converted by the explicit key map of ``timm_keys``.

``create_model(name, weights=SOURCE)`` and the ``weights:`` model option of suites take SOURCE as
- a file, read with ``torch.load(weights_only=True)`` (``.safetensors`` with safetensors), holding
  - a checkpoint or weights file written by the harness's training task (``{"format": 1, "model": ...}``),
  - our ``state_dict()``,
  - a timm state dict of the equal timm model (``TIMM_EQUIVALENTS``; ``resnext50`` ← ``resnext50_32x4d`` …),
    also under a ``"state_dict"`` key (timm's training checkpoints) or with DDP's ``module.`` prefix;
- ``"timm:<model>[.<tag>]"``: timm's pretrained weights, fetched by timm (from its Hugging Face cache when
  offline). ``timm:`` models also take ``pretrained: true`` (timm's default tag).

Nothing is loaded partially: every key of the file must find its place in the model and every key of the
model must be filled, with equal shapes; otherwise one ``WeightsError`` names the first few keys. The only
tolerance is BatchNorm's ``num_batches_tracked`` counter, which older files lack and which changes no output.
Importing this module does not import torch (the registry's option checks use it).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import WeightsError
from harness.models.timm_keys import convert_timm_state_dict, first_keys

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

TIMM_PREFIX = "timm:"
WEIGHTS_OPTION = "weights"
PRETRAINED_OPTION = "pretrained"  # timm: models only


@dataclass(frozen=True)
class WeightsInfo:
    """What was loaded, for the record: ``source`` file | timm, the file or ``timm`` name, its format."""

    source: str
    ref: str
    format: str  # harness-checkpoint | harness-state-dict | timm-state-dict | timm-pretrained
    converted_from_timm: bool
    tensors: int
    sha256: str | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------- options


def split_options(name: str, options: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(build options, weights source) of a model's options: ``weights`` and a timm model's ``pretrained``
    say what to load, not what to build."""
    build = dict(options)
    source = build.pop(WEIGHTS_OPTION, None)
    if name.startswith(TIMM_PREFIX) and PRETRAINED_OPTION in build:
        pretrained = build.pop(PRETRAINED_OPTION)
        if not isinstance(pretrained, bool):
            raise WeightsError(f"model {name!r}: option pretrained must be true or false, got {pretrained!r}")
        if pretrained and source is None:
            source = name  # "timm:<arch>": timm's default pretrained tag
    if source is not None and not isinstance(source, (str, Path)):
        raise WeightsError(f"model {name!r}: weights must be a file path or 'timm:<model>[.<tag>]', got {source!r}")
    return build, None if source is None else str(source)


def check_source(source: str) -> None:
    """Cheap checks before a run: the file exists, or timm knows the model and tag and has weights for it."""
    if source.startswith(TIMM_PREFIX):
        _timm_pretrained_cfg(source[len(TIMM_PREFIX):])
        return
    path = Path(source).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {source!r} not found; pass an existing file or 'timm:<model>[.<tag>]'")


def _timm_pretrained_cfg(spec: str) -> Any:
    import timm

    arch = spec.split(".", 1)[0]
    if not timm.is_model(arch):
        raise WeightsError(f"weights 'timm:{spec}': timm has no model {arch!r} (`python -m harness list 'timm:*'`)")
    try:
        cfg = timm.models.get_pretrained_cfg(spec)
    except RuntimeError as exc:  # an unknown tag
        tags = ", ".join(timm.list_pretrained(f"{arch}.*")) or "none"
        raise WeightsError(f"weights 'timm:{spec}': {exc} Pretrained tags: {tags}") from None
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise WeightsError(f"weights 'timm:{spec}': timm publishes no pretrained weights for it")
    return cfg


def timm_weights_name(source: str) -> str:
    """``timm:<model>`` → ``<model>.<default tag>``; a tagged name unchanged (the report matches on it)."""
    spec = source[len(TIMM_PREFIX):]
    if "." in spec:
        return spec
    return f"{spec}.{_timm_pretrained_cfg(spec).tag}"


# ----------------------------------------------------------------------------------------- loading


def load_weights(model: nn.Module, name: str, source: str) -> WeightsInfo:
    """Load ``source`` into ``model`` (registry name ``name``) in place, exactly; returns what was loaded."""
    if source.startswith(TIMM_PREFIX):
        state = _timm_pretrained_state(source)
        info = WeightsInfo("timm", timm_weights_name(source), "timm-pretrained", False, len(state))
        fmt = "timm-state-dict"
    else:
        path = Path(source).expanduser()
        fmt, state = read_state_dict(path)
        info = WeightsInfo("file", str(path), fmt, False, len(state), sha256=_sha256(path))
    try:
        converted = _load(model, name, state, fmt, info)
    except WeightsError as exc:
        raise WeightsError(f"{exc}{_trained_as(source)}") from None
    log.info("loaded %s into %s (%s)", info.ref, name, info.format)
    return replace(info, converted_from_timm=converted)


def _load(model: nn.Module, name: str, state: dict[str, torch.Tensor], fmt: str, info: WeightsInfo) -> bool:
    """Convert if needed and load exactly; whether the state was converted from timm's key names."""
    converted = False
    if fmt == "timm-state-dict" and not name.startswith(TIMM_PREFIX):
        state = convert_timm_state_dict(state, where=info.ref)
        converted = True
    elif fmt != "timm-state-dict" and name.startswith(TIMM_PREFIX):
        raise WeightsError(f"{info.ref}: a harness state dict cannot be loaded into timm model {name!r}; build "
                           "the harness model it was saved from instead")
    load_exactly(model, state, where=info.ref)
    return converted


def _trained_as(source: str) -> str:
    """For a harness training file that does not fit: the model and options it was trained with."""
    if source.startswith(TIMM_PREFIX):
        return ""
    obj = _read_file(Path(source).expanduser())
    if isinstance(obj, Mapping) and obj.get("model_name"):
        return f" (the file was trained as {obj['model_name']} with options {dict(obj.get('options') or {})})"
    return ""


def _timm_pretrained_state(source: str) -> dict[str, torch.Tensor]:
    import timm

    spec = source[len(TIMM_PREFIX):]
    _timm_pretrained_cfg(spec)
    try:
        donor = timm.create_model(spec, pretrained=True)
    except (OSError, RuntimeError, ValueError) as exc:  # no network and not in the cache; a corrupt download
        reason = " ".join(str(exc).split())[:200]
        name = timm_weights_name(source)
        raise WeightsError(
            f"timm's pretrained weights {name} cannot be had here ({type(exc).__name__}: {reason}); on a machine "
            f"with network run: python -c \"import timm, torch; torch.save(timm.create_model('{name}', "
            f"pretrained=True).state_dict(), '{name}.pth')\" and pass weights: {name}.pth (offline, "
            "HF_HUB_OFFLINE=1 makes timm use its cache without retrying)"
        ) from None
    return donor.state_dict()


def read_state_dict(path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """(format, state dict) of a weights file: harness-checkpoint | harness-state-dict | timm-state-dict."""
    obj = _read_file(path)
    fmt = None
    if isinstance(obj, Mapping) and isinstance(obj.get("format"), int) and isinstance(obj.get("model"), Mapping):
        fmt, obj = "harness-checkpoint", obj["model"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path}: holds {type(obj).__name__}, not a state dict (a mapping of names to tensors)")
    _check_tensors(obj, path)
    state = _strip_prefix(dict(obj), "module.")
    if fmt is None:
        fmt = _guess_format(state)
    return fmt, state


def _read_file(path: Path) -> Any:
    import torch

    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({_one_line(exc)})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many types (pickle, zip, weights_only refusals)
        raise WeightsError(f"{path}: not a readable weights file ({type(exc).__name__}: {_one_line(exc)}); "
                           "pass a state dict saved with torch.save") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _strip_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    if all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _check_tensors(state: Mapping[Any, Any], path: Path) -> None:
    """Every key a string and every value a dense, real tensor in memory (floating point, or an integer counter
    such as BatchNorm's ``num_batches_tracked``): anything else would fail later in a raw torch error, or load
    silently wrong (a complex weight's imaginary part dropped)."""
    import torch

    keys = [k for k in state if not isinstance(k, str)]
    if keys:
        raise WeightsError(f"{path}: keys {', '.join(repr(k) for k in keys[:3])} are not strings; not a state dict "
                           "(a mapping of parameter names to tensors)")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: entries {', '.join(bad[:3])} are not tensors; not a state dict")
    for key, tensor in state.items():
        problem = ("sparse" if tensor.layout != torch.strided else "on the meta device (no data)"
                   if tensor.device.type == "meta" else f"of dtype {str(tensor.dtype).removeprefix('torch.')}"
                   if tensor.is_complex() or tensor.is_quantized or not (tensor.is_floating_point() or _integer(tensor))
                   else None)
        if problem:
            raise WeightsError(f"{path}: tensor {key!r} is {problem}; weights must be dense real tensors (floating "
                               "point, or integer counters) saved with torch.save(model.state_dict())")


def _integer(tensor: torch.Tensor) -> bool:
    import torch

    return tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)


def _guess_format(state: Mapping[str, Any]) -> str:
    keys = list(state)
    if any(k.startswith(("stem.", "stages.")) for k in keys):
        return "harness-state-dict"
    if any(k.startswith("layer1.") for k in keys) or "conv1.weight" in state:
        return "timm-state-dict"
    return "harness-state-dict"  # e.g. a plugin model's own state dict; the exact load judges it


def load_exactly(model: nn.Module, state: Mapping[str, torch.Tensor], *, where: str) -> None:
    """``model.load_state_dict`` after checking every key and shape, so a mismatch is one line naming keys."""
    own = model.state_dict()
    state = dict(state)
    for key in own:  # BatchNorm's step counter: absent from older files, never used in eval
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = own[key]
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        parts = ([f"missing {len(missing)} keys ({first_keys(missing)})"] if missing else []) + (
            [f"{len(extra)} keys the model does not have ({first_keys(extra)})"] if extra else [])
        raise WeightsError(f"{where} does not fit {type(model).__name__}: {'; '.join(parts)}; "
                           "build the model with the options the weights were trained with")
    ints = [k for k in own if own[k].is_floating_point() and not state[k].is_floating_point()]
    if ints:
        raise WeightsError(f"{where}: {len(ints)} tensors are not floating point where the model's are "
                           f"({', '.join(f'{k} {state[k].dtype}' for k in ints[:3])}); not weights of this model")
    wrong = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if wrong:
        shown = ", ".join(f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong[:3])
        hint = (f"; set the model's num_classes to {state[wrong[0]].shape[0]}" if wrong[0].startswith("fc.")
                and len(wrong) <= 2 else "; build the model with the options the weights were trained with")
        raise WeightsError(f"{where}: {len(wrong)} tensors have the wrong shape ({shown}){hint}")
    model.load_state_dict(state, strict=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
