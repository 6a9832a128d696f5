"""Benchmarks: run by hand (`python -m tests.benchmarks.bench_...`), never collected by pytest."""
