"""Benchmarks: run each script from the repository root (``make bench``, ``make soak``)."""
