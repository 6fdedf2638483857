"""Benchmark scripts. Each prints ratios measured in one run; none asserts a time."""
