"""What a report holds, in page order: (heading, builder) pairs. A builder takes the `Report` and returns its
`Table`s and `Figure`s (ngbench.report.parts); the CSV, HTML and markdown writers lay them out. To add a table
or a figure, write a module with a `section(report)` function and list it here."""

from __future__ import annotations

from ngbench.report import breakdowns, cells, figures, flows, paper, tables
from ngbench.report.parts import Report

SECTIONS = [
    ("Cells", cells.section),
    ("Figures", figures.section),
    ("Table IV beside the paper", paper.section),
    ("Breakdowns", breakdowns.section),
    ("Paper tables", tables.section),
    ("Deployment flows", flows.section),
]


def build(report: Report) -> list[tuple[str, list]]:
    """(heading, parts) of every section, in page order."""
    return [(heading, builder(report)) for heading, builder in SECTIONS]
