"""Evaluation: held-out recall and control sets, benchmarks, answer scoring."""
