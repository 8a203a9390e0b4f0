"""Beyond one machine: a suite's shards as submitit jobs (a SLURM job array, or local processes), merged by
``results.merge`` into one run dir. ``launcher`` submits, waits and resubmits a failed shard once; ``finish`` merges;
``shard`` is what each job runs (``python -m harness run --shard I/N``, resuming its own run dir).
submitit is an optional dependency (``pip install -e ".[slurm]"``), imported only when a launch needs it.
"""

from harness.launch.finish import ShardProblem, finish, is_launch_dir
from harness.launch.launcher import Launched, LaunchOptions, launch, require_submitit
from harness.launch.shard import ShardJob

__all__ = ["LaunchOptions", "Launched", "ShardJob", "ShardProblem", "finish", "is_launch_dir", "launch",
           "require_submitit"]
