"""What a report holds, in page order: (heading, figure builders, tables builder). A builder takes the `Report`
and returns its `Figure`s or `Table`s (ngbench.report.parts); the CSV, HTML and markdown writers lay them out.
To add a table, write a module with a `section(report)` function and list it here; to add a figure, a function
that draws it, listed among its section's figure builders (each one is a job the two processes share, see
Drawing)."""

from __future__ import annotations

from ngbench.report import breakdowns, cells, figures, flows, paper, steps, tables
from ngbench.report.parts import Figure, Files, Report


def kernel_cells(report: Report) -> list:
    """(run directory, summary) of each ok cell: what the kernels section reads, made once per report
    (Report.planned) like the figures' plans, so that the drawing process gets it without the cells' frame."""
    return report.planned("kernels", lambda: [(report.sweep.root / d, report.sweep.summaries[d])
                                              for d in report.cells["dir"]])


def kernels_section(report: Report) -> list:
    """ngbench.report.kernels: a table per cell (kernel classes inside each group, roofline), and with an output
    directory its files (CSV, kernels.md) and the roofline figure."""
    from ngbench.report.kernels import cells_of, kernel_tables, write_kernel_reports

    cells = cells_of(kernel_cells(report))
    if report.out is None:
        return kernel_tables(cells)
    paths = write_kernel_reports(cells, report.out)
    figure = [p for p in paths if p.stem == "roofline" and p.suffix in (".png", ".pdf")]
    parts = [Figure("roofline", "Roofline: achieved FLOP/s against arithmetic intensity, per operator", figure)]
    return (parts if figure else []) + kernel_tables(cells) + [Files([p for p in paths if p not in figure])]


# (heading, figures, tables): `figures` are the builders of the section's figures (and of whatever else writes
# files of its own), `tables` builds its tables, or None. On the pages a section's figures come before its tables.
SECTIONS = [
    ("Cells", (), cells.section),
    ("Figures", figures.FIGURES, None),
    ("Table IV beside the paper", (), paper.section),
    ("Breakdowns", (), breakdowns.section),
    ("Paper tables", (), tables.section),
    ("Deployment flows", flows.FIGURES, flows.section),
    ("Inside the operators", (kernels_section,), None),
    ("What each run did", (), steps.section),
]
JOBS = [(section, builder) for section, (_, builders, _) in enumerate(SECTIONS) for builder in builders]
# The order the jobs are taken in: the longest first (Figures 6 and 5 have a row per setting and a bar per cell;
# the kernels section reads operator rows), then page order, so that the two processes end close together.
LONGEST = (figures.fig6, figures.fig5, kernels_section)
# What the jobs draw or read, worked out without matplotlib (Report.planned), in the order the jobs are taken: made
# by this process before the report goes to the drawing process, which only draws (Drawing.send). Every job's.
PLANS = (figures.fig6_bars, figures.fig5_bars, kernel_cells, figures.fig9_bars, *flows.PLANS)
ORDER = sorted(range(len(JOBS)), key=lambda job: (LONGEST.index(JOBS[job][1]) if JOBS[job][1] in LONGEST
                                                  else len(LONGEST), job))


JOIN_LEFT = 3


class Drawing:
    """The figures of a report (JOBS), drawn by a process forked when this is made, before the sweep is read
    (ngbench.report.elsewhere): it imports and warms up matplotlib meanwhile, then draws job after job once it
    has the report's plans (send). This process joins in when its tables are done (figures): it draws the jobs
    the other has not taken, so that neither waits long for the other. It is made before this process imports
    pandas (at its start, the other CPU would be idle otherwise); the drawing process never imports it (it gets
    no frame: Report.plans_only)."""

    def __init__(self):
        from ngbench.report.elsewhere import Elsewhere, Tickets

        self.tickets = Tickets()
        self.elsewhere = Elsewhere(self.draw_there, prepare=figures.warm_up)

    def draw_there(self, report: Report, more) -> dict[int, list]:
        """draw() in the drawing process, where the plans sent after the report come through `more`."""
        report.arriving = more
        return self.draw(report)

    def draw(self, report: Report, joining: bool = False) -> dict[int, list]:
        """{job: its parts} of the jobs this process takes, in ORDER, until none is left. `joining`: this
        process has yet to import matplotlib, which costs more than a short figure, so it joins in only while
        at least JOIN_LEFT jobs are left untaken (with fewer, the other process is done sooner alone)."""
        drawn = {}
        while not (joining and not drawn and len(ORDER) - self.tickets.taken() < JOIN_LEFT):
            ticket = self.tickets.take()
            if ticket >= len(ORDER):
                break
            if not drawn and report.ops is not None:   # drawing here: DuckDB's memory makes room for matplotlib
                report.ops.close()
            job = ORDER[ticket]
            drawn[job] = JOBS[job][1](report)
        return drawn

    def send(self, report: Report) -> None:
        """The jobs' plans (PLANS), made here from the shares of the report's view (Report.for_drawing: the
        CIs and the other views are made later), to the drawing process, with nothing else of the report: the
        first job's at once, so that it is drawn while the other plans are made, then the others."""
        planning = report.for_drawing()
        first, *others = PLANS
        first(planning)
        self.elsewhere.send(planning.plans_only())
        for plan in others:
            plan(planning)
        self.elsewhere.send(dict(planning.plans))

    def figures(self, report: Report) -> list[list]:
        """Per section, its figure builders' parts: the jobs left drawn here, then those drawn there."""
        drawn = self.draw(report, joining=self.elsewhere.process is not None)
        drawn.update(self.elsewhere.result())
        return _by_section(drawn)

    def close(self) -> None:
        self.elsewhere.close()


def start_drawing() -> Drawing:
    return Drawing()


def _by_section(drawn: dict[int, list]) -> list[list]:
    parts = [[] for _ in SECTIONS]
    for job, (section, _) in enumerate(JOBS):
        parts[section] += drawn[job]
    return parts


def build(report: Report, drawing: Drawing | None = None, meanwhile=None) -> list[tuple[str, list]]:
    """(heading, parts) of every section, in page order. With `drawing` (start_drawing()), the figures are
    drawn there while this process makes the tables and runs `meanwhile(tables)` (their files written, their
    HTML made), then joins in; without, the figures are drawn here."""
    if drawing is not None:
        drawing.send(report)
        if report.ops is not None:   # a CPU draws: DuckDB's queries for the tables keep to the other
            report.ops.limit_threads(1)
    made = [builder(report) if builder else [] for _, _, builder in SECTIONS]
    if meanwhile is not None:
        meanwhile([part for parts in made for part in parts])
    if drawing is not None:
        drawn = drawing.figures(report)
    else:
        drawn = _by_section({job: builder(report) for job, (_, builder) in enumerate(JOBS)})
    return [(heading, figure_parts + table_parts)
            for (heading, _, _), figure_parts, table_parts in zip(SECTIONS, drawn, made)]
