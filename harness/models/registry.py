"""Model registry: one namespace for our paper-faithful models, timm peers and user plugins.

``register_model`` decorates a small builder function whose keyword-only arguments are the model's options
(defaults are the paper's). It works bare (``@register_model``, timm's convention), called
(``@register_model()``, ``@register_model("name", family=...)``) and as a plain call on a function
(``register_model(fn)``). ``create_model`` validates options against the builder's signature, so an unknown
option fails with the list of valid ones. Names prefixed ``timm:`` are built by timm with
``pretrained=False`` (unless ``pretrained: true`` or ``weights:`` says otherwise, see ``harness.models.weights``)
so a peer implementation can sit beside ours in a report.

The built-in families are registered before anything else reads or writes the registry, exactly once; a
built-in module that fails to import is retried on the next call instead of leaving the registry empty.
Importing this module does not import torch.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import logging
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, DuplicateModelError, UnknownModelError

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

TIMM_PREFIX = "timm:"
# The families that ship with the harness, imported (and so registered) before any user registration.
BUILTIN_MODULES = (
    "harness.models.resnext",
    "harness.models.senet",
    "harness.models.sknet",
    "harness.models.shufflenetv2",
    "harness.workloads.reference",
)

Builder = Callable[..., "nn.Module"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    family: str
    paper_table: str
    description: str
    input_size: tuple[int, int, int] = (3, 224, 224)
    plain: str | None = None  # the network this one adds attention to (its overhead is measured against it)

    @property
    def options(self) -> dict[str, Any]:
        """Option name → default, from the builder's keyword-only parameters."""
        params = inspect.signature(self.builder).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


_REGISTRY: dict[str, ModelEntry] = {}
_builtins_state = "unloaded"  # → "loading" → "loaded"; back to "unloaded" when an import fails


def load_builtins() -> None:
    """Register the built-in families (once; retried after a failed import)."""
    global _builtins_state
    if _builtins_state != "unloaded":
        return  # loaded, or loading: the built-in modules' own registrations come through here
    _builtins_state = "loading"
    try:
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
    except BaseException:
        _builtins_state = "unloaded"
        raise
    _builtins_state = "loaded"


def _add(fn: Builder, *, name: str | None, family: str, paper_table: str, description: str,
         input_size: tuple[int, int, int], plain: str | None) -> Builder:
    if not callable(fn):
        raise TypeError(f"register_model needs a builder function, got {type(fn).__name__}")
    if fn.__module__ not in BUILTIN_MODULES:
        load_builtins()  # built-in names first, so a user's duplicate is blamed on the user's builder
    key = name or fn.__name__
    if key.startswith(TIMM_PREFIX):
        raise DuplicateModelError(f"model name {key!r}: the 'timm:' prefix is reserved for timm models")
    if key in _REGISTRY:
        prev = _REGISTRY[key].builder
        raise DuplicateModelError(
            f"{fn.__module__}.{fn.__qualname__} registers model {key!r}, which is already registered by "
            f"{prev.__module__}.{prev.__qualname__}; pick another name"
        )
    doc = description or (inspect.getdoc(fn) or "").split("\n", 1)[0]
    _REGISTRY[key] = ModelEntry(key, fn, family, paper_table, doc, tuple(input_size), plain)
    return fn


def register_model(
    name: str | Builder | None = None,
    *,
    family: str = "user",
    paper_table: str = "",
    description: str = "",
    input_size: tuple[int, int, int] = (3, 224, 224),
    plain: str | None = None,
) -> Any:
    """Register a builder under ``name`` (default: the function's name); returns the builder unchanged.

    The builder takes only keyword-only options with defaults; they become the model's options. ``plain``
    names the network this one adds attention to (SKNet-50 → ResNeXt-50): reports measure its overhead
    against that one.
    """
    meta = {"family": family, "paper_table": paper_table, "description": description, "input_size": input_size,
            "plain": plain}
    if callable(name):  # @register_model or register_model(fn)
        return _add(name, name=None, **meta)
    if name is not None and not isinstance(name, str):
        raise TypeError(
            f"register_model's name must be a string, got {type(name).__name__} {name!r}; "
            "write @register_model, @register_model() or @register_model('my_name')"
        )
    return lambda fn: _add(fn, name=name, **meta)


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; raises ``UnknownModelError`` with close matches."""
    load_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise UnknownModelError(
        f"unknown model {name!r}{_suggest(name, sorted(_REGISTRY))} "
        "(`python -m harness list` shows all; prefix 'timm:' for timm models)"
    )


def check_model(name: str, options: dict[str, Any]) -> None:
    """Raise ``ConfigError`` / ``UnknownModelError`` if ``name``, an option name or an option value is wrong.

    Builds nothing: suites are checked with it before a run starts.
    """
    resolve_options(name, options)


def resolve_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The build options of ``options``, checked against the builder's keyword-only parameters and coerced.

    Coerced where the meaning is clear (``"false"`` → False, ``"1e-9"`` → 1e-9, ``"8"`` → 8), refused with one
    line naming the option otherwise. Types come from the annotations, or for an unannotated option from its
    default's type (bool, int, float, str). timm models' options are timm's business (``timm.create_model``
    rejects bad ones itself). The weights options (``weights``; ``pretrained`` for timm models) are split off
    and checked by ``harness.models.weights``; they are not in the result.
    """
    from harness.models.weights import check_source, split_options

    options, source = split_options(name, options)
    if source is not None:
        check_source(source)
    if name.startswith(TIMM_PREFIX):
        _check_timm_name(name)
        return dict(options)
    entry = get_entry(name)
    valid = sorted(entry.options)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"model {name!r} has no option {unknown[0]!r}{hint}; valid options: {', '.join(valid) or '(none)'}"
        )
    types = _option_types(entry.builder)
    return {key: _coerce(name, key, value, types.get(key)) for key, value in options.items()}


