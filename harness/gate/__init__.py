"""The latency regression gate (``python -m harness gate``).

sets (benchmark sets: run dirs, baseline files, pytest-benchmark JSON; freezing a baseline) · verdict (the one
statistic, its test and interval, comparable environments, the verdicts) · ab (the same-job gate: base and head
timed in one process) · render (the report as markdown, text or JSON).
"""
