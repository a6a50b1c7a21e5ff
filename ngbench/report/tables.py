"""Tables in the shape of the paper's: Table I (non-GEMM operators and their shapes) and Table IV (the dominant
non-GEMM group per model, averaged over batch sizes, with its CI)."""

from __future__ import annotations

from ngbench.report import format as fmt
from ngbench.report.parts import Report, Table
from ngbench.report.views import VIEW_TITLES

# What Table IV averages over: every cell of a model that differs only in batch size.
TABLE4_KEYS = ["model", "variant", "flow", "device", "precision", "quant"]


def dominant_non_gemm(breakdown, by: tuple[str, ...] = ()):
    """Table IV: per model (flow, device, precision, quant), the non-GEMM group with the largest share, averaged
    over batch sizes (a group absent from a cell counts 0 there). Its CI half-width is that of the mean of the
    cells' shares, sqrt(Σ h²) / k, from each cell's half-width h across profiled iterations. `by`: columns of
    `breakdown` that split it further (its `view`, for several views at once), in front of the model's."""
    import numpy as np
    import pandas as pd

    keys = [*by, *TABLE4_KEYS]
    non_gemm = breakdown[~breakdown["op_group"].isin(["GEMM", "Idle"])]
    columns = [*keys, "top_non_gemm_group", "latency_pct", "pct_ci95_lo", "pct_ci95_hi", "batch_sizes"]
    if non_gemm.empty:
        return pd.DataFrame(columns=columns)
    cells = non_gemm.drop_duplicates([*keys, "run_id"])
    count = cells.groupby(keys, sort=True).size()
    per_group = non_gemm.assign(half_sq=((non_gemm["pct_ci95_hi"] - non_gemm["pct_ci95_lo"]) / 2.0) ** 2)
    sums = per_group.groupby([*keys, "op_group"], sort=True)[["pct", "half_sq"]].sum()
    cells_of = count.reindex(sums.index.droplevel("op_group")).to_numpy()
    mean = sums["pct"] / cells_of
    best = mean.groupby(level=keys, sort=True).idxmax()
    batches = {}
    for key, batch in zip(cells[keys].itertuples(index=False, name=None), cells["batch_size"]):
        batches.setdefault(key, set()).add(batch)
    table = best.index.to_frame(index=False)
    table["top_non_gemm_group"] = [key[-1] for key in best]
    table["latency_pct"] = mean.loc[best].to_numpy()
    half = (np.sqrt(sums["half_sq"]) / cells_of).loc[best].to_numpy()
    table["pct_ci95_lo"] = table["latency_pct"] - half
    table["pct_ci95_hi"] = table["latency_pct"] + half
    table["batch_sizes"] = [",".join(str(v) for v in sorted(batches[tuple(key[:-1])])) for key in best]
    return table[columns]


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
