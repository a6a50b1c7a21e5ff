"""Reports across deployment flows: one model side by side on torch / inductor / ort / trt (paper Figs. 7
and 8) and the fusion table (Table V). The figures are drawn from the group breakdown; Table V reads the op
rows of only the cells it compares (a fused run and the eager run of the same cell), summed by DuckDB over what
the fusion analysis tells apart (ngbench.report.query.FUSION_SQL).
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


def _flow_rank(flow: str) -> tuple[int, str]:
    return (FLOW_ORDER.index(flow) if flow in FLOW_ORDER else len(FLOW_ORDER), flow)


def _with_cell_keys(frame):
    """(the PANEL_KEYS `frame` has, `frame` with their missing values as '')."""
    keys = [k for k in PANEL_KEYS if k in frame.columns]
    return keys, frame.assign(**{key: frame[key].fillna("") for key in keys})


def _as_deployed(rows):
    """`rows` where a cell (PANEL_KEYS but the precision) ran each flow at one precision, not the same for all
    (Figure 7 as the seed ran it: PyTorch in fp16, ONNX Runtime in fp32), with the precision of all its rows
    set to what each flow ran, e.g. 'torch fp16 / ort fp32', so that the flows of that cell stand side by side;
    cells that share one precision, or ran a flow at several, are left as they are."""
    if "precision" not in rows.columns or rows.empty:
        return rows
    keys = [k for k in PANEL_KEYS if k in rows.columns and k != "precision"]
    runs = rows[keys + ["flow", "precision"]].astype(str).drop_duplicates()   # one row per cell, flow, precision
    by_cell = runs.groupby(keys, sort=False)
    one_each = by_cell["flow"].transform("size") == by_cell["flow"].transform("nunique")
    mixed = runs[one_each & (by_cell["precision"].transform("nunique") > 1)]
    if mixed.empty:
        return rows
    mixed = mixed.assign(rank=[_flow_rank(flow) for flow in mixed["flow"]]).sort_values(keys + ["rank"], kind="stable")
    labels = (mixed["flow"] + " " + mixed["precision"]).groupby([mixed[k] for k in keys], sort=False).agg(" / ".join)
    found = rows[keys].astype(str).merge(labels.rename("deployed").reset_index(), on=keys, how="left")["deployed"]
    return rows.assign(precision=found.fillna(rows["precision"].reset_index(drop=True)).to_numpy())


def _panels(table, flows: tuple[str, ...]):
    """The breakdown rows of every cell measured on the eager flow and another of `flows` (None if none), cell
    after cell; a cell whose flows ran at different precisions is one cell (_as_deployed)."""
    keys, rows = _with_cell_keys(_as_deployed(table[table["flow"].isin(flows)]))
    if rows.empty:
        return None
    cells = [rows[k] for k in keys]
    with_eager = rows["flow"].eq(EAGER_FLOW).groupby(cells, sort=False).transform("any")
    flow_count = rows["flow"].groupby(cells, sort=False).transform("nunique")
    chosen = rows[with_eager.to_numpy(dtype=bool) & (flow_count.to_numpy() > 1)]
    return chosen.sort_values(keys, kind="stable").reset_index(drop=True) if len(chosen) else None


def flow_bars(table, flows: tuple[str, ...], title: str = ""):
    """Per setting (device, precision, quant, variant) two rows of bars, ms and %: per cell (model, batch size)
    one stacked bar per flow (a figures.Bars), or None where no cell was measured on the eager flow and another
    of `flows`."""
    from ngbench.report import figures

    cells = _panels(table, flows)
    if cells is None:
        return None
    settings = [k for k in ("device", "precision", "quant", "variant") if k in cells.columns]
    outer = [k for k in ("model", "variant", "batch_size") if k in cells.columns]
    slots = figures.Slots.of(cells, outer, "flow", _flow_rank)
    rows = []
    both = [figures.heights(cells, settings, outer, "flow", value, slots) for value in ("ms", "pct")]
    for (key, *ms), (_, *pct) in zip(*both):
        setting = dict(zip(settings, key))
        quant = f" {setting['quant']}" if setting.get("quant") else ""
        row_title = (f"{setting.get('device', '')} | {setting.get('precision', '')}{quant}"
                     f"{variant_text(setting.get('variant'))}")
        rows += [figures.BarRow(*ms, row_title, "ms per inference"), figures.BarRow(*pct, row_title, "% of latency")]
    bars = f"bars: {', '.join(slots.inners)}"
    return figures.Bars(slots, rows, [_cell_label(outer)(key) for key in slots.outers],
                        f"{title}\n({bars})" if title else bars,   # two lines: a long title fits
                        list(table["op_group"].unique()))


def _cell_label(outer: list[str]):
    def label(key: tuple) -> str:
        values = dict(zip(outer, key))
        return f"{values['model']}{variant_text(values.get('variant'))} b{values.get('batch_size', '')}"
    return label


def _pairs(cells, fused_runs: set[str]):
    """The comparisons Table V makes, one row per cell (`cells`: one row per run; of several runs of a flow in a
    cell, the last) measured on the eager flow and on another flow whose run is one of `fused_runs`: the cell
    key, the flow, and the `eager` and `fused` run_ids; by cell, then flow (FLOW_ORDER)."""
    keys, runs = _with_cell_keys(cells[[k for k in PANEL_KEYS if k in cells.columns] + ["flow", "run_id"]])
    runs = runs.drop_duplicates([*keys, "flow"], keep="last")
    eager = runs.loc[runs["flow"] == EAGER_FLOW, [*keys, "run_id"]].rename(columns={"run_id": "eager"})
    fused = runs[(runs["flow"] != EAGER_FLOW) & runs["run_id"].isin(list(fused_runs))].rename(columns={"run_id": "fused"})
    pairs = fused.merge(eager, on=keys)
    pairs["rank"] = [_flow_rank(flow)[0] for flow in pairs["flow"]]
    return pairs.sort_values([*keys, "rank", "flow"], kind="stable").reset_index(drop=True)[[*keys, "flow", "eager",
                                                                                            "fused"]]


def _has_fused_ops(rows) -> bool:
    from ngbench.schema import as_list

    return "fused_ops" in rows and any(len(as_list(v)) > 0 for v in rows["fused_ops"])


def fusion_tables(ops, time_column: str = "wall_us"):
    """Table V (one row per cell and fusing flow) and its per-group split from a frame of op rows."""
    from ngbench.report.query import TIME_COLUMNS, Ops
    from ngbench.report.views import with_paper_us

    ops = ops.assign(**{c: 0.0 for c in TIME_COLUMNS if c not in ops})
    cells = ops.drop_duplicates("run_id")
    pairs = _pairs(cells, {run for run, rows in ops.groupby("run_id", sort=False) if _has_fused_ops(rows)})
    rows = with_paper_us(Ops(ops).fusion_rows(_runs_of(pairs)), cells) if len(pairs) else None
    return _table5(rows, pairs, time_column)


def _runs_of(pairs) -> list[str]:
    return sorted(set(pairs["eager"]) | set(pairs["fused"]))


def _table5(rows, pairs, time_column: str):
    """Table V and its per-group split (DataFrames, empty without pairs) from FUSION_SQL's rows of the runs
    `pairs` compares (ngbench.fusion.fusion_table)."""
    import pandas as pd

    from ngbench.fusion import fusion_table

    if not len(pairs):
        return pd.DataFrame(), pd.DataFrame()
    table, by_group = fusion_table(rows, pairs, time_column)
    keys = [k for k in pairs.columns if k not in ("eager", "fused")]
    groups = by_group.merge(pairs[keys].assign(pair=range(len(pairs))), on="pair").drop(columns="pair")
    first = keys + ["op_group"]
    return table, groups[first + [c for c in groups.columns if c not in first]]


def _sweep_rows(report: Report, pairs):
    """FUSION_SQL's rows of the runs `pairs` compares, with paper_us; only those cells' files are read."""
    from ngbench.report.views import with_paper_us

    if not len(pairs):
        return None
    run_ids = _runs_of(pairs)
    files = report.cells.loc[report.cells["run_id"].isin(run_ids), "ops_path"].tolist()
    return with_paper_us(report.ops.fusion_rows(run_ids, files), report.cells)


# name, title, the flows compared
FLOW_FIGURES = (("fig8_fusion_flows", "Figure 8: eager beside the fusing flows", (EAGER_FLOW,) + FUSING_FLOWS),
                ("fig7_torch_vs_ort", "Figure 7: PyTorch beside ONNX Runtime", (EAGER_FLOW, "ort")))


def flow_figure(table, out: Path, which: int, view: str = "wall") -> list[Figure]:
    """FLOW_FIGURES[which] from a group breakdown (views.breakdown with the cell keys) in `view`, where the
    sweep holds the flows it compares."""
    return _drawn(flow_bars(table, FLOW_FIGURES[which][2], _figure_title(which, view)), out, which, view)


def _figure_title(which: int, view: str) -> str:
    from ngbench.report.views import VIEW_TITLES

    return f"{FLOW_FIGURES[which][1].split(': ', 1)[1]}, {VIEW_TITLES[view]}"


def _drawn(bars, out: Path, which: int, view: str) -> list[Figure]:
    from ngbench.report import figures
    from ngbench.report.views import VIEW_TITLES

    if bars is None:
        return []
    name, title, _ = FLOW_FIGURES[which]
    paths = figures.save_figure(figures.draw_bars(bars, figures.palette()), out, name)
    return [Figure(name, f"{title}, {VIEW_TITLES[view]}", paths)]


def flow_figures(table, out: Path, view: str = "wall") -> list[Figure]:
    """Figures 8 and 7 (FLOW_FIGURES) where the sweep holds the flows they compare."""
    return [figure for which in range(len(FLOW_FIGURES)) for figure in flow_figure(table, out, which, view)]


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


def figure_bars(report: Report, which: int):
    """FLOW_FIGURES[which]'s bars (flow_bars) in the report's view, made once per report (Report.planned); None
    where it has none."""
    return report.planned(FLOW_FIGURES[which][0], lambda: flow_bars(
        report.breakdown(), FLOW_FIGURES[which][2], _figure_title(which, report.view))
        if report.cells["flow"].nunique() >= 2 else None)


def _figure(which: int):
    def draw(report: Report) -> list:
        if report.out is None:
            return []
        return _drawn(figure_bars(report, which), report.out, which, report.view)

    draw.__doc__ = f"{FLOW_FIGURES[which][1]}, when the sweep holds more than one flow."
    return draw


FIGURES = tuple(_figure(which) for which in range(len(FLOW_FIGURES)))   # fig8, fig7
PLANS = tuple(lambda report, which=which: figure_bars(report, which) for which in range(len(FLOW_FIGURES)))


def section(report: Report) -> list:
    """Table V, when the sweep holds more than one flow."""
    if report.cells["flow"].nunique() < 2:
        return []
    pairs = _pairs(report.cells, set(report.sums.loc[report.sums["fused_ops"] > 0, "run_id"]))
    table5, groups = _table5(_sweep_rows(report, pairs), pairs, f"{report.view}_us")
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
    for part in fusion_parts(*fusion_tables(ops, f"{view}_us"), view):
        part.frame.to_csv(out / f"{part.name}.csv", index=False)
        written.append(out / f"{part.name}.csv")
    return written
