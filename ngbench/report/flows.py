"""Reports across deployment flows: one model side by side on torch / inductor / ort / trt (paper Figs. 7
and 8) and the fusion table (Table V). The figures are drawn from the group breakdown; Table V reads the op
rows of only the cells it compares (a fused run and the eager run of the same cell).
"""

from __future__ import annotations

from pathlib import Path

from ngbench.report import format as fmt
from ngbench.report.figures import variant_text
from ngbench.report.parts import Figure, Report, Table

FLOW_ORDER = ("torch", "inductor", "ort", "trt")
EAGER_FLOW = "torch"
FUSING_FLOWS = ("inductor", "trt")
# A flow comparison is drawn per cell: the same model, variant, device, precision, quantization and batch size.
PANEL_KEYS = ["model", "variant", "device", "precision", "quant", "batch_size"]
FUSION_COLUMNS = ["iteration", "op", "op_group", "is_gemm", "fused_ops", "host_us", "device_us", "wall_us",
                  "wall_profiled_us"]


def _flow_rank(flow: str) -> tuple[int, str]:
    return (FLOW_ORDER.index(flow) if flow in FLOW_ORDER else len(FLOW_ORDER), flow)


def _by_cell(frame):
    """(cell key dict, rows) for every cell of `frame` (PANEL_KEYS it has; missing values as '')."""
    keys = [k for k in PANEL_KEYS if k in frame.columns]
    frame = frame.copy()
    for key in keys:
        frame[key] = frame[key].fillna("")
    for key, part in frame.groupby(keys, sort=True):
        yield dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)), part


def _panels(table, flows: tuple[str, ...]):
    """The breakdown rows of every cell measured on the eager flow and another of `flows` (None if none)."""
    import pandas as pd

    parts = [part for _, part in _by_cell(table[table["flow"].isin(flows)])
             if EAGER_FLOW in set(part["flow"]) and part["flow"].nunique() > 1]
    return pd.concat(parts, ignore_index=True) if parts else None


def flow_comparison(table, out_dir: Path, name: str, flows: tuple[str, ...], title: str = "") -> list[Path]:
    """Per setting (device, precision, quant, variant) two rows of bars, ms and %: per cell (model, batch size)
    one stacked bar per flow."""
    from ngbench.report import figures

    cells = _panels(table, flows)
    if cells is None:
        return []
    settings = [k for k in ("device", "precision", "quant", "variant") if k in cells.columns]
    outer = [k for k in ("model", "variant", "batch_size") if k in cells.columns]
    slots = figures.Slots.of(cells, outer, "flow", _flow_rank)
    parts = list(cells.groupby(settings, sort=True))
    fig, axes = figures.figure_rows(2 * len(parts), slots.count)
    colours = figures.palette()
    for k, (key, part) in enumerate(parts):
        setting = dict(zip(settings, key if isinstance(key, tuple) else (key,)))
        quant = f" {setting['quant']}" if setting.get("quant") else ""
        for row, (value, label) in enumerate((("ms", "ms per inference"), ("pct", "% of latency"))):
            ax = axes[2 * k + row]
            figures.stacked(ax, part, slots, outer, "flow", value, colours)
            ax.set_ylabel(label, fontsize=8)
            figures.title_row(ax, f"{setting.get('device', '')} | {setting.get('precision', '')}{quant}"
                                  f"{variant_text(setting.get('variant'))}")
    slots.label_under(axes[-1], _cell_label(outer))
    figures.group_legend(fig, table["op_group"], colours)
    bars = f"bars: {', '.join(slots.inners)}"
    fig.suptitle(f"{title}\n({bars})" if title else bars, fontsize=10)   # two lines: a long title fits
    return figures.save_figure(fig, out_dir, name)


def _cell_label(outer: list[str]):
    def label(key: tuple) -> str:
        values = dict(zip(outer, key))
        return f"{values['model']}{variant_text(values.get('variant'))} b{values.get('batch_size', '')}"
    return label


def _cells(ops):
    """(cell key dict, eager ops, {flow: fused ops}) for every cell with an eager run and a fusing run."""
    for key, part in _by_cell(ops):
        flows = dict(tuple(part.groupby("flow")))
        if EAGER_FLOW not in flows:
            continue
        fused = {flow: rows for flow, rows in flows.items() if flow != EAGER_FLOW and _has_fused_ops(rows)}
        if fused:
            yield key, flows[EAGER_FLOW], fused


def _has_fused_ops(rows) -> bool:
    from ngbench.schema import as_list

    return "fused_ops" in rows and any(len(as_list(v)) > 0 for v in rows["fused_ops"])


def fusion_tables(ops, time_column: str = "wall_us"):
    """Table V (one row per cell and fusing flow) and its per-group split from a frame of op rows."""
    return _table5(_cells(ops), time_column)


def _table5(comparisons, time_column: str):
    """Table V and its per-group split (DataFrames, maybe empty) from (key, eager rows, {flow: fused rows})."""
    import pandas as pd

    from ngbench.fusion import fusion_by_group, fusion_by_op, fusion_summary

    summary_rows, group_frames = [], []
    for key, eager, fused_flows in comparisons:
        for flow, fused in sorted(fused_flows.items(), key=lambda item: _flow_rank(item[0])):
            by_op = fusion_by_op(eager, fused)
            summary_rows.append({**key, "flow": flow, **fusion_summary(eager, fused, time_column, by_op),
                                 **_share_cis(eager, fused, time_column)})
            groups = fusion_by_group(eager, fused, by_op)
            group_frames.append(groups.assign(**key, flow=flow))
    table = pd.DataFrame(summary_rows)
    groups = pd.concat(group_frames, ignore_index=True) if group_frames else pd.DataFrame()
    if not groups.empty:
        first = [k for k in PANEL_KEYS if k in groups.columns] + ["flow", "op_group"]
        groups = groups[first + [c for c in groups.columns if c not in first]]
    return table, groups


