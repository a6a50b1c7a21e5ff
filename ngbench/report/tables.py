"""Tables in the shape of the paper's: Table I (non-GEMM operators and their shapes) and Table IV (the dominant
non-GEMM group per model, averaged over batch sizes, with its CI)."""

from __future__ import annotations

from ngbench.report import format as fmt
from ngbench.report.parts import Report, Table
from ngbench.report.views import VIEW_TITLES

# What Table IV averages over: every cell of a model that differs only in batch size.
TABLE4_KEYS = ["model", "variant", "flow", "device", "precision", "quant"]


def dominant_non_gemm(breakdown):
    """Table IV: per model (flow, device, precision, quant), the non-GEMM group with the largest share, averaged
    over batch sizes (a group absent from a cell counts 0 there). Its CI half-width is that of the mean of the
    cells' shares, sqrt(Σ h²) / k, from each cell's half-width h across profiled iterations."""
    import numpy as np
    import pandas as pd

    non_gemm = breakdown[~breakdown["op_group"].isin(["GEMM", "Idle"])]
    columns = [*TABLE4_KEYS, "top_non_gemm_group", "latency_pct", "pct_ci95_lo", "pct_ci95_hi", "batch_sizes"]
    if non_gemm.empty:
        return pd.DataFrame(columns=columns)
    cells = non_gemm.groupby([*TABLE4_KEYS, "run_id"], sort=True)["batch_size"].first()
    per_cell = non_gemm.assign(half_sq=((non_gemm["pct_ci95_hi"] - non_gemm["pct_ci95_lo"]) / 2.0) ** 2)
    sums = per_cell.groupby([*TABLE4_KEYS, "op_group"], sort=True)[["pct", "half_sq"]].sum()
    count = cells.groupby(level=TABLE4_KEYS).size()
    mean = sums["pct"].div(count.reindex(sums.index.droplevel("op_group")).to_numpy())
    half = np.sqrt(sums["half_sq"]).div(count.reindex(sums.index.droplevel("op_group")).to_numpy())
    best = mean.groupby(level=TABLE4_KEYS).idxmax()
    batches = cells.groupby(level=TABLE4_KEYS).apply(lambda b: ",".join(str(v) for v in sorted(set(b))))
    table = pd.DataFrame({"top_non_gemm_group": [key[-1] for key in best], "latency_pct": mean.loc[best].to_numpy(),
                          "half": half.loc[best].to_numpy()}, index=best.index)
    table["pct_ci95_lo"] = table["latency_pct"] - table["half"]
    table["pct_ci95_hi"] = table["latency_pct"] + table["half"]
    table["batch_sizes"] = batches.reindex(table.index).to_numpy()
    return table.reset_index()[columns]


def non_gemm_operators(operators, iterations_by_model):
    """Table I: per model, the non-GEMM operators by group: instances and wall ms per inference (averaged over
    the model's cells) and their most common input shapes. `operators` is query.OPERATORS_SQL's result."""
    table = operators.copy()
    iterations = table[["model", "variant"]].apply(tuple, axis=1).map(iterations_by_model)
    table["instances"] = (table["rows"] / iterations).round().astype(int)
    table["wall_ms"] = table["wall_us"] / iterations / 1000.0
    table = table.drop(columns=["rows", "wall_us"])
    first = ["model", "variant", "op_group", "op", "instances", "wall_ms", "example_input_shape"]
    return table[first].sort_values(["model", "variant", "op_group", "wall_ms"], ascending=[True, True, True, False],
                                    kind="stable").reset_index(drop=True)


def table4(report: Report) -> Table:
    frame = dominant_non_gemm(report.breakdown())
    display = frame[TABLE4_KEYS].copy()
    display["dominant non-GEMM group"] = frame["top_non_gemm_group"]
    display["% of latency"] = [fmt.share(p, lo, hi) for p, lo, hi in
                               zip(frame["latency_pct"], frame["pct_ci95_lo"], frame["pct_ci95_hi"])]
    display["batch sizes"] = frame["batch_sizes"]
    return Table("table4", f"Table IV: dominant non-GEMM group, {VIEW_TITLES[report.view]}", frame, display,
                 note="Mean over batch sizes; ± the half-width of the mean's 95% CI.", pages=("html",))


def table1(report: Report) -> Table:
    sums = report.sums[["run_id", "iteration"]].drop_duplicates()
    iterations = sums.merge(report.cells[["run_id", "model", "variant"]], on="run_id").groupby(["model", "variant"]).size()
    frame = non_gemm_operators(report.ops.operators(), iterations.to_dict())
    return Table("table1", "Table I: non-GEMM operators", frame, pages=())


def section(report: Report) -> list:
    return [table4(report), *([table1(report)] if "csv" in report.pages else [])]
