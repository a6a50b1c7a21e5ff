"""The cells table (one row per ok cell: clean latency with its CI, rebuilt/clean and profiled/clean, GEMM share
and the top non-GEMM group in the report's view, warnings) and the failed-cells table."""

from __future__ import annotations

from ngbench.measure.timing import RANGE_ONLY
from ngbench.report import format as fmt
from ngbench.report.load import FAILED_COLUMNS
from ngbench.report.parts import Report, Table
from ngbench.report.views import VIEW_TITLES

NOT_OPERATORS = ("GEMM", "Idle")


def view_figures(report: Report):
    """Per run_id: the GEMM share (with CI) and the top non-GEMM group and share in the report's view."""
    import pandas as pd

    table = report.breakdown()
    gemm = table[table["op_group"] == "GEMM"].set_index("run_id")
    non_gemm = table[~table["op_group"].isin(NOT_OPERATORS)]
    top = non_gemm.loc[non_gemm.groupby("run_id")["pct"].idxmax()].set_index("run_id") if len(non_gemm) else None
    frame = pd.DataFrame(index=report.cells["run_id"])
    frame["gemm_pct"] = gemm["pct"].reindex(frame.index).fillna(0.0)
    frame["gemm_pct_ci95_lo"] = gemm["pct_ci95_lo"].reindex(frame.index).fillna(0.0)
    frame["gemm_pct_ci95_hi"] = gemm["pct_ci95_hi"].reindex(frame.index).fillna(0.0)
    for column, source in (("top_non_gemm_group", "op_group"), ("top_non_gemm_pct", "pct"),
                           ("top_non_gemm_pct_ci95_lo", "pct_ci95_lo"), ("top_non_gemm_pct_ci95_hi", "pct_ci95_hi")):
        frame[column] = top[source].reindex(frame.index) if top is not None else None
    frame["top_non_gemm_group"] = frame["top_non_gemm_group"].fillna("")
    return frame.reset_index()


def cells_table(report: Report) -> Table:
    cells = report.cells.merge(view_figures(report), on="run_id", how="left")
    frame = cells.drop(columns=["ops_path"]).assign(view=report.view)
    display = fmt.keys_shown(cells)
    display["clean ms (95% CI)"] = [fmt.with_range(r.clean_ms, r.clean_ci95_lo_ms, r.clean_ci95_hi_ms, 3,
                                                   count=r.clean_iters) for r in cells.itertuples()]
    display["rebuilt ms"] = cells["reconstructed_ms"].map(lambda v: fmt.number(v, 3))
    display["rebuilt/clean"] = cells["reconstructed_over_clean"].map(fmt.number)
    display["profiled/clean"] = cells["profiled_over_clean"].map(fmt.number)
    display["GEMM %"] = [fmt.share(r.gemm_pct, r.gemm_pct_ci95_lo, r.gemm_pct_ci95_hi) for r in cells.itertuples()]
    top = [(r.top_non_gemm_group, fmt.share(r.top_non_gemm_pct, r.top_non_gemm_pct_ci95_lo, r.top_non_gemm_pct_ci95_hi))
           for r in cells.itertuples()]
    display["top non-GEMM %"] = [f"{group} {text}" if group else fmt.MISSING for group, text in top]
    display["stalled"] = [f"{fmt.number(s, 0)}/{fmt.number(n, 0)}" for s, n in
                          zip(cells["stalled_iterations"], cells["profiled_iterations"])]
    display["warnings"] = cells["warnings"].fillna("")
    note = (f"Shares in the {VIEW_TITLES[report.view]} view, ± the half-width of their 95% CI across profiled "
            "iterations; clean latency is the median with its 95% CI (from fewer than "
            f"{RANGE_ONLY} inferences, their range and the confidence it has).")
    return Table("cells", "Reported cells", frame, display, note)


def failed_table(report: Report) -> Table:
    failed = report.sweep.failed
    display = failed[["dir", "file", "model", "flow", "device", "precision", "quant", "batch_size", "error"]]
    return Table("failed", "Failed cells and unreadable files", failed[FAILED_COLUMNS],
                 display.rename(columns={"batch_size": "batch"}) if len(failed) else None,
                 note=f"{len(failed)} cell(s) are not in this report's tables and figures.")


def section(report: Report) -> list:
    return [failed_table(report), cells_table(report)]   # failures first: they must not go unseen
