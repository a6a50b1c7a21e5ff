"""Inside the operators, per cell of a sweep: device time by kernel class in each group ("GEMM: 11.7 ms, of
which layout 4.8 ms"), each group against the memory and compute roofs, the share of device time that
reached an operator, and the roofline figure (one point per operator signature).

Reads only run directories (summary.json, ops.parquet). Writes kernel_classes.csv, roofline.csv,
kernels.md and roofline.png/pdf into the report directory. docs/kernels.md explains every column.
"""

from __future__ import annotations

from pathlib import Path

ROOFLINE_OP_COLUMNS = ["op", "op_group", "input_shapes", "flops", "bytes", "device_us", "iteration"]
MAX_PANELS = 12         # the roofline figure draws at most this many cells (a readable page; kernels.md says so)
KEY_FIELDS = ["model", "flow", "device", "precision", "quant", "batch_size"]


def cells_of(cells: list[tuple[Path, dict]]) -> list[tuple[Path, dict]]:
    """Of the (run directory, summary) pairs of ok cells, those that have kernel classes or a roofline
    (completed from their files for runs recorded before those existed)."""
    found = []
    for run_dir, summary in cells:
        summary = completed(Path(run_dir), summary)
        if summary.get("kernel_classes") or summary.get("roofline"):
            found.append((Path(run_dir), summary))
    return found


def completed(run_dir: Path, summary: dict) -> dict:
    """The summary with its kernel-class, roofline and coverage blocks; a run recorded before they existed
    gets them from its own ops.parquet and kernels.parquet, by the same functions a run uses."""
    from ngbench.record import KERNELS_FILE, OPS_FILE

    if summary.get("kernel_classes") and summary.get("roofline"):
        return summary
    if not (run_dir / OPS_FILE).exists() or not (run_dir / KERNELS_FILE).exists():
        return summary
    import pandas as pd  # only here: the drawing process runs this too, and has not imported pandas otherwise

    from ngbench.record import owned_kernels
    from ngbench.summary import inside_operators

    ops = run_ops(run_dir, summary)
    kernels = pd.read_parquet(run_dir / KERNELS_FILE)
    kernels = owned_kernels(kernels.drop(columns=["kernel_class"], errors="ignore"), ops)   # classified now
    inside = inside_operators(ops, kernels, summary.get("device", ""), summary.get("precision", ""),
                              summary.get("quant", ""), summary.get("environment") or {})
    return {**summary, **{key: value for key, value in inside.items() if not summary.get(key)}}


def _label(summary: dict) -> str:
    quant = f" {summary['quant']}" if summary.get("quant") else ""
    gpu = (summary.get("environment") or {}).get("gpu") or (summary.get("environment") or {}).get("cpu", "")
    return (f"{summary['model']} | {summary['flow']} | {summary['device']} ({gpu}) | {summary['precision']}{quant} | "
            f"batch {summary['batch_size']}")


def kernel_class_rows(summaries: list[dict]):
    """One row per cell, op group and kernel class: device ms per inference, and whether the class is the
    group's own work."""
    import pandas as pd

    rows = []
    for summary in summaries:
        for group, entry in ((summary.get("kernel_classes") or {}).get("groups") or {}).items():
            for kernel_class, ms in entry["by_class_ms"].items():
                rows.append({**{k: summary.get(k) for k in KEY_FIELDS}, "run_id": summary["run_id"], "op_group": group,
                             "kernel_class": kernel_class, "device_ms": ms,
                             "own_class": kernel_class in entry["own_classes"] if entry["own_classes"] else None})
    return pd.DataFrame(rows)


def roofline_rows(summaries: list[dict]):
    """One row per cell and op group: the summary's roofline figures and the roofs they were compared with."""
    import pandas as pd

    rows = []
    for summary in summaries:
        roofline = summary.get("roofline") or {}
        for group, entry in (roofline.get("groups") or {}).items():
            rows.append({**{k: summary.get(k) for k in KEY_FIELDS}, "run_id": summary["run_id"], "op_group": group,
                         **entry, "bandwidth_gbs": roofline.get("bandwidth_gbs"), "peak": roofline.get("peak"),
                         "peak_tflops": roofline.get("peak_tflops")})
    return pd.DataFrame(rows)


