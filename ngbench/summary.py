"""Per-run figures for summary.json: group totals in three views, reconciliation, warnings."""

from __future__ import annotations

import statistics

RATIO_TOLERANCE = 0.05


def group_totals(ops, iterations: int) -> dict:
    """Per group, per inference: wall/device/host ms, their shares, and op instances."""
    sums = ops.groupby("op_group").agg(wall_us=("wall_us", "sum"), device_us=("device_us", "sum"),
                                    host_us=("host_us", "sum"), ops=("op", "size"))
    totals = sums[["wall_us", "device_us", "host_us"]].sum()
    result = {}
    for group, row in sums.iterrows():
        result[str(group)] = {
            "wall_ms": row["wall_us"] / iterations / 1000.0,
            "wall_pct": _pct(row["wall_us"], totals["wall_us"]),
            "device_ms": row["device_us"] / iterations / 1000.0,
            "device_pct": _pct(row["device_us"], totals["device_us"]),
            "host_ms": row["host_us"] / iterations / 1000.0,
            "host_pct": _pct(row["host_us"], totals["host_us"]),
            "ops": int(row["ops"] // iterations),
        }
    return result


def _pct(part: float, whole: float) -> float:
    return float(100.0 * part / whole) if whole else 0.0


def gemm_kinds(ops, iterations: int) -> dict:
    """Inside GEMM, per kind (matmul, conv, attention, int8_matmul...): wall ms per inference."""
    gemm = ops[ops["op_group"] == "GEMM"]
    return {str(k): float(v) / iterations / 1000.0 for k, v in gemm.groupby("kind")["wall_us"].sum().items()}


def reconciliation(ops, iteration_us: list[float], busy_us: list[float], clean_median_ms: float) -> dict:
    profiled_ms = statistics.median(iteration_us) / 1000.0
    wall_total = float(ops["wall_us"].sum())
    return {
        "profiled_over_clean": profiled_ms / clean_median_ms if clean_median_ms else float("nan"),
        "wall_over_profiled": wall_total / sum(iteration_us) if sum(iteration_us) else float("nan"),
        "device_busy_share": sum(busy_us) / sum(iteration_us) if sum(iteration_us) else float("nan"),
    }


def warnings_for(recon: dict, unmatched_ops: int) -> list[str]:
    out = []
    if abs(recon["profiled_over_clean"] - 1.0) > RATIO_TOLERANCE:
        out.append(f"the profiler changed the latency by {100 * (recon['profiled_over_clean'] - 1):+.1f}% "
                   "(profiled/clean); shares are of the profiled run")
    if abs(recon["wall_over_profiled"] - 1.0) > RATIO_TOLERANCE:
        out.append(f"sum of wall_us is {recon['wall_over_profiled']:.3f} x the profiled latency")
    if unmatched_ops:
        out.append(f"{unmatched_ops} ops of the timed pass had no counterpart in the annotation pass "
                   "(no module/shape for them)")
    return out