def _share_cis(eager, fused, time_column: str) -> dict:
    """The 95% t-intervals, across profiled iterations, of the non-GEMM shares before and after fusion."""
    from ngbench.fusion import non_gemm_share_by_iteration
    from ngbench.summary import t_interval

    out = {}
    for when, rows in (("before", eager), ("after", fused)):
        lo, hi = t_interval(non_gemm_share_by_iteration(rows, time_column).dropna())
        out.update({f"non_gemm_{when}_pct_ci95_lo": lo, f"non_gemm_{when}_pct_ci95_hi": hi})
    return out


def _sweep_comparisons(report: Report, time_column: str):
    """(cell key, eager rows, {flow: fused rows}) of every cell with an eager run and a run with fused rows;
    only those cells' rows are read, one query for all, and only the columns Table V reads in `time_column`'s
    view are kept (the analysis selects rows many times over: each column costs)."""
    from ngbench.report.views import with_paper_us

    cells, fused_runs = report.cells, set(report.sums.loc[report.sums["fused_ops"] > 0, "run_id"])
    pairs = []
    for key, part in _by_cell(cells):
        flows = dict(zip(part["flow"], part["run_id"]))
        fused = {flow: run for flow, run in flows.items() if run in fused_runs and flow != EAGER_FLOW}
        if EAGER_FLOW in flows and fused:
            pairs.append((key, flows[EAGER_FLOW], fused))
    if not pairs:
        return []
    run_ids = sorted({run for _, eager, fused in pairs for run in (eager, *fused.values())})
    files = cells.loc[cells["run_id"].isin(run_ids), "ops_path"].tolist()
    rows = with_paper_us(report.ops.rows(run_ids, FUSION_COLUMNS, files), cells)
    rows = rows[["run_id", "iteration", "op", "op_group", "is_gemm", "fused_ops", time_column]]
    by_run = dict(tuple(rows.groupby("run_id", sort=False)))
    return [(key, by_run[eager], {flow: by_run[run] for flow, run in fused.items()}) for key, eager, fused in pairs]


def flow_figures(table, out: Path, view: str = "wall") -> list[Figure]:
    """Figures 8 and 7 from a group breakdown (views.breakdown with the cell keys) in `view`, where the sweep
    holds the flows they compare."""
    from ngbench.report.views import VIEW_TITLES

    figures = []
    for name, title, flows in (("fig8_fusion_flows", "Figure 8: eager beside the fusing flows", (EAGER_FLOW,) + FUSING_FLOWS),
                               ("fig7_torch_vs_ort", "Figure 7: PyTorch beside ONNX Runtime", (EAGER_FLOW, "ort"))):
        paths = flow_comparison(table, out, name, flows, f"{title.split(': ', 1)[1]}, {VIEW_TITLES[view]}")
        if paths:
            figures.append(Figure(name, f"{title}, {VIEW_TITLES[view]}", paths))
    return figures


def fusion_parts(table5, groups, view: str) -> list[Table]:
    """Table V and its per-group split as report tables (none when nothing is fused)."""
    if table5.empty:
        return []
    display = fmt.rounded(table5.drop(columns=[c for c in table5.columns if "_ci95_" in c]))
    for when in ("before", "after"):
        display[f"non_gemm_{when}_pct"] = [fmt.share(p, lo, hi) for p, lo, hi in zip(
            table5[f"non_gemm_{when}_pct"], table5[f"non_gemm_{when}_pct_ci95_lo"], table5[f"non_gemm_{when}_pct_ci95_hi"])]
    return [Table("table5_fusion", f"Table V: fusion rate and non-GEMM time before/after fusion ({view} view)",
                  table5, display, note="Non-GEMM shares ± the half-width of their 95% CI across profiled iterations."),
            Table("table5_fusion_by_group", "Table V by operator group", groups, fmt.rounded(groups), pages=())]


def figures_section(report: Report) -> list:
    """Figures 7 and 8, when the sweep holds more than one flow."""
    if report.cells["flow"].nunique() < 2 or report.out is None:
        return []
    return flow_figures(report.breakdown(), report.out, report.view)


def section(report: Report) -> list:
    """Table V, when the sweep holds more than one flow."""
    if report.cells["flow"].nunique() < 2:
        return []
    time_column = f"{report.view}_us"
    table5, groups = _table5(_sweep_comparisons(report, time_column), time_column)
    return fusion_parts(table5, groups, report.view)


def write_flow_reports(ops, out_dir: str | Path, view: str = "wall") -> list[Path]:
    """Figures 7 and 8 and the Table V CSVs from a frame of op rows (every cell's; the sweep report reads only
    what it needs, through section())."""
    from ngbench.report.query import TIME_COLUMNS, Ops
    from ngbench.report.views import breakdown, with_keys, with_paper_us

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if ops.empty:
        return []
    ops = ops.assign(**{c: 0.0 for c in TIME_COLUMNS if c not in ops})
    cells = ops.drop_duplicates("run_id")
    sums = with_paper_us(Ops(ops[["run_id", "iteration", "op", "op_group", "fused_ops", *TIME_COLUMNS]]).group_sums(),
                         cells)
    table = with_keys(breakdown(sums, view), cells, [k for k in PANEL_KEYS + ["flow"] if k in cells.columns])
    written = [path for figure in flow_figures(table, out, view) for path in figure.paths]
    for part in fusion_parts(*fusion_tables(with_paper_us(ops, cells), f"{view}_us"), view):
        part.frame.to_csv(out / f"{part.name}.csv", index=False)
        written.append(out / f"{part.name}.csv")
    return written
