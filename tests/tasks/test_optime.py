"""The op-time executor on width-reduced CIFAR models: one record for the group, every model's kinds, the plain
counterpart's label written in, and a model that cannot run recorded as an error while the rest are profiled."""

from __future__ import annotations

import json

import torch

from harness.config import parse_suite
from harness.plan import expand
from harness.results.records import check_new as check_record
from harness.tasks import TaskContext, executors


def test_group_record_with_plain_labels_and_a_failing_model(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _check_group_record(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _check_group_record(tmp_path):
    suite = parse_suite({"name": "x", "models": [
        {"name": "resnext29_16x32d", "options": {"width": 0.125}},
        {"name": "sknet29", "options": {"width": 0.125}},
        # one input channel for a three-channel stem: fails in its first iteration
        {"name": "senet29", "options": {"width": 0.125}, "input_size": [1, 32, 32]},
    ], "op_time": {"iterations": 2, "warmup": 1, "unprofiled_iterations": 1}})
    task = expand(suite, device="cpu")[0]
    ctx = TaskContext(run_dir=tmp_path, emit=lambda r: None, done_records=[])
    record = executors()["op_time"](task, ctx)
    assert list(record["models"]) == ["resnext29_16x32d", "sknet29"] and record["order"] == list(record["models"])
    sk, rx = record["models"]["sknet29"], record["models"]["resnext29_16x32d"]
    assert sk["plain"] == "resnext29_16x32d" and rx["plain"] is None
    assert sk["options"] == {"width": 0.125} and sk["input_size"] == [3, 32, 32]
    assert all(len(v) == 2 for v in sk["kinds_ms"].values()) and len(sk["total_ms"]) == 2
    assert {"conv.dilated", "attn.pool", "attn.fc"} <= {k for k, v in sk["kinds_ms"].items() if any(v)}
    assert not any(rx["kinds_ms"].get("conv.dilated", [0.0]))
    # the ops each forward calls, counted by hand: ResNeXt-29 is a 3×3 stem conv → ReLU, 9 bottlenecks (1×1, 3×3
    # grouped, 1×1, three ReLUs, a residual add; a 1×1 projection in each stage's first), pool, flatten, linear
    # (views and reshapes — "memory" — are torch's business: torch 2.5 reports 4 more per SK unit than 2.14, so
    # they are checked as a lower bound; every op that computes is counted exactly)
    rx_memory = rx["op_calls"].pop("memory")
    assert rx["op_calls"] == {"conv.dense": 1, "conv.1x1": 21, "conv.grouped": 9, "act": 28, "pool": 1, "fc": 1,
                              "eltwise": 9} and rx_memory >= 1
    # SK's unit per block: two branches (grouped, dilated, a ReLU each), fuse (mean of each, an add), fc_reduce
    # (→ ReLU) and fc_select on the 1×1 map, the logit difference's sigmoid, the select sub_/mul_/add_, 5 views
    sk_memory = sk["op_calls"].pop("memory")
    assert sk["op_calls"] == {"conv.dense": 1, "conv.1x1": 21, "conv.grouped": 9, "conv.dilated": 9,
                              "act": 28 + 9 * 2, "pool": 1, "fc": 1, "attn.pool": 18, "attn.fc": 18,
                              "attn.softmax": 9, "eltwise": 9 + 9 * 5} and sk_memory >= 1 + 9 * 5
    assert record["errors"]["senet29"]["error"]["type"] and record["errors"]["senet29"]["plain"] == "resnext29_16x32d"
    assert record["timer"] == "profiler_cpu_self_time" and record["threads"] == 1 and record["iterations"] == 2
    full = json.loads(json.dumps({"task_id": task.task_id, "kind": "op_time", "status": "ok", **record}))
    check_record(full)  # the shape the writer and the reader check
