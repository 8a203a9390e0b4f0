"""Shared fixtures. No network in tests; CUDA tests carry the ``gpu`` marker and skip without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _short_load_probe(monkeypatch):
    """A run that chooses its threads watches the machine for a second first; in tests that second is only
    waiting (what the probe sees is tested with its own durations in tests/measure/test_load.py)."""
    import harness.measure.load

    monkeypatch.setattr(harness.measure.load, "PROBE_S", 0.02)


@pytest.fixture
def plugin_file(tmp_path: Path) -> Path:
    """A user plugin registering a small model whose cost grows with an option."""
    path = tmp_path / "my_plugin.py"
    path.write_text(
        "import torch\n"
        "from torch import nn\n"
        "from harness import register_model\n\n"
        f"NAME = 'tinynet_{tmp_path.name[-8:]}'.replace('-', '_')\n\n"
        "@register_model(NAME, family='user', description='tiny conv net for tests', input_size=(3, 16, 16))\n"
        "def build(*, channels: int = 8, repeat: int = 1, num_classes: int = 10) -> nn.Module:\n"
        "    layers = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]\n"
        "    for _ in range(repeat - 1):\n"
        "        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]\n"
        "    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]\n"
        "    return nn.Sequential(*layers)\n"
    )
    return path


_REPO = Path(__file__).resolve().parents[1]


def _outputs() -> set[Path]:
    return {p for folder in ("results", "reports") for p in (_REPO / folder).rglob("*")}


@pytest.fixture(scope="session", autouse=True)
def _tests_write_nothing_into_the_repository():
    """Tests write under tmp_path: a test that forgets --out / --reports would litter results/ or reports/."""
    before = _outputs()
    yield
    new = sorted(str(p.relative_to(_REPO)) for p in _outputs() - before)
    assert not new, f"tests wrote into the repository: {new[:5]}"


@pytest.fixture(autouse=True)
def _two_timing_processes(monkeypatch):
    """A timing section that does not say how many worker processes it is timed in gets two in tests: each
    process is a fresh interpreter (about two seconds before it times anything), and two are the fewest that
    exercise the process level (a test that needs another count says so in its suite)."""
    import harness.measure.processes

    monkeypatch.setattr(harness.measure.processes, "DEFAULT_PROCESSES", 2)
