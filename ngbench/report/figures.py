"""Figures in the shape of the paper's: group breakdowns (Fig. 6), energy (Fig. 5), int8 (Fig. 9).

Like the paper's Figure 6, a breakdown figure has one row of bars per setting (device, flow, precision, quant,
variant); the bars of one model stand side by side (one per batch size or sequence length). A sweep of hundreds
of cells is a few axes, not hundreds, so it draws in well under a second. Figures are saved as PNG and PDF;
nothing is ever shown on screen. Titles name the model variant (tiny, custom) when it is not the full model.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from ngbench.report.parts import Figure, Report
from ngbench.report.views import VIEW_TITLES
from ngbench.schema import GROUPS

ROW_KEYS = ["device", "flow", "precision", "quant", "variant"]   # one row of bars per setting
MODEL_KEYS = ["model", "variant"]
BAR_WIDTH_IN, ROW_HEIGHT_IN, LEFT_IN, RIGHT_IN = 0.15, 2.4, 0.7, 1.6
DPI = 100
# zlib level 1 with its run-length strategy: the default level costs more than drawing the figure, for a file
# ~1.5x smaller; run lengths (the bars and the background are runs of one colour) are quicker still and smaller
PNG_OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_RLE}


def palette() -> dict[str, tuple]:
    """One fixed colour per group, the same in every figure (matplotlib's tab20, in GROUPS order)."""
    from matplotlib import colormaps

    operators = [g for g in GROUPS if g not in ("Idle", "Communication")]
    colours = dict(zip(operators, colormaps["tab20"].colors))
    colours["Idle"] = (0.55, 0.55, 0.55)  # grey: not an operator, the host between operators
    colours["Communication"] = (0.10, 0.10, 0.40)  # navy, outside tab20: the other groups keep their colours
    return colours


def warm_up() -> None:
    """What the first figure would pay for, paid in advance (by the drawing process while the sweep is read,
    ngbench.report.sections.start_drawing): pyplot, the PNG and PDF backends and PIL's PNG writer imported, the
    font found and loaded. Not a figure drawn: that costs more CPU (shared with the reading of the sweep) than
    it spares the first figure. The figures come out the same (this leaves nothing behind but caches)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.backends.backend_pdf  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    from matplotlib.font_manager import FontProperties, findfont, get_font
    from PIL import PngImagePlugin  # noqa: F401

    get_font(findfont(FontProperties()))


def variant_text(variant) -> str:
    """' (tiny)' for a model that is not the full one, '' for the full model."""
    return f" ({variant})" if variant not in (None, "", "full") else ""


def save_figure(fig, out_dir: Path, name: str) -> list[Path]:
    """PNG and PDF, each written whole (temp file + rename). The PNG's pixels are drawn first; zlib compresses
    them on a thread (it lets go of the GIL) while the PDF is drawn here, so that the compression runs on the
    other CPU instead of after the drawing. Both files are whole when this returns."""
    import os
    import threading

    import matplotlib.pyplot as plt

    from ngbench.output import atomic_write_bytes

    png, pdf = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    # drawn as for a PNG, into the Agg canvas's pixel buffer (and copied to nowhere); the PDF is drawn by another
    fig.savefig(os.devnull, dpi=DPI, format="rgba")
    failed = []
    compressing = threading.Thread(target=_write_png, args=(png, fig.canvas.buffer_rgba(), failed))
    compressing.start()
    try:
        atomic_write_bytes(pdf, lambda tmp: fig.savefig(tmp, dpi=DPI, format="pdf"))
    finally:
        compressing.join()
        plt.close(fig)
    if failed:
        raise failed[0]
    return [png, pdf]


def _write_png(path: Path, rgba, failed: list) -> None:
    """`rgba` (the Agg canvas's buffer) as the PNG savefig would write, by matplotlib's own image writer; an
    exception is put in `failed`, for the thread that waits for this one to raise."""
    from matplotlib.image import imsave

    from ngbench.output import atomic_write_bytes

    try:
        atomic_write_bytes(path, lambda tmp: imsave(tmp, rgba, format="png", origin="upper", dpi=DPI,
                                                    pil_kwargs=PNG_OPTIONS))
    except BaseException as exc:   # noqa: BLE001 - raised by save_figure, in the drawing thread
        failed.append(exc)


def figure_rows(rows: int, bars: int):
    """A figure of `rows` axes one above the other, wide enough for `bars` bar slots, margins fixed in inches (no
    tight-layout pass: it costs a full draw) with room on the right for the legend. Every row gets the same x
    limits from `stacked`; the axes are not shared (sharex), since a shared axis lays out the tick labels of all
    its siblings on each draw, for a figure that is the same byte for byte."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(6.0, LEFT_IN + RIGHT_IN + BAR_WIDTH_IN * bars + 0.5)
    height = ROW_HEIGHT_IN * rows + 1.6
    fig, axes = plt.subplots(rows, 1, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=LEFT_IN / width, right=1 - RIGHT_IN / width, top=1 - 0.6 / height,
                        bottom=1.0 / height, hspace=0.45)
    return fig, [row[0] for row in axes]


@dataclass
class Slots:
    """Where each bar goes, the same in every row of a figure: per outer value (a model) one slot per inner
    value (a batch size) and a gap; a cell a row lacks leaves its slot empty, so a model stands in the same
    column in every row and is named once, under the bottom row (text is most of a figure's drawing time)."""

    outers: list[tuple]
    inners: list

    @classmethod
    def of(cls, table, outer: list[str], inner: str, inner_key=None) -> Slots:
        outers = sorted(set(table[outer].itertuples(index=False, name=None)))
        return cls(outers, sorted(set(table[inner]), key=inner_key))

    @property
    def count(self) -> int:
        return len(self.outers) * (len(self.inners) + 1)

    def position(self, outer: tuple, inner) -> int:
        return self.outers.index(outer) * (len(self.inners) + 1) + self.inners.index(inner)

    def label_under(self, ax, labels: list[str]) -> None:
        """`labels` (one per outer value) under `ax`'s bars."""
        wide = len(self.inners) >= 3
        for k, text in enumerate(labels):
            ax.text(k * (len(self.inners) + 1) + (len(self.inners) - 1) / 2.0, -0.04, text,
                    transform=ax.get_xaxis_transform(), ha="center" if wide else "right", va="top", fontsize=7,
                    rotation=0 if wide else 30)


@dataclass
class BarRow:
    """One row (axes) of stacked bars: each bar's slot and its heights per group, the row's title and y label."""

    positions: list[int]
    heights: dict      # group -> the bars' heights (an array in the order of `positions`)
    title: str
    ylabel: str


@dataclass
class Bars:
    """A figure of rows of stacked bars worked out to the last number, without matplotlib: the report process
    makes it while the drawing process gets ready (Report.planned, sections.PLANS), draw_bars draws it."""

    slots: Slots
    rows: list[BarRow]
    labels: list[str]              # under the bottom row, one per outer value of `slots`
    suptitle: str
    legend: list[str] | None       # the groups present, for the legend; None: no legend


def heights(table, rows: list[str], outer: list[str], inner: str, value: str, slots: Slots) -> list[tuple]:
    """Per value of `rows`, in order: (that value, the slot of each of its bars, the bars' `value` per group as
    {group: array}), a bar per (outer..., inner) value of `table`. One grouping pass over the whole table: a
    pass per row costs more than the rest of the plan."""
    keys = list(dict.fromkeys([*rows, *outer, inner]))
    pivot = table.groupby([*keys, "op_group"], sort=True)[value].sum().unstack("op_group", fill_value=0.0)
    if "run_id" in table:  # cells that share a bar (e.g. reruns) are averaged, not stacked
        pivot = pivot.div(table.groupby(keys)["run_id"].nunique().reindex(pivot.index), axis=0)
    at = {key: keys.index(key) for key in keys}
    index = pivot.index.tolist()
    members: dict[tuple, list[int]] = {}
    for number, key in enumerate(index):
        members.setdefault(tuple(key[at[k]] for k in rows), []).append(number)
    values = pivot.to_numpy()
    made = []
    for row, numbers in members.items():   # in the index's order: sorted by `rows` first
        positions = [slots.position(tuple(index[n][at[k]] for k in outer), index[n][at[inner]]) for n in numbers]
        made.append((row, positions, dict(zip(pivot.columns, values[numbers].T))))
    return made


def stacked(ax, row: BarRow, slots: Slots, colours: dict, groups: list[str] = GROUPS) -> None:
    """The row's stacked bars per group (GEMM at the bottom), each at its place in `slots`."""
    from matplotlib.ticker import MaxNLocator

    _bars(ax, row.positions, row.heights, colours, groups)
    ax.set_xlim(-0.8, slots.count - 1.2)
    ax.xaxis.set_visible(False)   # no ticks: not drawn at all (the same pixels as no ticks, and its layout skipped)
    ax.yaxis.set_major_locator(MaxNLocator(4))  # each tick label is a text to lay out, twice (PNG and PDF)
    ax.tick_params(axis="y", labelsize=7)


def _bars(ax, positions: list[float], heights: dict, colours: dict, groups: list[str]) -> None:
    """The stacked bars, one compound path of rectangles per group: ax.bar makes (and bounds) one patch per bar,
    and a PDF writes a collection's polygons one by one; both cost most of the drawing time of hundreds of bars."""
    import numpy as np
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as Outline

    x = np.asarray(positions, dtype=float)
    bottom = np.zeros(len(positions))
    codes = [Outline.MOVETO, Outline.LINETO, Outline.LINETO, Outline.LINETO, Outline.CLOSEPOLY]
    for group in [g for g in groups if g in heights]:
        top = bottom + heights[group]
        drawn = top > bottom   # an empty segment would be a rectangle to write all the same
        left, right, lo, hi = x[drawn] - 0.425, x[drawn] + 0.425, bottom[drawn], top[drawn]
        corners = np.stack([np.stack(c, axis=1) for c in ((left, lo), (right, lo), (right, hi), (left, hi), (left, lo))],
                           axis=1).reshape(-1, 2)
        if len(corners):  # add_artist: add_patch would bound every segment in Python (the limits are set below)
            ax.add_artist(PathPatch(Outline(corners, codes * int(drawn.sum())), facecolor=colours[group],
                                   edgecolor="none", linewidth=0))
        bottom = top
    ax.set_ylim(0, float(bottom.max()) * 1.05 if len(bottom) and bottom.max() > 0 else 1.0)


def title_row(ax, text: str) -> None:
    """`text` over the left of `ax`. The title is placed at the top (y=1.0) rather than automatically: the
    automatic placement lays out every tick label of the axes once more on each draw, to dodge decorations
    above the axes (top tick labels, an offset text) that these axes never have, so the place is the same."""
    ax.set_title(text, fontsize=8, loc="left", y=1.0)


def group_legend(fig, groups, colours: dict) -> None:
    """One legend on the right for the groups present, in GROUPS order."""
    import matplotlib.pyplot as plt

    present = set(groups)
    present = [g for g in GROUPS if g in present]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[g]) for g in present]
    width = fig.get_figwidth()
    fig.legend(handles, present, loc="center left", fontsize=7, bbox_to_anchor=(1 - (RIGHT_IN - 0.1) / width, 0.5))


