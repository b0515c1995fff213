"""Throughput benchmarks: the real scanner, the seed-style baseline and the pure-decode bound."""
