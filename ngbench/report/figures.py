"""Figures in the shape of the paper's: group breakdowns (Fig. 6), energy (Fig. 5), int8 (Fig. 9).

Figures are saved as PNG and PDF; nothing is ever shown on screen.
"""

from __future__ import annotations

from pathlib import Path

from ngbench.schema import GROUPS


def palette() -> dict[str, tuple]:
    """One fixed colour per group, the same in every figure."""
    import seaborn as sns

    operators = [g for g in GROUPS if g not in ("Idle", "Communication")]
    colours = dict(zip(operators, sns.color_palette("tab20", len(operators))))
    colours["Idle"] = (0.55, 0.55, 0.55)  # grey: not an operator, the host between operators
    colours["Communication"] = (0.10, 0.10, 0.40)  # navy, outside tab20: the other groups keep their colours
    return colours


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.tight_layout()
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def stacked(ax, table, x: str, value: str, colours: dict, sort_key=None) -> None:
    """Stacked bars of `value` per group (GEMM at the bottom) at each value of column `x`, in the index's
    order or sorted by `sort_key`."""
    pivot = table.pivot_table(index=x, columns="op_group", values=value, aggfunc="sum", fill_value=0.0)
    if sort_key is not None:
        pivot = pivot.loc[sorted(pivot.index, key=sort_key)]
    bottom = None
    for group in [g for g in GROUPS if g in pivot.columns]:
        heights = pivot[group].to_numpy()
        ax.bar([str(i) for i in pivot.index], heights, bottom=bottom, color=colours[group], label=group)
        bottom = heights if bottom is None else bottom + heights


def group_legend(fig, groups, colours: dict) -> None:
    """One legend on the right for the groups present, in GROUPS order."""
    import matplotlib.pyplot as plt

    present = [g for g in GROUPS if g in set(groups)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[g]) for g in present]
    fig.legend(handles, present, loc="center left", fontsize=7, bbox_to_anchor=(1.0, 0.5))


def group_breakdown(table, out_dir: Path, name: str = "fig6", value: str = "pct", x: str = "batch_size") -> list[Path]:
    """One panel per (device, model, flow, precision, quant): stacked groups at each `x` (batch size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = table.groupby(["device", "model", "flow", "precision", "quant"], sort=True)
    count = len(panels)
    cols = min(4, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.9 * rows), squeeze=False)
    colours = palette()
    for ax, ((device, model, flow, precision, quant), cell) in zip(axes.flat, panels):
        stacked(ax, cell, x, value, colours)
        label = f"{model} | {flow} | {device}\n{precision}{' ' + quant if quant else ''}"
        ax.set_title(label, fontsize=8)
        ax.set_xlabel(x.replace("_", " "), fontsize=8)
        ax.set_ylabel("% of latency" if value == "pct" else "ms per inference", fontsize=8)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    group_legend(fig, table["op_group"], colours)
    return _save(fig, out_dir, name)


def energy(cells, out_dir: Path, name: str = "fig5") -> list[Path]:
    """Energy per inference (J) per model and batch size, from NVML."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = cells.dropna(subset=["energy_j"])
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * data["model"].nunique() + 3), 3.2))
    sns.barplot(data=data, x="model", y="energy_j", hue="batch_size", ax=ax)
    ax.set_ylabel("GPU energy per inference (J)")
    ax.tick_params(axis="x", rotation=45)
    return _save(fig, out_dir, name)
