"""GPU acceptance run: every CUDA path of the harness, most important first, in chunks of at most 8 minutes.

Steps (each a subprocess in a process group of its own, with its own time limit and a stated estimate; a failing
or overrunning step is recorded, its whole process group killed, and the next one runs; ``summary.json`` and
``summary.md`` are written after every step, so a run cut short keeps what it finished):

1. The default suite on CUDA (``--device cuda``): the timing driver on a GPU — the Table 2 trio and timm's
   SK-ResNeXt-50 timed together in worker processes, CUDA events per iteration, one host sync per cycle — for
   latency at batch 1 and throughput at batch 256 in fp32, each model's peak memory, the profiled operator kinds
   (op_time), the matmul peak; training is left to the CIFAR steps (CIFAR cannot be downloaded offline).
2. The A/A calibration on the GPU (``benchmarks/calibration.py``, R = 5): two copies of ResNeXt-50; how often
   each run's 95% CI holds 1.0.
3. SK's cost by execution mode, the CUDA block of ``suites/modes_cpu.yaml``: ResNeXt-50, SENet-50, SKNet-50 and
   timm's SK-ResNeXt-50 in fp32, bf16 autocast + channels_last and ``torch.compile``, paired in one group at
   batch 256 (compile times, graphs and graph breaks recorded); then fp16 throughput of the Table 2 trio.
4. ``pytest -m gpu``: the CUDA tests (event timing, autocast, the device-resident loader, AMP training).
5. A few epochs of ``suites/cifar_short.yaml`` on generated CIFAR-format data: bf16 AMP, channels_last;
   img/s of the warm epochs apart from the first (compilation, cuDNN autotuning).
6. The SK-speed benchmark on CUDA (``benchmarks/sk_speed.py``: our sknet50 vs timm's skresnext50_32x4d).
7. torchrun with one process and ``HARNESS_DISTRIBUTED=always``: DDP over a one-rank NCCL group.

``--plan`` prints the steps with their estimates, grouped into chunks of at most ``CHUNK_S`` (8 minutes: a
device call may run 10), each with the command that runs it (``--only N``, repeatable, by number or exact name;
an unknown or empty selection is refused).

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
import signal
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


CHUNK_S = 480  # one device call may run 10 minutes; a chunk of steps is planned to end within 8


@dataclass
class Step:
    name: str
    command: list[str]
    timeout_s: int
    estimate_s: int = 0  # the planned duration on one H100-class GPU (a chunk's estimates add up to CHUNK_S)
    env: dict[str, str] = field(default_factory=dict)
    gpu_only: bool = False
    needs: str | None = None  # a step whose output this one reads: the two stay in one chunk
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
    steps = [
        Step("default suite", _run_args("suites/sknet_vs_senet.yaml", out, device, "train=null", *size), 420,
             estimate_s=240),
        Step("A/A calibration (R = 5)", [sys.executable, str(ROOT / "benchmarks" / "calibration.py"), "--aa",
                                         "1" if dry else "5", "--aa-single", "0", "--suite-runs", "0", "--device",
                                         device, "--out", str(out / "calibration_aa.json"),
                                         "--workdir", str(out / "calibration"),
                                         *(["--processes", "2", "--set", "latency.min_time_s=0.1",
                                            "--set", "throughput.min_time_s=0.1", "--set",
                                            "throughput.batch_sizes=[2]"] if dry else [])], 420, estimate_s=200),
        # SK's cost by execution mode, the CUDA block of suites/modes_cpu.yaml: the four nets in fp32, bf16 autocast
        # + channels_last and torch.compile, paired in one group at batch 256, with compile times and graph breaks
        Step("modes (fp32, bf16 + channels_last, compile)", _run_args(
            "suites/modes_cpu.yaml", out, device, "latency=null", "op_time=null",
            *(["models=[reference_convnet]", "complexity=null", "throughput.batch_sizes=[2]",
               "throughput.modes=[fp32, channels_last, compile]", "throughput.processes=1",
               "throughput.min_time_s=0.1", "throughput.max_time_s=0.5"] if dry else
              ["throughput.min_time_s=3", "throughput.max_time_s=5"])), 480, estimate_s=330),
        Step("throughput fp16", _run_args(
            "suites/sknet_vs_senet.yaml", out, device, *size, *only_throughput, *modes, "throughput.dtype=fp16"),
            240, estimate_s=110, gpu_only=True),
        Step("pytest -m gpu", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu",
                               str(ROOT / "tests")], 240, estimate_s=90, gpu_only=True),
        Step("fake CIFAR", _harness("make-fake-cifar", str(data), "--n-train", "512" if dry else "10000",
                                    "--n-test", "128" if dry else "2000"), 120, estimate_s=30),
        Step("cifar_short (bf16 AMP, channels_last)", _run_args(
            "suites/cifar_short.yaml", out, device, *cifar, extra=("--data-dir", str(data))), 360, estimate_s=180,
            needs="fake CIFAR"),
        Step("torchrun, 1 process, NCCL", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                           "--nproc_per_node", "1", "-m", "harness", *_run_args(
            "suites/cifar_short.yaml", out, device, *cifar, "train.models=[sknet29]",
            extra=("--data-dir", str(data)))[3:]], 300, estimate_s=150, env={"HARNESS_DISTRIBUTED": "always"},
            needs="fake CIFAR"),
        Step("SK speed", [sys.executable, str(ROOT / "benchmarks" / "sk_speed.py"), "--device", device, "--batch",
                          "2" if dry else "256", "--dtype", "fp32" if dry else "bf16", "--rounds", "2" if dry else "3",
                          "--seconds", "0.2" if dry else "2", "--input-size", "64" if dry else "224",
                          "--json", str(out / "sk_speed.json")], 240, estimate_s=90),
    ]
    return steps


def chunks(steps: list[Step]) -> list[list[int]]:
    """Step numbers (from 1) in consecutive chunks whose estimates add up to at most ``CHUNK_S``; a step that
    reads another's output starts no chunk of its own (it joins the chunk of the step it needs)."""
    out: list[list[int]] = []
    total = 0
    for i, step in enumerate(steps, 1):
        joins = step.needs is not None and out and any(steps[j - 1].name == step.needs for j in out[-1])
        if out and (total + step.estimate_s <= CHUNK_S or joins):
            out[-1].append(i)
            total += step.estimate_s
        else:
            out.append([i])
            total = step.estimate_s
    return out


