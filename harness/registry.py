"""Model registry: one namespace for our paper-faithful models, timm peers and user plugins.

``register_model`` decorates a small builder function whose keyword-only arguments are the model's
options (defaults are the paper's). ``create_model`` validates options against that signature, so an
unknown option fails with the list of valid ones. Names prefixed ``timm:`` are built by timm with
``pretrained=False`` so a peer implementation can sit beside ours in a report.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.util
import inspect
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from harness.errors import ConfigError, DuplicateModelError, UnknownModelError

log = logging.getLogger(__name__)

TIMM_PREFIX = "timm:"

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    family: str
    paper_table: str
    description: str
    input_size: tuple[int, int, int] = (3, 224, 224)

    @property
    def options(self) -> dict[str, Any]:
        """Option name → default, from the builder's keyword-only parameters."""
        params = inspect.signature(self.builder).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


_REGISTRY: dict[str, ModelEntry] = {}
_BUILTINS_LOADED = False


def register_model(
    name: str | None = None,
    *,
    family: str = "user",
    paper_table: str = "",
    description: str = "",
    input_size: tuple[int, int, int] = (3, 224, 224),
) -> Callable[[Builder], Builder]:
    """Register a builder under ``name`` (default: the function's name).

    The builder takes only keyword-only options with defaults; they become the model's options.
    """

    def decorator(fn: Builder) -> Builder:
        key = name or fn.__name__
        if key.startswith(TIMM_PREFIX):
            raise DuplicateModelError(f"model name {key!r}: the 'timm:' prefix is reserved for timm models")
        if key in _REGISTRY:
            prev = _REGISTRY[key].builder
            raise DuplicateModelError(
                f"model {key!r} is already registered by {prev.__module__}.{prev.__qualname__}; "
                "pick another name"
            )
        doc = description or (inspect.getdoc(fn) or "").split("\n", 1)[0]
        _REGISTRY[key] = ModelEntry(key, fn, family, paper_table, doc, tuple(input_size))
        return fn

    return decorator


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        importlib.import_module("harness.models")


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; raises ``UnknownModelError`` with close matches."""
    _load_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise UnknownModelError(
        f"unknown model {name!r}{_suggest(name, sorted(_REGISTRY))} "
        "(`python -m harness list` shows all; prefix 'timm:' for timm models)"
    )


def check_model(name: str, options: dict[str, Any]) -> None:
    """Raise ``ConfigError`` / ``UnknownModelError`` if ``name`` or one of ``options`` does not exist.

    Builds nothing: suites are checked with it before a run starts, and ``create_model`` before it builds.
    timm models' options are timm's business (``timm.create_model`` rejects bad ones itself).
    """
    if name.startswith(TIMM_PREFIX):
        import timm

        timm_name = name[len(TIMM_PREFIX):]
        if not timm.list_models(timm_name):
            raise UnknownModelError(f"unknown timm model {timm_name!r}{_suggest(timm_name, timm.list_models())}")
        return
    valid = sorted(get_entry(name).options)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"model {name!r} has no option {unknown[0]!r}{hint}; valid options: {', '.join(valid) or '(none)'}"
        )


def create_model(name: str, **options: Any) -> nn.Module:
    """Build model ``name`` with ``options`` (keyword-only options of its builder)."""
    check_model(name, options)
    if name.startswith(TIMM_PREFIX):
        import timm

        return timm.create_model(name[len(TIMM_PREFIX):], pretrained=False, **options)
    return get_entry(name).builder(**options)


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
    _load_builtins()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def import_plugin(spec: str) -> None:
    """Import user code that registers models: a module name or a path to a ``.py`` file."""
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"plugin file {spec!r} not found; pass a module name or an existing .py path")
        mod_name = f"harness_plugin_{path.stem}_{abs(hash(str(path))) % 10**8}"
        if mod_name in sys.modules:
            return
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        loader_spec.loader.exec_module(module)
    else:
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"plugin module {spec!r} cannot be imported ({exc}); check the name or PYTHONPATH"
            ) from exc
    log.info("imported plugin %s", spec)


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

    Used to match a measured model to the paper rows that describe the same network.
    """
    if name.startswith(TIMM_PREFIX):
        return _jsonable(dict(options))
    defaults = get_entry(name).options
    return _jsonable({**defaults, **options})