def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def cell_rows(summary: dict):
    """The cell's headline (coverage, GEMM share by op and by kernel name, roofs) and one row per group."""
    import pandas as pd

    classes = summary.get("kernel_classes") or {}
    roofline = summary.get("roofline") or {}
    coverage = summary.get("coverage") or {}
    headline = (f"Clean latency {_fmt((summary.get('clean') or {}).get('median_ms'))} ms; device time that reached an "
                f"operator: {_fmt(coverage.get('device_pct'), 1)}%; GEMM share of device time: "
                f"{_fmt(summary.get('gemm_pct_device'), 1)}% by operator, {_fmt(classes.get('gemm_class_pct'), 1)}% by "
                f"kernel name. Memory roof {_fmt(roofline.get('bandwidth_gbs'), 0)} GB/s "
                f"({roofline.get('bandwidth_source') or 'none'}); compute peak {roofline.get('peak')}: "
                f"{_fmt(roofline.get('peak_tflops'), 1)} TFLOP/s.")
    unmapped = summary.get("unmapped_kernels") or {}
    if unmapped:
        headline += " Kernels no rule maps (class other): " + ", ".join(f"{k[:80]} x{v}" for k, v in unmapped.items())
    groups, per_group = classes.get("groups") or {}, roofline.get("groups") or {}

    def device_ms(group: str) -> float:
        return (groups.get(group) or per_group.get(group) or {}).get("device_ms", 0.0)

    rows = []
    for group in sorted(set(groups) | set(per_group), key=lambda g: -device_ms(g)):
        entry, roof = groups.get(group) or {}, per_group.get(group) or {}
        other = ", ".join(f"{k} {v:.3f}" for k, v in (entry.get("other_class_ms") or {}).items()) or "–"
        rows.append({"group": group, "device ms": _fmt(entry.get("device_ms", roof.get("device_ms")), 3),
                     "of which other kernel classes (ms)": other,
                     "bytes known %": _fmt(roof.get("bytes_known_pct"), 0), "GB/s": _fmt(roof.get("achieved_gbs"), 1),
                     "% of memory roofline": _fmt(roof.get("memory_roofline_pct"), 1),
                     "TFLOP/s": _fmt(roof.get("achieved_tflops"), 2),
                     "% of compute peak": _fmt(roof.get("compute_peak_pct"), 1)})
    return headline, pd.DataFrame(rows)


def cell_markdown(summary: dict) -> str:
    """The cell's section of kernels.md."""
    from ngbench.report.page import markdown_table

    headline, rows = cell_rows(summary)
    return f"### {_label(summary)}\n\n{headline}\n\n" + markdown_table(rows)


def kernel_tables(cells: list[tuple[Path, dict]]) -> list:
    """One report Table per cell (the HTML and markdown pages lay them out)."""
    from ngbench.report.parts import Table

    tables = []
    for index, (_, summary) in enumerate(cells):
        headline, rows = cell_rows(summary)
        tables.append(Table(f"kernels_{index}", _label(summary), rows, rows, note=headline, csv=False))
    return tables


def run_ops(run_dir: Path, summary: dict):
    """A run's ops.parquet, with FLOPs and bytes estimated where the file predates them (schema 2)."""
    import pandas as pd

    from ngbench.record import OPS_FILE
    from ngbench.roofline import with_flops_bytes
    from ngbench.schema import ROOFLINE_COLUMNS

    ops = pd.read_parquet(run_dir / OPS_FILE)
    if any(c not in ops for c in ROOFLINE_COLUMNS):
        ops = with_flops_bytes(ops, device_is_host=not str(summary.get("device", "")).startswith("cuda"))
    return ops


def operator_points(run_dir: Path, summary: dict):
    """One point per operator signature (op, group, input shapes) of a cell: FLOPs, bytes and device time per
    inference, with arithmetic intensity and achieved FLOP/s; operators with unknown or zero work left out."""
    ops = run_ops(run_dir, summary)[ROOFLINE_OP_COLUMNS]
    ops = ops[ops["flops"].notna() & ops["bytes"].notna() & (ops["flops"] > 0) & (ops["device_us"] > 0)]
    if ops.empty:
        return ops
    ops = ops.assign(signature=ops["input_shapes"].map(lambda shapes: str([list(s) for s in shapes])))
    iterations = max(int(ops["iteration"].nunique()), 1)
    points = ops.groupby(["op", "op_group", "signature"], as_index=False)[["flops", "bytes", "device_us"]].sum()
    points[["flops", "bytes", "device_us"]] /= iterations
    points["intensity"] = points["flops"] / points["bytes"]
    points["flops_per_s"] = points["flops"] / (points["device_us"] / 1e6)
    points["run_id"] = summary["run_id"]
    return points


