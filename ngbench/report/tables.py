"""Tables in the shape of the paper's: Table I (non-GEMM operators and shapes), Table IV (dominant group)."""

from __future__ import annotations


def dominant_non_gemm(breakdown):
    """Table IV: per model (and device/flow), the non-GEMM group with the largest share, averaged over batch sizes."""
    keys = ["model", "flow", "device", "precision", "quant"]
    non_gemm = breakdown[~breakdown["op_group"].isin(["GEMM", "Idle"])]
    mean = non_gemm.groupby(keys + ["op_group"])["pct"].mean().reset_index()
    best = mean.loc[mean.groupby(keys)["pct"].idxmax()]
    return best.rename(columns={"op_group": "top_non_gemm_group", "pct": "latency_pct"}).reset_index(drop=True)


def non_gemm_operators(ops):
    """Table I: per model, the non-GEMM operators by group with their most common input shape and count."""
    non_gemm = ops[~ops["is_gemm"] & (ops["op_group"] != "Idle")]
    if non_gemm.empty:
        return non_gemm
    keys = ["model", "op_group", "op"]
    grouped = non_gemm.groupby(keys)
    iterations = ops.groupby("run_id")["iteration"].nunique().mean()
    table = grouped.agg(instances=("op", "size"), wall_ms=("wall_us", "sum"),
                        example_input_shape=("input_shapes", _most_common)).reset_index()
    table["instances"] = (table["instances"] / iterations).round().astype(int)
    table["wall_ms"] = table["wall_ms"] / iterations / 1000.0
    return table.sort_values(["model", "op_group", "wall_ms"], ascending=[True, True, False])


def _most_common(values):
    """The most common input shapes of an op, as text ('' when none were recorded)."""
    from ngbench.schema import as_list

    text = values.map(lambda v: str([as_list(s) for s in as_list(v)]) if len(as_list(v)) else "")
    counts = text[text != ""].value_counts()
    return counts.index[0] if len(counts) else ""
