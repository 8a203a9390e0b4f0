"""Hostile or broken suite files are one line (a ConfigError naming the file), never a traceback or a hang."""

from __future__ import annotations

import os
import time

import pytest

from harness.config import load_suite, parse_suite
from harness.errors import ConfigError

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "name: x\nmodels: [*i]\n"
)


def _write(tmp_path, content: str | bytes, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _one_line(exc: pytest.ExceptionInfo, path) -> str:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    return message


def test_binary_or_undecodable_file(tmp_path):
    path = _write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary")
    with pytest.raises(ConfigError) as exc:
        load_suite(path)
    assert "not a UTF-8 text file" in _one_line(exc, path)


def test_unreadable_file_and_directory(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_suite(tmp_path)
    assert "is a directory" in _one_line(exc, tmp_path)
    path = _write(tmp_path, "name: x\n")
    os.chmod(path, 0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user that can read a mode-0 file (root)")
        with pytest.raises(ConfigError) as exc:
            load_suite(path)
        assert "cannot read" in _one_line(exc, path)
    finally:
        os.chmod(path, 0o644)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    path = _write(tmp_path, BILLION_LAUGHS)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        load_suite(path)
    assert time.perf_counter() - start < 5.0
    assert "expands to more than" in _one_line(exc, path)


def test_a_few_honest_anchors_still_work(tmp_path):
    path = _write(tmp_path, "name: x\ncomplexity:\n  models: &m [sknet50, resnext50]\nlatency: {models: *m}\n")
    suite = load_suite(path)
    assert [m.name for m in suite.latency.models] == ["sknet50", "resnext50"]


@pytest.mark.parametrize("depth", [60, 5000])
def test_very_deep_nesting_is_refused(tmp_path, depth):
    path = _write(tmp_path, "name: x\nmodels: [{name: sknet50, options: {a: " + "[" * depth + "]" * depth + "}}]\n")
    with pytest.raises(ConfigError) as exc:
        load_suite(path)
    assert "nested deeper than" in _one_line(exc, path)


def test_set_values_get_the_same_protection(tmp_path):
    path = _write(tmp_path, "name: x\nmodels: [sknet50]\n")
    with pytest.raises(ConfigError, match="nested deeper than"):
        load_suite(path, overrides=["seed=" + "[" * 100 + "]" * 100])
    levels = ["&l0 [" + ",".join(["x"] * 9) + "]"]
    levels += [f"&l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    with pytest.raises(ConfigError, match=r"--set models: expands to more than"):
        load_suite(path, overrides=["models=[" + ",".join(levels) + "]"])


@pytest.mark.parametrize("name", [".", "..", "...", "a/b", "../escape", "x" * 101, "", ".hidden"])
def test_suite_names_that_are_not_a_plain_folder_name_are_refused(name):
    with pytest.raises(ConfigError, match=r"key 'name'"):
        parse_suite({"name": name, "models": ["sknet50"]})


def test_set_cannot_rename_a_suite_into_a_path(tmp_path):
    path = _write(tmp_path, "name: x\nmodels: [sknet50]\n")
    with pytest.raises(ConfigError, match=r"key 'name'"):
        load_suite(path, overrides=["name=.."])


@pytest.mark.parametrize("label", ["x" * 101, "two\nlines", "tab\there", "nul\x00"])
def test_labels_that_break_files_or_tables_are_refused(label):
    with pytest.raises(ConfigError, match=r"key 'models.0.label'"):
        parse_suite({"name": "x", "models": [{"name": "sknet50", "label": label}]})
