"""The latency regression gate (``python -m harness check``).

samples (what is compared) · sources (run dirs, baseline files, pytest-benchmark JSON) · baseline (freezing
and thresholds) · fingerprint (is the environment the same) · statistic (the low-quantile statistic and its
CI) · compare (verdicts) · calibrate (thresholds from A/A runs) · verdicts / render (the report).
"""
