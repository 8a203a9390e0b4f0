"""Reading a suite: YAML file → ``--set`` overrides → validated, frozen ``Suite``.

Every problem is one line (a ``ConfigError``): an unknown key names the file, the key path and the closest
valid key; a wrong type or value names the key and what is expected.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from harness.config.schema import SUITE_SCHEMA, Suite
from harness.errors import ConfigError


def _model_class(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside an annotation like ``X | None`` or ``list[X]`` (for key suggestions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, list, tuple, dict, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_class(arg)
            if found is not None:
                return found
    return None


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    cls: type[BaseModel] | None = Suite
    for part in loc:
        if cls is None or not isinstance(part, str):
            continue
        fields = cls.model_fields
        name = next((k for k, f in fields.items() if part in (k, f.alias)), None)
        cls = _model_class(fields[name].annotation) if name else None
    if cls is None:
        return []
    return [f.alias or k for k, f in cls.model_fields.items()]


def _format_error(err: ErrorDetails, source: str) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in {"function-after", "str", "list"}))
    path = ".".join(str(p) for p in loc if not str(p).startswith(("list[", "dict[", "tuple[", "function-")))
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        valid = _valid_keys(loc[:-1])
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        return f"{source}: unknown key '{path}'; {hint}"
    if err["type"] == "missing":
        return f"{source}: missing required key '{path}'"
    if not path:  # a check across sections (Suite's own validators): the message names the keys
        return f"{source}: {err['msg'].removeprefix('Value error, ')}"
    got = err.get("input")
    shown = json.dumps(got, default=str) if not isinstance(got, dict) else "a mapping"
    message = _PATTERN_HINTS.get(str(loc[-1]), err["msg"]) if err["type"] == "string_pattern_mismatch" \
        else err["msg"].removeprefix("Value error, ")
    return f"{source}: key '{path}': {message} (got {shown[:60]})"


_PATTERN_HINTS = {
    "name": "a suite name becomes a folder: letters, digits, '_', '-' and '.', not starting with '.'",
    "label": "a label is one line of text, without control characters",
}


def parse_suite(data: Any, *, source: str = "<suite>") -> Suite:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a suite is a YAML mapping with at least 'name' and 'models'")
    version = data.get("schema", SUITE_SCHEMA)
    if version != SUITE_SCHEMA:
        raise ConfigError(f"{source}: suite schema {version!r} is not supported; this harness reads schema 1")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_format_error(errors[0], source) + more) from None


# A suite is a few levels deep and a few hundred nodes; these bounds leave room and stop hostile YAML
# ("billion laughs" aliases, thousands of nested brackets) before it costs memory or time.
MAX_NODES = 100_000
MAX_DEPTH = 32


def _bounded(node: yaml.Node, where: str) -> None:
    """Refuse a composed YAML graph whose expansion (aliases followed) is too large or too deep."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, expanded = stack.pop()
        if id(current) in size:
            continue
        children = _children(current)
        if not expanded:
            stack.append((current, True))
            stack.extend((child, False) for child in children if id(child) not in size)
            continue
        size[id(current)] = 1 + sum(size[id(c)] for c in children)
        depth[id(current)] = 1 + max((depth[id(c)] for c in children), default=0)
        if size[id(current)] > MAX_NODES:
            raise ConfigError(f"{where}: expands to more than {MAX_NODES:,} values (YAML aliases?); "
                              "a suite is a few hundred")
        if depth[id(current)] > MAX_DEPTH:
            raise ConfigError(f"{where}: nested deeper than {MAX_DEPTH} levels; a suite is a few levels deep")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def safe_yaml(text: str, *, where: str) -> Any:
    """``yaml.safe_load`` that refuses alias bombs and very deep nesting with a one-line ``ConfigError``."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _bounded(node, where)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{where}: nested deeper than {MAX_DEPTH} levels; a suite is a few levels deep") from None
    finally:
        loader.dispose()


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``KEY.PATH=VALUE`` overrides (values parsed as YAML) applied to a suite's raw mapping."""
    data = json.loads(json.dumps(data))  # a deep copy; the caller's mapping stays as read
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. --set train.epochs=2")
        try:
            value = safe_yaml(raw, where=f"--set {key.strip()}")
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: '{part}' is not a mapping in this suite")
            node = child
        node[parts[-1]] = value
    return data


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"suite file {str(path)!r} not found; pass a path like suites/sknet_vs_senet.yaml") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory; pass a suite file like suites/sknet_vs_senet.yaml") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start}); a suite is YAML text") from None


def load_suite(path: str | Path, *, overrides: list[str] | None = None) -> Suite:
    """Read and validate a suite file (plus ``--set`` overrides); every problem is a one-line ``ConfigError``."""
    path = Path(path)
    try:
        data = safe_yaml(_read_text(path), where=str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if overrides:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a suite is a YAML mapping; --set needs one")
        data = apply_overrides(data, overrides)
    source = f"{path} (with --set {' '.join(overrides)})" if overrides else str(path)
    return parse_suite(data, source=source)
