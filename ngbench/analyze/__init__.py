"""Bring your own trace: `python -m ngbench.analyze TRACE [TRACE ...]` turns PyTorch-profiler (Kineto) Chrome
traces recorded anywhere into ngbench's run record (ops.parquet, kernels.parquet, summary.json with
flow=trace), which `python -m ngbench.report` reads like any run. See docs/analyze.md.
"""
