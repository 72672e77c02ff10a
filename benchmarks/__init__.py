"""Kiln's benchmarks: `make bench` (or `python -m benchmarks`) prints one JSON object per line."""
