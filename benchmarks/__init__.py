"""Benchmark scripts; figures and the commands that printed them are in docs/benchmarks.md."""
