"""Complexity task: exact parameter counts, MACs and activations (fvcore) in total, per operator and per module,
with a FlopCounterMode cross-check."""

from __future__ import annotations

from typing import Any

from harness.measure.macs import ACTIVATIONS_CONVENTION, count_flops_torch, count_macs
from harness.measure.params import count_params
from harness.paper import rows_built_by
from harness.plan import ComplexitySpec, Task
from harness.tasks.context import TaskContext, build, input_size_of, model_fields


def execute(task: Task, ctx: TaskContext) -> dict[str, Any]:
    spec: ComplexitySpec = task.spec
    model = build(task.model)
    size = input_size_of(task.model, spec.input_size)
    params = count_params(model)
    macs = count_macs(model, input_size=size, breakdown=True)
    record: dict[str, Any] = {
        "params": params.params,
        "params_trainable": params.params_trainable,
        "macs": macs.macs,
        "activations": macs.activations,
        "input_size": list(size),
        "macs_counter": {
            "name": macs.counter,
            "version": macs.counter_version,
            "convention": macs.convention,
            "uncounted_ops": macs.uncounted_ops,
            "activations_convention": ACTIVATIONS_CONVENTION,
        },
        "macs_by_operator": macs.by_operator,
        "activations_by_operator": macs.activations_by_operator,
        "stages": list(macs.stages),
        # a list, not a dict: records are written with sorted keys, and the model's order is part of the data
        "modules": [[name, cost.macs, cost.activations] for name, cost in macs.modules.items()],
    }
    # which paper rows this is, decided now with the options this run used (the report then needs no registry)
    record["paper_rows"] = rows_built_by(task.model.name, model_fields(task.model, label="")["canonical_options"],
                                         size)
    if spec.flop_crosscheck:
        flops = count_flops_torch(model, input_size=size)
        record["flop_counter"] = {"name": flops.counter, "version": flops.counter_version, "flops": flops.flops}
    return record
