"""Versions stamped on every record."""

PIPELINE_VERSION = "0.1.0"