def _model_label(key: tuple) -> str:
    return f"{key[0]}{variant_text(key[1])}"


def _row_title(row: dict) -> str:
    quant = f" {row['quant']}" if row.get("quant") else ""
    return f"{row['flow']} | {row['device']} | {row['precision']}{quant}{variant_text(row.get('variant'))}"


def bar_rows(table, rows: list[str], outer: list[str], inner: str, value: str, ylabel: str, label=_model_label,
             inner_key=None) -> tuple[Slots, list[BarRow], list[str]]:
    """(slots, a BarRow per value of `rows`, the labels under the bottom row) of `table`, bars placed by Slots."""
    slots = Slots.of(table, outer, inner, inner_key)
    made = [BarRow(positions, bars, _row_title(dict(zip(rows, key))), ylabel)
            for key, positions, bars in heights(table, rows, outer, inner, value, slots)]
    return slots, made, [label(key) for key in slots.outers]


def draw_bars(bars: Bars, colours: dict, groups: list[str] = GROUPS):
    """The figure of `bars` (not saved)."""
    fig, axes = figure_rows(len(bars.rows), bars.slots.count)
    for ax, row in zip(axes, bars.rows):
        stacked(ax, row, bars.slots, colours, groups)
        title_row(ax, row.title)
        ax.set_ylabel(row.ylabel, fontsize=8)
    bars.slots.label_under(axes[-1], bars.labels)
    if bars.legend is not None:
        group_legend(fig, bars.legend, colours)
    fig.suptitle(bars.suptitle, fontsize=10)
    return fig