def select(steps: list[Step], only: list[str]) -> list[Step]:
    """``--only`` values: step numbers (from 1) or exact step names; anything else is refused (``SystemExit``)."""
    if not only:
        return steps
    picked: list[Step] = []
    for value in only:
        value = value.strip()
        if value.isdigit() and 1 <= int(value) <= len(steps):
            step = steps[int(value) - 1]
        else:
            step = next((s for s in steps if s.name == value), None)
        if step is None:
            names = "; ".join(f"{i} {s.name}" for i, s in enumerate(steps, 1))
            raise SystemExit(f"error: --only {value!r} names no step; give a number or an exact name: {names}")
        if step not in picked:
            picked.append(step)
    needed = {s.needs for s in picked if s.needs} - {s.name for s in picked}
    picked += [s for s in steps if s.name in needed]
    return sorted(picked, key=steps.index)


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
    from harness.results.records import FailedRecord, ThroughputRecord, TimedRecord, TrainRecord, TrainSettings

    step.run_dir = lines[0]
    run = load_run(Path(lines[0]))
    counts = {s: sum(r.status == s for r in run.records) for s in ("ok", "error", "skipped")}
    numbers: dict = {"records": counts}
    for r in run.of_type(TimedRecord):
        label = f"{r.label} bs{r.batch_size}"
        numbers.setdefault("latency_p50_ms", {})[label] = summarize(r.samples_ms).median
        numbers["timer"] = r.timer
    for t in run.of_type(ThroughputRecord):
        if t.kind != "throughput":
            continue
        key = f"{t.label} bs{t.batch_size} {t.dtype}{' cl' if t.channels_last else ''}" \
              f"{' compile' if t.compile else ''}"
        numbers.setdefault("img_per_s", {})[key] = t.samples_per_s
    for trained in run.of_type(TrainRecord):
        curve = trained.curve
        warm = curve[1:] or curve  # the first epoch holds compilation and cuDNN autotuning
        config = trained.config or TrainSettings()
        numbers.setdefault("train", {})[trained.label] = {
            "img_per_s": sum(e.img_per_s for e in warm) / len(warm),
            "s_per_epoch": sum(e.train_wall_s or 0.0 for e in warm) / len(warm),
            "first_epoch_s": curve[0].train_wall_s, "warm_epochs": len(curve) - 1,
            "top1_err": trained.top1_err, "amp": config.amp_dtype, "channels_last": config.channels_last,
            "distributed": trained.distributed.to_json() if trained.distributed else None}
    errors = sorted({f"{f.kind}: {f.error.message}" for f in run.of_type(FailedRecord)})
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
    # a process group of its own: on a timeout the whole group goes (a torchrun worker must not keep the GPU)
    with subprocess.Popen(step.command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=step.timeout_s)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            stderr, code = _text(stderr) + f"\ntimed out after {step.timeout_s} s (process group killed)", -1
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
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


