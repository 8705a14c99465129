"""Benchmarks: commands that print measured figures (never timed tests)."""
