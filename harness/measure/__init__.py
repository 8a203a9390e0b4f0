"""Measurement: parameter and MAC counts, timing, and statistics over timing samples."""