def rows_of_bars(table, rows: list[str], outer: list[str], inner: str, value: str, colours: dict, ylabel: str,
                 groups: list[str] = GROUPS, label=_model_label, inner_key=None):
    """A figure with a row of stacked bars per value of `rows`, bars placed by Slots; returns (fig, slots)."""
    slots, made, labels = bar_rows(table, rows, outer, inner, value, ylabel, label, inner_key)
    return draw_bars(Bars(slots, made, labels, "", None), colours, groups), slots


def breakdown_bars(table, value: str = "pct", x: str = "batch_size", title: str = "") -> Bars:
    """One row per (device, flow, precision, quant, variant); in it, per model, stacked groups at each `x`."""
    table = table.assign(**{k: table[k].fillna("") if k in table else "" for k in ROW_KEYS + MODEL_KEYS})
    slots, made, labels = bar_rows(table, ROW_KEYS, MODEL_KEYS, x, value,
                                   "% of latency" if value == "pct" else "ms per inference")
    bars = f"bars: {x.replace('_', ' ')} {', '.join(map(str, slots.inners))}"
    return Bars(slots, made, labels, f"{title}\n({bars})" if title else bars,   # two lines: a long title fits
                list(table["op_group"].unique()))


def group_breakdown(table, out_dir: Path, name: str = "fig6", value: str = "pct", x: str = "batch_size",
                    title: str = "") -> list[Path]:
    """breakdown_bars drawn and saved as `name`."""
    return save_figure(draw_bars(breakdown_bars(table, value, x, title), palette()), out_dir, name)


