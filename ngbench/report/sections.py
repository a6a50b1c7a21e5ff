"""What a report holds, in page order: (heading, builder) pairs. A builder takes the `Report` and returns its
`Table`s and `Figure`s (ngbench.report.parts); the CSV, HTML and markdown writers lay them out. To add a table
or a figure, write a module with a `section(report)` function and list it here."""

from __future__ import annotations

from ngbench.report import breakdowns, cells, figures, flows, paper, steps, tables
from ngbench.report.parts import Figure, Files, Report


def kernels_section(report: Report) -> list:
    """ngbench.report.kernels: a table per cell (kernel classes inside each group, roofline), and with an output
    directory its files (CSV, kernels.md) and the roofline figure."""
    from ngbench.report.kernels import cells_of, kernel_tables, write_kernel_reports

    cells = cells_of([report.sweep.root / d for d in report.cells["dir"]])
    if report.out is None:
        return kernel_tables(cells)
    paths = write_kernel_reports(cells, report.out)
    figure = [p for p in paths if p.stem == "roofline" and p.suffix in (".png", ".pdf")]
    parts = [Figure("roofline", "Roofline: achieved FLOP/s against arithmetic intensity, per operator", figure)]
    return (parts if figure else []) + kernel_tables(cells) + [Files([p for p in paths if p not in figure])]


SECTIONS = [
    ("Cells", cells.section),
    ("Figures", figures.section),
    ("Table IV beside the paper", paper.section),
    ("Breakdowns", breakdowns.section),
    ("Paper tables", tables.section),
    ("Deployment flows", flows.section),
    ("Inside the operators", kernels_section),
    ("What each run did", steps.section),
]


def build(report: Report) -> list[tuple[str, list]]:
    """(heading, parts) of every section, in page order."""
    return [(heading, builder(report)) for heading, builder in SECTIONS]
