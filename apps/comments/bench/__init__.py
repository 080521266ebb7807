"""Benchmark-only variants of the service (see BENCHMARKS.md); not part of the image."""
