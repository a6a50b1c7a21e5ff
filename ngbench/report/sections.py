"""What a report holds, in page order: (heading, builder) pairs. A builder takes the `Report` and returns its
`Table`s and `Figure`s (ngbench.report.parts); the CSV, HTML and markdown writers lay them out. To add a table
or a figure, write a module with a `section(report)` function and list it here."""

from __future__ import annotations

from ngbench.report import breakdowns, cells, figures, flows, paper, tables
from ngbench.report.parts import Figure, Files, Report


def kernels_section(report: Report) -> list:
    """ngbench.report.kernels' files (kernel classes, roofline: they read the run directories themselves), the
    roofline figure on the page."""
    from ngbench.report.kernels import write_kernel_reports

    if report.out is None:
        return []
    paths = write_kernel_reports([report.sweep.root / d for d in report.cells["dir"]], report.out)
    figure = [p for p in paths if p.stem == "roofline" and p.suffix in (".png", ".pdf")]
    parts = [Figure("roofline", "Roofline: achieved FLOP/s against arithmetic intensity, per operator", figure)]
    return (parts if figure else []) + [Files([p for p in paths if p not in figure])]


SECTIONS = [
    ("Cells", cells.section),
    ("Figures", figures.section),
    ("Table IV beside the paper", paper.section),
    ("Breakdowns", breakdowns.section),
    ("Paper tables", tables.section),
    ("Deployment flows", flows.section),
    ("Inside the operators", kernels_section),
]


def build(report: Report) -> list[tuple[str, list]]:
    """(heading, parts) of every section, in page order."""
    return [(heading, builder(report)) for heading, builder in SECTIONS]
