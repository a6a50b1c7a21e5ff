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


def start_drawing():
    """The process that draws the figures (ngbench.report.elsewhere), forked now, before the sweep is read:
    it imports and warms up matplotlib meanwhile; build() hands it the report. pandas is imported first, so
    that both processes share it."""
    import pandas  # noqa: F401

    from ngbench.report.elsewhere import Elsewhere

    return Elsewhere(_draw, prepare=figures.warm_up)


def _draw(report: Report) -> list[list]:
    return [builder(report) if builder else [] for _, builder, _ in SECTIONS]


def build(report: Report, drawing=None, meanwhile=None) -> list[tuple[str, list]]:
    """(heading, parts) of every section, in page order. With `drawing` (start_drawing()), the figures are
    drawn there while this process makes the tables, and then runs `meanwhile(tables)` (their files written,
    their HTML made) before it waits for the figures; without, the figures are drawn here."""
    if drawing is not None:
        drawing.send(report.for_drawing())
        if report.ops is not None:   # a CPU draws: DuckDB's queries for the tables keep to the other
            report.ops.limit_threads(1)
    made = [builder(report) if builder else [] for _, _, builder in SECTIONS]
    if meanwhile is not None:
        meanwhile([part for parts in made for part in parts])
    figures = drawing.result() if drawing is not None else _draw(report)
    return [(heading, figure_parts + table_parts)
            for (heading, _, _), figure_parts, table_parts in zip(SECTIONS, figures, made)]
