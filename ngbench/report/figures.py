"""Figures in the shape of the paper's: group breakdowns (Fig. 6), energy (Fig. 5), int8 (Fig. 9).

Like the paper's Figure 6, a breakdown figure has one row of bars per setting (device, flow, precision, quant,
variant); the bars of one model stand side by side (one per batch size or sequence length). A sweep of hundreds
of cells is a few axes, not hundreds, so it draws in well under a second. Figures are saved as PNG and PDF;
nothing is ever shown on screen. Titles name the model variant (tiny, custom) when it is not the full model.
"""

from __future__ import annotations

from pathlib import Path

from ngbench.report.parts import Figure, Report
from ngbench.report.views import VIEW_TITLES
from ngbench.schema import GROUPS

ROW_KEYS = ["device", "flow", "precision", "quant", "variant"]   # one row of bars per setting
MODEL_KEYS = ["model", "variant"]
BAR_WIDTH_IN, ROW_HEIGHT_IN, LEFT_IN, RIGHT_IN = 0.15, 2.4, 0.7, 1.6
DPI = 100


def palette() -> dict[str, tuple]:
    """One fixed colour per group, the same in every figure (matplotlib's tab20, in GROUPS order)."""
    from matplotlib import colormaps

    operators = [g for g in GROUPS if g not in ("Idle", "Communication")]
    colours = dict(zip(operators, colormaps["tab20"].colors))
    colours["Idle"] = (0.55, 0.55, 0.55)  # grey: not an operator, the host between operators
    colours["Communication"] = (0.10, 0.10, 0.40)  # navy, outside tab20: the other groups keep their colours
    return colours


def variant_text(variant) -> str:
    """' (tiny)' for a model that is not the full one, '' for the full model."""
    return f" ({variant})" if variant not in (None, "", "full") else ""


def save_figure(fig, out_dir: Path, name: str) -> list[Path]:
    """PNG and PDF, each written whole (temp file + rename)."""
    import matplotlib.pyplot as plt

    from ngbench.output import atomic_write_bytes

    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for path in paths:
        atomic_write_bytes(path, lambda tmp, fmt=path.suffix[1:]: fig.savefig(tmp, dpi=DPI, format=fmt))
    plt.close(fig)
    return paths


