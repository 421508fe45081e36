"""A local stand-in for Toggl Track's /me/tasks API: tests, the demo and benchmarks use it."""
