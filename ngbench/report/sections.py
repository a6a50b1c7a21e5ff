"""What a report holds, in page order: (heading, figures builder, tables builder). A builder takes the `Report`
and returns its `Figure`s or `Table`s (ngbench.report.parts); the CSV, HTML and markdown writers lay them out.
To add a table or a figure, write a module with a `section(report)` function and list it here."""

from __future__ import annotations

from ngbench.report import breakdowns, cells, figures, flows, paper, steps, tables
from ngbench.report.parts import Figure, Files, Report


def kernels_section(report: Report) -> list:
    """ngbench.report.kernels: a table per cell (kernel classes inside each group, roofline), and with an output
    directory its files (CSV, kernels.md) and the roofline figure."""
    from ngbench.report.kernels import cells_of, kernel_tables, write_kernel_reports

    cells = cells_of([(report.sweep.root / d, report.sweep.summaries[d]) for d in report.cells["dir"]])
    if report.out is None:
        return kernel_tables(cells)
    paths = write_kernel_reports(cells, report.out)
    figure = [p for p in paths if p.stem == "roofline" and p.suffix in (".png", ".pdf")]
    parts = [Figure("roofline", "Roofline: achieved FLOP/s against arithmetic intensity, per operator", figure)]
    return (parts if figure else []) + kernel_tables(cells) + [Files([p for p in paths if p not in figure])]


# (heading, figures, tables): `figures` builds the section's figures and whatever else writes files of its own,
# `tables` its tables; either may be None. On the pages a section's figures come before its tables.
SECTIONS = [
    ("Cells", None, cells.section),
    ("Figures", figures.section, None),
    ("Table IV beside the paper", None, paper.section),
    ("Breakdowns", None, breakdowns.section),
    ("Paper tables", None, tables.section),
    ("Deployment flows", flows.figures_section, flows.section),
    ("Inside the operators", kernels_section, None),
    ("What each run did", None, steps.section),
]


def build(report: Report) -> list[tuple[str, list]]:
    """(heading, parts) of every section, in page order. When figures are written, they are drawn in a child
    process (ngbench.report.elsewhere) while this one makes the tables."""
    from ngbench.report.elsewhere import Elsewhere

    def draw() -> list[list]:
        return [builder(report) if builder else [] for _, builder, _ in SECTIONS]

    report.all_views()   # what both sides read, computed once before they part
    drawn = Elsewhere(draw) if report.out is not None else None
    made = [builder(report) if builder else [] for _, _, builder in SECTIONS]
    figures = drawn.result() if drawn is not None else draw()
    return [(heading, figure_parts + table_parts)
            for (heading, _, _), figure_parts, table_parts in zip(SECTIONS, figures, made)]