def figure_rows(rows: int, bars: int, extra_bottom_in: float = 0.0):
    """A figure of `rows` axes one above the other, wide enough for `bars` bars, margins fixed in inches (no
    tight-layout pass: it costs a full draw) with room on the right for the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(6.0, LEFT_IN + RIGHT_IN + BAR_WIDTH_IN * bars + 0.5)
    height = ROW_HEIGHT_IN * rows + 0.6 + extra_bottom_in
    fig, axes = plt.subplots(rows, 1, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=LEFT_IN / width, right=1 - RIGHT_IN / width, top=1 - 0.55 / height,
                        bottom=(0.75 + extra_bottom_in) / height, hspace=1.0)
    return fig, [row[0] for row in axes]


def stacked(ax, table, outer: list[str], inner: str, value: str, colours: dict, inner_key=None, label=None,
            groups: list[str] = GROUPS, slots: int = 0) -> str:
    """Stacked bars of `value` per group (GEMM at the bottom): per `outer` value (a model), one slot per `inner`
    value (a batch size) side by side, in the same order under every outer (a missing cell leaves its slot
    empty), the outer value written under its bars (`label(outer tuple)`). Returns the inner values in slot
    order, as text for the title: naming them under every bar would cost most of the drawing time. `slots`
    widens the x axis to that many bar slots, so that bars are as wide in every row of a figure."""
    from matplotlib.ticker import MaxNLocator

    keys = list(dict.fromkeys([*outer, inner]))
    pivot = table.groupby([*keys, "op_group"], sort=True)[value].sum().unstack("op_group", fill_value=0.0)
    if "run_id" in table:  # cells that share a bar (e.g. reruns) are averaged, not stacked
        pivot = pivot.div(table.groupby(keys)["run_id"].nunique().reindex(pivot.index), axis=0)
    inners = sorted(set(pivot.index.get_level_values(inner)), key=inner_key)
    outers = list(dict.fromkeys(k[: len(outer)] if len(keys) > 1 else k for k in pivot.index))
    width = len(inners) + 1
    slot_of = {v: k for k, v in enumerate(inners)}
    outer_index = {key: k for k, key in enumerate(outers)}
    positions = [outer_index[k[: len(outer)]] * width + slot_of[k[-1]] for k in pivot.index]
    _bars(ax, positions, pivot, colours, groups)
    wide = len(inners) >= 3
    for k, key in enumerate(outers):
        ax.text(k * width + (len(inners) - 1) / 2.0, -0.04, label(key) if label else " ".join(map(str, key)),
                transform=ax.get_xaxis_transform(), ha="center" if wide else "right", va="top", fontsize=7,
                rotation=0 if wide else 30)
    ax.set_xlim(-0.8, max(slots, len(outers) * width) - 1.2)
    ax.set_xticks([])
    ax.yaxis.set_major_locator(MaxNLocator(4))  # each tick label is a text to lay out, twice (PNG and PDF)
    ax.tick_params(axis="y", labelsize=7)
    return ", ".join(map(str, inners))


def _bars(ax, positions: list[float], pivot, colours: dict, groups: list[str]) -> None:
    """The stacked bars as one polygon collection: ax.bar makes (and bounds) one patch per bar, which is most
    of the drawing time of a figure of hundreds of bars."""
    import numpy as np
    from matplotlib.collections import PolyCollection

    x = np.asarray(positions, dtype=float)[:, None]
    left, right = x - 0.425, x + 0.425
    bottom = np.zeros((len(positions), 1))
    polygons, faces = [], []
    for group in [g for g in groups if g in pivot.columns]:
        top = bottom + pivot[group].to_numpy()[:, None]
        polygons.append(np.stack([np.hstack(c) for c in ((left, bottom), (right, bottom), (right, top), (left, top))],
                                 axis=1))
        faces += [colours[group]] * len(positions)
        bottom = top
    if polygons:
        ax.add_collection(PolyCollection(np.concatenate(polygons), facecolors=faces, edgecolors="none"))
    ax.set_ylim(0, float(bottom.max()) * 1.05 if len(bottom) and bottom.max() > 0 else 1.0)


def group_legend(fig, groups, colours: dict) -> None:
    """One legend on the right for the groups present, in GROUPS order."""
    import matplotlib.pyplot as plt

    present = [g for g in GROUPS if g in set(groups)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[g]) for g in present]
    width = fig.get_figwidth()
    fig.legend(handles, present, loc="center left", fontsize=7, bbox_to_anchor=(1 - (RIGHT_IN - 0.1) / width, 0.5))


def _model_label(key: tuple) -> str:
    return f"{key[0]}{variant_text(key[1])}"


def _row_title(row: dict) -> str:
    quant = f" {row['quant']}" if row.get("quant") else ""
    return f"{row['flow']} | {row['device']} | {row['precision']}{quant}{variant_text(row.get('variant'))}"


def bar_slots(table, rows: list[str], outer: list[str], inner: str) -> int:
    """The most bar slots a row needs: per outer value one per inner value of the row, and a gap."""
    columns = list(dict.fromkeys([*rows, *outer]))
    outers = table[columns].drop_duplicates().groupby(rows).size()
    inners = table[list(dict.fromkeys([*rows, inner]))].drop_duplicates().groupby(rows).size()
    return int((outers * (inners + 1)).max())


def group_breakdown(table, out_dir: Path, name: str = "fig6", value: str = "pct", x: str = "batch_size",
                    title: str = "") -> list[Path]:
    """One row per (device, flow, precision, quant, variant); in it, per model, stacked groups at each `x`."""
    table = table.assign(**{k: table[k].fillna("") if k in table else "" for k in ROW_KEYS + MODEL_KEYS})
    rows = list(table.groupby(ROW_KEYS, sort=True))
    slots = bar_slots(table, ROW_KEYS, MODEL_KEYS, x)
    fig, axes = figure_rows(len(rows), slots)
    colours = palette()
    axis = x.replace("_", " ")
    for ax, (key, part) in zip(axes, rows):
        inners = stacked(ax, part, MODEL_KEYS, x, value, colours, label=_model_label, slots=slots)
        ax.set_title(f"{_row_title(dict(zip(ROW_KEYS, key)))}   (bars: {axis} {inners})", fontsize=8, loc="left")
        ax.set_ylabel("% of latency" if value == "pct" else "ms per inference", fontsize=8)
    group_legend(fig, table["op_group"], colours)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out_dir, name)


def energy(cells, out_dir: Path, name: str = "fig5") -> list[Path]:
    """Energy per inference (J), from NVML: one row per setting, per model one bar per batch size."""
    data = cells.dropna(subset=["energy_j"]).assign(op_group="Energy")
    data = data.assign(**{k: data[k].fillna("") if k in data else "" for k in ROW_KEYS + MODEL_KEYS})
    rows = list(data.groupby(ROW_KEYS, sort=True))
    slots = bar_slots(data, ROW_KEYS, MODEL_KEYS, "batch_size")
    fig, axes = figure_rows(len(rows), slots)
    for ax, (key, part) in zip(axes, rows):
        inners = stacked(ax, part, MODEL_KEYS, "batch_size", "energy_j", {"Energy": (0.2, 0.45, 0.7)},
                         label=_model_label, groups=["Energy"], slots=slots)
        ax.set_title(f"{_row_title(dict(zip(ROW_KEYS, key)))}   (bars: batch size {inners})", fontsize=8, loc="left")
        ax.set_ylabel("GPU energy per\ninference (J)", fontsize=8)
    return save_figure(fig, out_dir, name)


def section(report: Report) -> list:
    """Figure 6 always; Figure 5 when the cells measured energy; Figure 9 when some are quantized."""
    if report.out is None:
        return []
    table, cells, view = report.breakdown(), report.cells, VIEW_TITLES[report.view]
    figures = [Figure("fig6", f"Figure 6: % of latency per group, {view}",
                      group_breakdown(table, report.out, "fig6", title=f"% of latency per group, {view}"))]
    if cells["energy_j"].notna().any():
        figures.append(Figure("fig5", "Figure 5: GPU energy per inference", energy(cells, report.out, "fig5")))
    quantized = cells[cells["quant"].fillna("") != ""]
    if len(quantized):  # Figure 9: the quantized cells and their unquantized twins, ms per group over seq. lengths
        twins = ["model", "variant", "flow", "device", "precision", "batch_size"]
        runs = cells.merge(quantized[twins].drop_duplicates(), on=twins)[["run_id", "seq_len"]]
        with_seq = table.merge(runs, on="run_id")
        x = "seq_len" if with_seq["seq_len"].notna().all() else "batch_size"
        with_seq[x] = with_seq[x].astype(int)
        figures.append(Figure("fig9", f"Figure 9: ms per group, {view}",
                              group_breakdown(with_seq, report.out, "fig9", value="ms", x=x,
                                              title=f"ms per inference per group, {view}")))
    return figures