def _check_timm_name(name: str) -> None:
    import timm

    timm_name = name[len(TIMM_PREFIX):]
    if not timm_name or any(ch in timm_name for ch in "*?["):
        raise UnknownModelError(f"model {name!r}: write one timm model name after 'timm:' (e.g. "
                                "timm:skresnext50_32x4d); patterns are for `python -m harness list 'timm:*sk*'`")
    if not timm.list_models(timm_name):
        raise UnknownModelError(f"unknown timm model {timm_name!r}{_suggest(timm_name, timm.list_models())}")


def _option_types(builder: Builder) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(builder)
    except Exception:  # noqa: BLE001 - a plugin's unresolvable annotation: fall back to its defaults' types
        hints = {}
    types = {}
    for param in inspect.signature(builder).parameters.values():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if param.name in hints:
            types[param.name] = hints[param.name]
        elif type(param.default) in (bool, int, float, str):
            types[param.name] = type(param.default)
    return types


def _coerce(model: str, key: str, value: Any, hint: Any) -> Any:
    if hint is None or hint is Any:
        return value
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(hint).validate_python(value)
    except ValidationError as exc:
        shown = re.sub(r"\b(?:[A-Za-z_]\w*\.)+(\w+)", r"\1", hint.__name__ if isinstance(hint, type) else str(hint))
        raise ConfigError(f"model {model!r}: option {key!r} expects {shown}, got {value!r} "
                          f"({exc.errors()[0]['msg'].lower()})") from None


def create_model(name: str, **options: Any) -> nn.Module:
    """Build model ``name`` with ``options`` (keyword-only options of its builder), checked and coerced.

    ``weights=`` (a file or ``"timm:<model>[.<tag>]"``; ``pretrained=True`` for timm models) loads trained
    weights into it, exactly (``harness.models.weights``).
    """
    from harness.models.weights import load_weights, split_options

    _, source = split_options(name, options)
    options = resolve_options(name, options)
    if name.startswith(TIMM_PREFIX):
        import timm

        model = timm.create_model(name[len(TIMM_PREFIX):], pretrained=False, **options)
    else:
        model = get_entry(name).builder(**options)
    if source is not None:
        load_weights(model, name, source)
    return model


def default_input_size(name: str) -> tuple[int, int, int]:
    """The input a model is meant for (C, H, W): the registered one, or timm's pretrained config."""
    if name.startswith(TIMM_PREFIX):
        import timm

        cfg = timm.get_pretrained_cfg(name[len(TIMM_PREFIX):])
        return tuple(cfg.input_size) if cfg is not None else (3, 224, 224)
    return get_entry(name).input_size


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching an fnmatch ``pattern``, sorted. ``timm:`` patterns query timm."""
    if pattern.startswith(TIMM_PREFIX):
        import timm

        return sorted(TIMM_PREFIX + n for n in timm.list_models(pattern[len(TIMM_PREFIX):]))
    load_builtins()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, str):
        # kernel specs like "3X3d2" are case-insensitive; other strings are kept as written
        return value.strip().lower() if re.fullmatch(r"\s*\d+[xX]\d+\w*\s*", value) else value
    return value


def canonical_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options with the builder's defaults filled in, in JSON form: equal configs compare equal.

    Used to match a measured model to the paper rows that describe the same network; the weights options
    (what to load, not what to build) are left out.
    """
    from harness.models.weights import split_options

    options, _ = split_options(name, options)
    if name.startswith(TIMM_PREFIX):
        return _jsonable(dict(options))
    defaults = get_entry(name).options
    return _jsonable({**defaults, **resolve_options(name, options)})
