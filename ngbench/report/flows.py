"""Reports across deployment flows: one model side by side on torch / inductor / ort / trt (paper Figs. 7
and 8) and the fusion table (Table V). Input is the sweep's tidy ops table (every ok cell's ops.parquet).
"""

from __future__ import annotations

from pathlib import Path

FLOW_ORDER = ("torch", "inductor", "ort", "trt")
EAGER_FLOW = "torch"
FUSING_FLOWS = ("inductor", "trt")
# A flow comparison is drawn per cell: the same model, device, precision, quantization and batch size.
PANEL_KEYS = ["model", "device", "precision", "quant", "batch_size"]


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
    """(panel key, rows) of the breakdown table for each cell measured on the eager flow and another of `flows`."""
    return [(key, part) for key, part in _by_cell(table[table["flow"].isin(flows)])
            if EAGER_FLOW in set(part["flow"]) and part["flow"].nunique() > 1]


def flow_comparison(table, out_dir: Path, name: str, flows: tuple[str, ...]) -> list[Path]:
    """One column per cell (model, device, precision, quant, batch), rows ms and %; x = flow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ngbench.report.figures import _save, group_legend, palette, stacked

    panels = _panels(table, flows)
    if not panels:
        return []
    fig, axes = plt.subplots(2, len(panels), figsize=(max(4.0, 2.4 * len(panels)), 5.6), squeeze=False)
    colours = palette()
    for column, (key, part) in enumerate(panels):
        for row, (value, label) in enumerate((("ms", "ms per inference"), ("pct", "% of latency"))):
            ax = axes[row][column]
            stacked(ax, part, "flow", value, colours, sort_key=_flow_rank)
            ax.set_ylabel(label if column == 0 else "", fontsize=8)
            ax.tick_params(labelsize=7)
        quant = f" {key['quant']}" if key.get("quant") else ""
        axes[0][column].set_title(f"{key['model']} | {key['device']}\n{key['precision']}{quant} bs={key['batch_size']}",
                                  fontsize=8)
    group_legend(fig, table["op_group"], colours)
    return _save(fig, out_dir, name)


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
    """Table V (one row per cell and fusing flow) and its per-group split; both DataFrames (maybe empty)."""
    import pandas as pd

    from ngbench.fusion import fusion_by_group, fusion_summary

    summary_rows, group_frames = [], []
    for key, eager, fused_flows in _cells(ops):
        for flow, fused in sorted(fused_flows.items(), key=lambda item: _flow_rank(item[0])):
            summary_rows.append({**key, "flow": flow, **fusion_summary(eager, fused, time_column)})
            groups = fusion_by_group(eager, fused)
            group_frames.append(groups.assign(**key, flow=flow))
    table = pd.DataFrame(summary_rows)
    groups = pd.concat(group_frames, ignore_index=True) if group_frames else pd.DataFrame()
    if not groups.empty:
        first = [k for k in PANEL_KEYS if k in groups.columns] + ["flow", "op_group"]
        groups = groups[first + [c for c in groups.columns if c not in first]]
    return table, groups


def write_flow_reports(ops, out_dir: str | Path, view: str = "wall") -> list[Path]:
    """Figures 7 and 8 (when the sweep holds the flows they compare) and the Table V CSVs."""
    from ngbench.report.load import breakdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if ops.empty:
        return []
    table = breakdown(ops, view)
    written = flow_comparison(table, out, "fig8_fusion_flows", (EAGER_FLOW,) + FUSING_FLOWS)
    written += flow_comparison(table, out, "fig7_torch_vs_ort", (EAGER_FLOW, "ort"))
    table5, groups = fusion_tables(ops, f"{view}_us")
    if not table5.empty:
        for frame, name in ((table5, "table5_fusion"), (groups, "table5_fusion_by_group")):
            frame.to_csv(out / f"{name}.csv", index=False)
            written.append(out / f"{name}.csv")
    return written