ENERGY_COLOURS = {"Energy": (0.2, 0.45, 0.7)}


def energy_bars(cells) -> Bars:
    """Energy per inference (J), from NVML: one row per setting, per model one bar per batch size."""
    data = cells.dropna(subset=["energy_j"]).assign(op_group="Energy")
    data = data.assign(**{k: data[k].fillna("") if k in data else "" for k in ROW_KEYS + MODEL_KEYS})
    slots, made, labels = bar_rows(data, ROW_KEYS, MODEL_KEYS, "batch_size", "energy_j",
                                   "GPU energy per\ninference (J)")
    return Bars(slots, made, labels,
                f"GPU energy per inference   (bars: batch size {', '.join(map(str, slots.inners))})", None)


def energy(cells, out_dir: Path, name: str = "fig5") -> list[Path]:
    """energy_bars drawn and saved as `name`."""
    return save_figure(draw_bars(energy_bars(cells), ENERGY_COLOURS, ["Energy"]), out_dir, name)


def fig6_bars(report: Report) -> Bars:
    return report.planned("fig6", lambda: breakdown_bars(report.breakdown(), title=(
        f"% of latency per group, {VIEW_TITLES[report.view]}")))


def fig6(report: Report) -> list:
    """Figure 6: every cell's shares per group, in the report's view."""
    if report.out is None:
        return []
    view = VIEW_TITLES[report.view]
    paths = save_figure(draw_bars(fig6_bars(report), palette()), report.out, "fig6")
    return [Figure("fig6", f"Figure 6: % of latency per group, {view}", paths)]


def fig5_bars(report: Report) -> Bars | None:
    """Figure 5's bars, when the cells measured energy (None when none did)."""
    return report.planned("fig5", lambda: energy_bars(report.cells) if report.cells["energy_j"].notna().any()
                          else None)


def fig5(report: Report) -> list:
    """Figure 5, when the cells measured energy."""
    bars = fig5_bars(report) if report.out is not None else None
    if bars is None:
        return []
    paths = save_figure(draw_bars(bars, ENERGY_COLOURS, ["Energy"]), report.out, "fig5")
    return [Figure("fig5", "Figure 5: GPU energy per inference", paths)]


def fig9_bars(report: Report) -> Bars | None:
    """Figure 9's bars, when some cells are quantized (None when none is): those and their unquantized twins, ms
    per group over sequence lengths (or batch sizes)."""
    def made() -> Bars | None:
        cells = report.cells
        quantized = cells[cells["quant"].fillna("") != ""]
        if not len(quantized):
            return None
        twins = ["model", "variant", "flow", "device", "precision", "batch_size"]
        runs = cells.merge(quantized[twins].drop_duplicates(), on=twins)[["run_id", "seq_len"]]
        with_seq = report.breakdown().merge(runs, on="run_id")
        x = "seq_len" if with_seq["seq_len"].notna().all() else "batch_size"
        with_seq[x] = with_seq[x].astype(int)
        return breakdown_bars(with_seq, "ms", x, f"ms per inference per group, {VIEW_TITLES[report.view]}")

    return report.planned("fig9", made)


def fig9(report: Report) -> list:
    """Figure 9, when some cells are quantized (fig9_bars)."""
    bars = fig9_bars(report) if report.out is not None else None
    if bars is None:
        return []
    paths = save_figure(draw_bars(bars, palette()), report.out, "fig9")
    return [Figure("fig9", f"Figure 9: ms per group, {VIEW_TITLES[report.view]}", paths)]


FIGURES = (fig6, fig5, fig9)


def section(report: Report) -> list:
    """Figure 6 always; Figure 5 when the cells measured energy; Figure 9 when some are quantized."""
    return [figure for draw in FIGURES for figure in draw(report)]