def _roof(lo: float, hi: float, bandwidth: float, peak: float | None) -> tuple[list[float], list[float]]:
    """The roof's vertices from intensity `lo` to `hi`: bandwidth x intensity (B/s x FLOP/B) up to `peak`
    (FLOP/s; None: no peak), flat after the corner."""
    if peak is None or bandwidth * hi <= peak:
        return [lo, hi], [bandwidth * lo, bandwidth * hi]
    if bandwidth * lo >= peak:
        return [lo, hi], [peak, peak]
    return [lo, peak / bandwidth, hi], [bandwidth * lo, peak, peak]


def roofline_figure(cells: list[tuple[Path, dict]], out_dir: Path, name: str = "roofline") -> list[Path]:
    """Achieved FLOP/s against arithmetic intensity, one panel per cell, one point per operator signature
    (coloured by group, sized by device time), with the memory roof and the compute peak(s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ngbench.report.figures import group_legend, palette, save_figure

    panels = [(summary, operator_points(run_dir, summary)) for run_dir, summary in cells[:MAX_PANELS]]
    panels = [(summary, points) for summary, points in panels if not points.empty]
    if not panels:
        return []
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
    colours = palette()
    for ax, (summary, points) in zip(axes.flat, panels):
        sizes = 10 + 200 * points["device_us"] / points["device_us"].max()
        ax.scatter(points["intensity"], points["flops_per_s"], s=sizes, alpha=0.7, linewidths=0,
                   c=[colours.get(g, colours["Other"]) for g in points["op_group"]])
        # the roof's ends and corner, by arithmetic alone: a line is straight on log-log axes, and numpy's
        # power/log10 differ by an ulp between its SIMD paths (AVX-512 or not), enough to move anti-aliased pixels
        lo, hi = float(points["intensity"].min()) / 4, float(points["intensity"].max()) * 4
        roofline = summary.get("roofline") or {}
        bandwidth = roofline.get("bandwidth_gbs")
        peaks = {roofline.get("peak"): roofline.get("peak_tflops"),
                 "fp32": ((roofline.get("spec") or {}).get("peak_tflops") or {}).get("fp32")}
        for label, tflops in peaks.items():
            if tflops:
                ax.axhline(tflops * 1e12, color="0.5", lw=0.8, ls=":")
                ax.text(lo, tflops * 1e12, f" {label} peak", fontsize=6, va="bottom", color="0.35")
        top = max((t for t in peaks.values() if t), default=None)
        if bandwidth:
            ax.plot(*_roof(lo, hi, bandwidth * 1e9, top * 1e12 if top else None), color="k", lw=1.0,
                    label=f"{bandwidth:.0f} GB/s")
            ax.legend(fontsize=6, loc="lower right")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(_label(summary), fontsize=7)
        ax.set_xlabel("arithmetic intensity (FLOP/byte)", fontsize=7)
        ax.set_ylabel("achieved FLOP/s", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    group_legend(fig, {g for _, points in panels for g in points["op_group"]}, colours)
    return save_figure(fig, out_dir, name)


def write_kernel_reports(cells: list[tuple[Path, dict]], out_dir: str | Path) -> list[Path]:
    """kernel_classes.csv, roofline.csv, kernels.md and roofline.png/pdf for the cells (cells_of) that have them."""
    if not cells:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries = [summary for _, summary in cells]
    written = []
    for name, frame in (("kernel_classes", kernel_class_rows(summaries)), ("roofline", roofline_rows(summaries))):
        if not frame.empty:
            frame.to_csv(out / f"{name}.csv", index=False)
            written.append(out / f"{name}.csv")
    note = (f"roofline.png draws the first {MAX_PANELS} of these {len(cells)} cells.\n\n"
            if len(cells) > MAX_PANELS else "")
    text = "# Inside the operators: kernel classes and roofline\n\n" + note + "\n".join(map(cell_markdown, summaries))
    (out / "kernels.md").write_text(text)
    written.append(out / "kernels.md")
    return written + roofline_figure(cells, out)
