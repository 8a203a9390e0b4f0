"""GPU acceptance run: every CUDA path of the harness, once, in under 8 minutes on one H100-class GPU.

Steps (each a subprocess with its own time limit; a failing step is recorded and the next one runs):

1. ``pytest -m gpu``: the CUDA tests (event timing, autocast, the device-resident loader, AMP training).
2. The default suite on CUDA (``--device cuda``): the paired timing engine on a GPU — the four models timed
   together, CUDA events per iteration, one host sync per cycle — for latency at batch 1 and throughput at
   batch 256 in fp32, the profiled operator kinds (op_time), the matmul peak; training is left to step 5
   (CIFAR cannot be downloaded offline).
3. Throughput at batch 256 in bf16 and fp16, channels_last, for ResNeXt-50 / SENet-50 / SKNet-50.
4. One ``torch.compile`` mode (``default``, bf16, channels_last) on SKNet-50.
5. A few epochs of ``suites/cifar_short.yaml`` on generated CIFAR-format data: bf16 AMP, channels_last;
   img/s and s/epoch.
6. The SK-speed benchmark on CUDA (``benchmarks/sk_speed.py``: our sknet50 vs timm's skresnext50_32x4d).
7. torchrun with one process and ``HARNESS_DISTRIBUTED=always``: DDP over a one-rank NCCL group.

It writes ``summary.json`` and ``summary.md`` (and ``results.tar.gz`` with the run dirs, ``logs.tar.gz`` with
each step's output) under ``--out``. It runs offline from the repository alone; packages the GPU image may
lack (fvcore and its dependencies, pydantic) travel as wheels prepared here, where PyPI is reachable::

    python benchmarks/gpu_acceptance.py --prepare-wheels .whl        # here: downloads / builds cp312 wheels
    # there (device tool, carry [".whl"]), from the repository root:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
      PYTHONPATH=/tmp/site:$PWD python3 benchmarks/gpu_acceptance.py --out $OUT

``--dry-run`` runs the same steps on the CPU with tiny models and windows (CUDA-only steps are skipped and
say so), so the script is tested here and cannot rot; ``--plan`` only prints the commands.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the GPU image lacks (its package list has torch, timm, pandas, scipy, matplotlib, tqdm, PyYAML,
# psutil, filelock, tabulate, portalocker …): pure-Python wheels, or cp312 manylinux ones.
WHEELS = ("fvcore==0.1.5.post20221221", "iopath==0.1.10", "yacs==0.1.8", "termcolor", "pydantic",
          "pydantic-core", "annotated-types", "typing-inspection")


@dataclass
class Step:
    name: str
    command: list[str]
    timeout_s: int
    env: dict[str, str] = field(default_factory=dict)
    gpu_only: bool = False
    status: str = "not run"
    wall_s: float = 0.0
    run_dir: str | None = None
    numbers: dict = field(default_factory=dict)
    note: str = ""


def _harness(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def _run_args(suite: str, out: Path, device: str, *sets: str, extra: tuple[str, ...] = ()) -> list[str]:
    command = _harness("run", suite, "--device", device, "--out", str(out / "results"), "--reports",
                       str(out / "reports"), "--no-progress", *extra)
    for item in sets:
        command += ["--set", item]
    return command


TINY = ("models=[{name: resnext29_16x32d, label: rx, options: {width: 0.125}}, "
        "{name: sknet29, label: sk, options: {width: 0.125}}]", "latency.models=null", "throughput.models=null",
        "complexity.flop_crosscheck=false", "latency.rounds=1", "throughput.rounds=1", "latency.min_time_s=0.1",
        "latency.max_time_s=0.5", "throughput.min_time_s=0.1", "throughput.max_time_s=0.5",
        "throughput.batch_sizes=[4]")
SHORT = ("latency.min_time_s=1", "latency.max_time_s=3", "throughput.min_time_s=1", "throughput.max_time_s=3")


def plan(out: Path, *, dry: bool) -> list[Step]:
    device = "cpu" if dry else "cuda"
    size = TINY if dry else SHORT
    data = out / "data"
    cifar = ("train.epochs=1", "train.seeds=[0]", "complexity=null", "train.max_batches_per_epoch=4",
             "train.width=0.0625", "train.run_on=[cpu, cuda]", "train.batch_size=16", "train.eval_batch_size=64",
             "train.models=[sknet29]") if dry else (
        "train.epochs=3", "train.seeds=[0]", "complexity=null")
    nets = ("models=[resnext50, senet50, sknet50]", "throughput.models=null")
    modes = [] if dry else nets
    only_throughput = ("train=null", "complexity=null", "latency=null")  # after `size`, which sets latency keys
    return [
        Step("pytest -m gpu", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu",
                               str(ROOT / "tests")], 180, gpu_only=True),
        Step("default suite", _run_args("suites/sknet_vs_senet.yaml", out, device, "train=null", *size), 300),
        Step("throughput bf16 + channels_last", _run_args(
            "suites/sknet_vs_senet.yaml", out, device, *size, *only_throughput, *modes, "throughput.dtype=bf16",
            "throughput.channels_last=true"), 150),
        Step("throughput fp16", _run_args(
            "suites/sknet_vs_senet.yaml", out, device, *size, *only_throughput, *modes, "throughput.dtype=fp16"),
            150, gpu_only=True),
        Step("torch.compile default", _run_args(
            "suites/sknet_vs_senet.yaml", out, device, *size, *only_throughput,
            *(["models=[reference_convnet]"] if dry else ["models=[sknet50]", "throughput.models=null"]),
            "throughput.compile=default",
            *([] if dry else ["throughput.dtype=bf16", "throughput.channels_last=true"])), 300),
        Step("fake CIFAR", _harness("make-fake-cifar", str(data), "--n-train", "512" if dry else "10000",
                                    "--n-test", "128" if dry else "2000"), 120),
        Step("cifar_short (bf16 AMP, channels_last)", _run_args(
            "suites/cifar_short.yaml", out, device, *cifar, extra=("--data-dir", str(data))), 300),
        Step("SK speed", [sys.executable, str(ROOT / "benchmarks" / "sk_speed.py"), "--device", device, "--batch",
                          "2" if dry else "256", "--dtype", "fp32" if dry else "bf16", "--rounds", "2" if dry else "3",
                          "--seconds", "0.2" if dry else "2", "--input-size", "64" if dry else "224",
                          "--json", str(out / "sk_speed.json")], 180),
        Step("torchrun, 1 process, NCCL", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                           "--nproc_per_node", "1", "-m", "harness", *_run_args(
            "suites/cifar_short.yaml", out, device, *cifar, "train.models=[sknet29]",
            extra=("--data-dir", str(data)))[3:]], 240, env={"HARNESS_DISTRIBUTED": "always"}),
    ]


def _numbers(step: Step, stdout: str, out: Path) -> None:
    if step.name == "SK speed" and (out / "sk_speed.json").is_file():
        step.numbers = json.loads((out / "sk_speed.json").read_text())
        return
    if step.command[1:3] == ["-m", "pytest"]:
        step.numbers = {"pytest": (stdout.strip().splitlines() or [""])[-1]}
        return
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines or not (Path(lines[0]) / "manifest.json").is_file():
        return
    from harness.measure.stats import summarize
    from harness.results import load_run

    step.run_dir = lines[0]
    run = load_run(Path(lines[0]))
    counts = {s: sum(r.get("status") == s for r in run.records) for s in ("ok", "error", "skipped")}
    numbers: dict = {"records": counts}
    for r in run.of_kind("latency"):
        label = f"{r['label']} bs{r['batch_size']}"
        numbers.setdefault("latency_p50_ms", {})[label] = summarize(r["samples_ms"]).median
        numbers["timer"] = r["timer"]
    for r in run.of_kind("throughput"):
        key = f"{r['label']} bs{r['batch_size']} {r['dtype']}{' cl' if r['channels_last'] else ''}" \
              f"{' compile' if r['compile'] else ''}"
        numbers.setdefault("img_per_s", {})[key] = r["samples_per_s"]
    for r in run.of_kind("train"):
        curve = r["curve"]
        numbers.setdefault("train", {})[r["label"]] = {
            "img_per_s": sum(e["img_per_s"] for e in curve) / len(curve),
            "s_per_epoch": sum(e["train_wall_s"] for e in curve) / len(curve),
            "top1_err": r["top1_err"], "amp": r["config"].get("amp_dtype"),
            "channels_last": r["config"].get("channels_last"), "distributed": r.get("distributed")}
    errors = sorted({f"{r['kind']}: {r['error']['message']}" for r in run.records if r.get("status") == "error"})
    if errors:
        numbers["errors"] = errors[:5]
    step.numbers = numbers


def _run(step: Step, out: Path, logs: Path, *, dry: bool) -> None:
    if dry and step.gpu_only:
        step.status, step.note = "skipped", "needs CUDA (dry run on the CPU)"
        return
    env = {**os.environ, **step.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get(
        "PYTHONPATH")])), "PYTHONUNBUFFERED": "1"}
    if dry:  # two threads on a busy 2-core machine stall at every parallel region; one does not
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    print(f"[{step.name}] {shlex.join(step.command)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(step.command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=step.timeout_s)
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, code = _text(exc.stdout), _text(exc.stderr) + f"\ntimed out after {step.timeout_s} s", -1
    step.wall_s = time.perf_counter() - start
    (logs / f"{step.name.replace(' ', '_').replace('/', '_')}.log").write_text(f"$ {shlex.join(step.command)}\n"
                                                                             f"{stdout}\n--- stderr ---\n{stderr}")
    step.status = "ok" if code == 0 else f"failed (exit {code})"
    if code != 0:
        step.note = " / ".join(stderr.strip().splitlines()[-2:])[-300:]
    try:
        _numbers(step, stdout, out)
    except Exception as exc:  # noqa: BLE001 - a summary problem must not hide the step's own status
        step.note += f" (summary: {type(exc).__name__}: {exc})"
    print(f"[{step.name}] {step.status} in {step.wall_s:.0f} s", file=sys.stderr, flush=True)


def _text(value: str | bytes | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def _environment() -> dict:
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _markdown(steps: list[Step], env: dict, wall_s: float) -> str:
    lines = [f"# GPU acceptance run ({env.get('gpu', 'no GPU: dry run')})", "",
             f"torch {env['torch']}, CUDA {env['cuda']}, Python {env['python']}; {wall_s:.0f} s in all.", "",
             "| step | status | s | numbers |", "|:--|:--|--:|:--|"]
    for s in steps:
        shown = json.dumps(s.numbers, default=str)[:600].replace("|", "/")
        lines.append(f"| {s.name} | {s.status}{' — ' + s.note if s.note else ''} | {s.wall_s:.0f} | {shown} |")
    return "\n".join(lines) + "\n"


def _tar(out: Path, name: str, folder: Path) -> None:
    if folder.is_dir():
        with tarfile.open(out / name, "w:gz") as tar:
            tar.add(folder, arcname=folder.name, filter=lambda t: None if t.name.endswith(".pt") else t)


def prepare_wheels(folder: Path) -> None:
    """Download (or build) the wheels the GPU image lacks, for its Python 3.12 on x86-64."""
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                                             "manylinux2014_x86_64")]
    for spec in WHEELS:
        name = spec.split("==")[0]
        if name == "fvcore":  # published as a source distribution only: build its (pure-Python) wheel here
            cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(folder), spec]
        else:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                   "3.12", "--implementation", "cp", *platforms, "-d", str(folder), spec]
        subprocess.run(cmd, check=True)
    print(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for summary.json, summary.md and the archives")
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny (tests this script)")
    parser.add_argument("--plan", action="store_true", help="print the steps' commands and exit")
    parser.add_argument("--only", help="comma-separated step names to run (default: all)")
    parser.add_argument("--prepare-wheels", type=Path, metavar="DIR", help="download the wheels the GPU lacks")
    args = parser.parse_args(argv)
    if args.prepare_wheels:
        prepare_wheels(args.prepare_wheels)
        return 0
    if args.out is None:
        parser.error("--out DIR is required")
    out = args.out.resolve()
    steps = plan(out, dry=args.dry_run)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        steps = [s for s in steps if s.name in wanted]
    if args.plan:
        for s in steps:
            print(f"{s.name}: {shlex.join(s.command)}")
        return 0
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for step in steps:
        _run(step, out, logs, dry=args.dry_run)
    env = _environment()
    wall_s = time.perf_counter() - start
    (out / "summary.json").write_text(json.dumps({"environment": env, "wall_s": wall_s, "dry_run": args.dry_run,
                                                  "steps": [asdict(s) for s in steps]}, indent=2, default=str))
    (out / "summary.md").write_text(_markdown(steps, env, wall_s))
    _tar(out, "results.tar.gz", out / "results")
    _tar(out, "logs.tar.gz", logs)
    print(out / "summary.md")
    return 0 if all(s.status in ("ok", "skipped") for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
