"""capture_environment: JSON-serialisable, complete, and tolerant of missing tools."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from harness import environment
from harness.environment import capture_environment


def test_environment_is_json_and_has_the_provenance_fields() -> None:
    env = capture_environment("cpu")
    json.dumps(env)
    assert env["torch"] == torch.__version__
    assert env["packages"]["torch"] is not None
    assert env["cpu"]["torch_threads"] == torch.get_num_threads()
    assert env["cpu"]["torch_interop_threads"] == torch.get_num_interop_threads()
    assert env["cpu"]["logical_cores"] >= 1
    assert set(env["backend_flags"]) >= {"cudnn_benchmark", "tf32"}
    assert env["device"]["name"] == "cpu"
    for key in ("python", "platform", "hostname", "cuda", "cudnn", "gpus", "nvidia_smi"):
        assert key in env


def test_missing_nvidia_smi_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment.shutil, "which", lambda name: None)
    assert capture_environment()["nvidia_smi"] is None


def test_failing_nvidia_smi_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired(cmd="nvidia-smi", timeout=10)

    monkeypatch.setattr(environment.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(environment.subprocess, "run", hang)
    assert capture_environment()["nvidia_smi"] is None


def test_nvidia_smi_rows_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    row = "0, NVIDIA H100 80GB HBM3, 550.54, 00000000:1B:00.0, 1980, 2619, 1980, 2619, 700.00, Enabled, 34"

    def fake_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args=[], returncode=0, stdout=row + "\n", stderr="")

    monkeypatch.setattr(environment.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(environment.subprocess, "run", fake_run)
    (gpu,) = capture_environment()["nvidia_smi"]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3"
    assert gpu["driver_version"] == "550.54"
    assert gpu["clocks.sm"] == "1980"


def test_missing_cpuinfo_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "_cpuinfo_lines", lambda: [])
    cpu = capture_environment()["cpu"]
    assert cpu["physical_cores"] is None
    json.dumps(cpu)


def test_physical_cores_count_distinct_socket_core_pairs() -> None:
    lines = [
        "processor : 0", "physical id : 0", "core id : 0", "",
        "processor : 1", "physical id : 0", "core id : 0", "",  # hyper-thread sibling
        "processor : 2", "physical id : 0", "core id : 1", "",
        "processor : 3", "physical id : 1", "core id : 0",
    ]  # fmt: skip
    assert environment._physical_cores(lines) == 3


def test_git_state_does_not_write_to_the_repository(tmp_path) -> None:
    """Plain `git status` refreshes a stale index and writes it (taking index.lock); a run must not."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.txt").write_text("a\n")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    import os
    import time

    time.sleep(0.01)
    os.utime(repo / "f.txt")  # same content, new stat info: the index is stale
    state = environment.git_state(repo)
    assert state["commit"] and state["dirty"] is False
    assert index.stat().st_mtime_ns == before


def test_a_cpu_run_creates_no_cuda_context_and_names_gpus_from_nvidia_smi(monkeypatch) -> None:
    """On a GPU node a --device cpu run must not initialise CUDA (hundreds of MB on every GPU): torch's device
    queries are not called; the GPU names come from nvidia-smi."""
    import harness.environment as environment

    def forbidden(*args, **kwargs):
        raise AssertionError("a CPU run queried CUDA")

    monkeypatch.setattr(torch.cuda, "get_device_properties", forbidden)
    monkeypatch.setattr(torch.cuda, "device_count", forbidden)
    monkeypatch.setattr(environment, "_cudnn_version", forbidden)
    monkeypatch.setattr(environment, "_nvidia_smi", lambda: [{"index": "0", "name": "NVIDIA H100"}])
    env = capture_environment("cpu")
    assert env["gpus"] == [{"index": 0, "name": "NVIDIA H100"}] and env["cudnn"] is None


def test_the_peak_matmul_ramps_up_then_keeps_the_best_of_three_windows(monkeypatch) -> None:
    from harness.measure import peak

    windows = []
    real = peak._window

    def counted(a, b, dev, seconds):
        windows.append(seconds)
        return real(a, b, dev, seconds)

    monkeypatch.setattr(peak, "_window", counted)
    assert peak.measure_peak_gmacs("cpu", size=64, min_time_s=0.06) > 0
    assert windows == [0.03, 0.02, 0.02, 0.02]