def _summary(out: Path, steps: list[Step], env: dict, wall_s: float, dry: bool) -> None:
    (out / "summary.json").write_text(json.dumps({"environment": env, "wall_s": wall_s, "dry_run": dry,
                                                  "steps": [asdict(s) for s in steps]}, indent=2, default=str))
    (out / "summary.md").write_text(_markdown(steps, env, wall_s))


def _print_plan(steps: list[Step], everything: list[Step]) -> None:
    numbers = [everything.index(s) + 1 for s in steps]
    for k, chunk in enumerate(chunks(steps), 1):
        picked = [steps[i - 1] for i in chunk]
        total = sum(s.estimate_s for s in picked)
        only = " ".join(f"--only {numbers[i - 1]}" for i in chunk)
        print(f"chunk {k}: about {total} s of the {CHUNK_S} s a chunk may plan — "
              f"python benchmarks/gpu_acceptance.py --out $OUT {only}")
        for s in picked:
            print(f"  {everything.index(s) + 1}. {s.name} (about {s.estimate_s} s, limit {s.timeout_s} s): "
                  f"{shlex.join(s.command)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for summary.json, summary.md and the archives")
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny (tests this script)")
    parser.add_argument("--plan", action="store_true", help="print the steps in chunks of at most 8 minutes, and exit")
    parser.add_argument("--only", action="append", default=[], metavar="N|NAME",
                        help="run this step (its number or exact name; repeatable; default: all)")
    parser.add_argument("--prepare-wheels", type=Path, metavar="DIR", help="download the wheels the GPU lacks")
    args = parser.parse_args(argv)
    if args.prepare_wheels:
        prepare_wheels(args.prepare_wheels)
        return 0
    if args.out is None and not args.plan:
        parser.error("--out DIR is required")
    out = (args.out or Path("gpu-acceptance")).resolve()
    everything = plan(out, dry=args.dry_run)
    steps = select(everything, args.only)
    if args.plan:
        _print_plan(steps, everything)
        return 0
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    env = _environment()
    for step in steps:
        _run(step, out, logs, dry=args.dry_run)
        _summary(out, steps, env, time.perf_counter() - start, args.dry_run)  # a run cut short keeps these
    _tar(out, "results.tar.gz", out / "results")
    _tar(out, "logs.tar.gz", logs)
    print(out / "summary.md")
    return 0 if all(s.status in ("ok", "skipped") for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
