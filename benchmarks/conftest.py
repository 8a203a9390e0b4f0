"""Options and set-up of the pytest-benchmark forward benchmarks (``benchmarks/test_forward.py``).

    pytest benchmarks/test_forward.py --benchmark-only --benchmark-json forward.json

``--models`` (names or fnmatch patterns, comma-separated; default: the paper's three 50-layer models),
``--batch-size`` (default 1), ``--side`` (input height and width; default: each model's own, 224 for the
50-layer models) and ``--threads`` (``auto``, the default: the harness's own rule, never more intra-op threads than
the cores other processes leave free, or ``OMP_NUM_THREADS`` when set; or a number) choose what is timed.

The project's pytest configuration passes ``--benchmark-disable`` so that the test suite never times anything;
pytest-benchmark refuses it together with ``--benchmark-only``. Asking for ``--benchmark-only`` here means asking for
the benchmarks, so this conftest turns benchmarking back on as ``--benchmark-enable`` would (which is the spelling
that works anywhere: ``pytest benchmarks/test_forward.py --benchmark-enable``).

Warm-up is pytest-benchmark's: unless the command line names ``--benchmark-warmup`` or
``--benchmark-warmup-iterations`` itself, the forward benchmarks run with ``warmup=True, warmup_iterations=1``,
which makes three untimed forward passes before the first timed one (the calibration pass, one warm-up pass while
calibrating, one warm-up round), as many as the harness's suites warm up with. As in the harness's timer, Python's
cycle collector is paused while timing (pytest-benchmark's ``disable_gc``).
"""

from __future__ import annotations

import pytest

DEFAULT_MODELS = "resnext50,senet50,sknet50"
WARMUP_ITERATIONS = 1
THREAD_CHOICE = pytest.StashKey[dict]()  # the harness ThreadChoice of this session, as a dict
MODELS = pytest.StashKey[list]()  # the registry names --models resolves to
THREADS = pytest.StashKey["int | None"]()  # --threads: a number, or None for the harness's automatic choice


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("forward benchmarks (benchmarks/test_forward.py)")
    group.addoption("--models", default=DEFAULT_MODELS, metavar="NAMES",
                    help=f"models to time: registry names or fnmatch patterns, comma-separated "
                         f"(default: {DEFAULT_MODELS})")
    group.addoption("--batch-size", type=int, default=1, metavar="N", help="images per forward pass (default: 1)")
    group.addoption("--side", type=int, default=None, metavar="PX",
                    help="input height and width (default: each model's own input size; 224 for the 50-layer models)")
    group.addoption("--threads", default="auto", metavar="N|auto",
                    help="torch intra-op threads (default: auto, the harness's rule: the cores other processes "
                         "leave free, or OMP_NUM_THREADS when set)")


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's own pytest_configure refuses -only with -disable
def pytest_configure(config: pytest.Config) -> None:
    from harness.errors import HarnessError
    from harness.measure.load import parse_threads

    if config.getoption("benchmark_only", False):
        config.option.benchmark_enable = True
    # a bad option is a usage error before anything is collected
    batch_size, side = config.getoption("batch_size"), config.getoption("side")
    if batch_size < 1:
        raise pytest.UsageError(f"--batch-size {batch_size}: must be at least 1")
    if side is not None and side < 1:
        raise pytest.UsageError(f"--side {side}: must be at least 1")
    config.stash[MODELS] = _model_names(config.getoption("models"))
    try:
        config.stash[THREADS] = parse_threads(str(config.getoption("threads")))
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None


def _warmup_on_command_line(config: pytest.Config) -> bool:
    return any(str(arg).startswith("--benchmark-warmup") for arg in config.invocation_params.args)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # as the harness's timer: Python's cycle collector paused while timing
    settings: dict = {"disable_gc": True}
    if not _warmup_on_command_line(config):
        settings.update(warmup=True, warmup_iterations=WARMUP_ITERATIONS)
    for item in items:
        if item.path.name == "test_forward.py" and "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.benchmark(**settings))


def _model_names(spec: str) -> list[str]:
    from harness.errors import HarnessError
    from harness.models.registry import check_model, list_models

    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        found = list_models(part) if any(c in part for c in "*?[") else [part]
        if not found:
            raise pytest.UsageError(f"--models {spec!r}: no registered model matches {part!r} "
                                    "(`python -m harness list` shows all)")
        for name in found:
            try:
                check_model(name, {})
            except HarnessError as exc:
                raise pytest.UsageError(f"--models: {exc}") from None
            if name not in names:
                names.append(name)
    if not names:
        raise pytest.UsageError("--models: give at least one model name")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One benchmark per model, batch size and input side: all three are in the benchmark's name and params."""
    if not {"model", "side", "batch_size"} <= set(metafunc.fixturenames):
        return
    from harness.models.registry import default_input_size

    config = metafunc.config
    batch_size, side = config.getoption("batch_size"), config.getoption("side")
    names = config.stash[MODELS]
    cases = [(name, side if side is not None else default_input_size(name)[-1]) for name in names]
    metafunc.parametrize("model,side", cases, ids=[f"{name}-{px}px" for name, px in cases])
    metafunc.parametrize("batch_size", [batch_size], ids=[f"bs{batch_size}"])


@pytest.fixture(scope="session")
def threads(pytestconfig: pytest.Config) -> int:
    """torch's intra-op threads for every benchmark of the session, chosen once by the harness's rule."""
    import torch

    from harness.measure.load import choose_threads

    choice = choose_threads(pytestconfig.stash[THREADS])
    torch.set_num_threads(choice.threads)
    pytestconfig.stash[THREAD_CHOICE] = choice.to_record()
    return choice.threads


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """What the regression gate checks beside the CPU model: torch's version and the thread choice."""
    import torch

    machine_info["torch"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()
    if THREAD_CHOICE in config.stash:
        machine_info["thread_choice"] = config.stash[THREAD_CHOICE]
