"""Latency benchmarks (not tests): `make bench` runs bench/latency.py. See bench/README.md."""
