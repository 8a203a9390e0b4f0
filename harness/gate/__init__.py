"""The latency regression gate (``python -m harness gate``).

sets (benchmark sets: run dirs, baseline files, pytest-benchmark JSON; freezing a baseline) · verdict (the one
statistic, its test and interval, comparable environments, the verdicts) · ab (the same-job gate: base and head
timed in one process) · render (the report as markdown, text or JSON). The thresholds and alpha are here.
"""

# The smallest slowdown that fails the gate, percent: against a frozen baseline (``gate check``), whose runs are
# separate processes that scatter by a few percent, and in one process (``gate ab``), where base and head are timed
# cycle by cycle: two identical models read within about 1.5% of each other on the 2-core development VM, and a +5%
# change of a model's multiply-adds is +3-5% of its time (docs/gate.md, "Measured error rates"). Here, not in
# ``verdict``, so that the command line reads them without importing scipy.
THRESHOLD_PCT = 5.0
AB_THRESHOLD_PCT = 2.0
# The largest threshold accepted: a threshold of 100% already lets a 2x slowdown pass; --threshold 1e308 passed all.
MAX_THRESHOLD_PCT = 100.0
# Significance level of the Mann-Whitney test (asv's default).
ALPHA = 0.002
