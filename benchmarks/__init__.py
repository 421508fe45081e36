"""Benchmarks of tap-toggl-tasks against a plain-Python baseline; see `python -m benchmarks.run`."""
