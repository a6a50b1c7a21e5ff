"""What a report is made of: the loaded sweep and its aggregates (`Report`), and the tables and figures the
section modules return (`Table`, `Figure`), which the CSV, HTML and markdown writers lay out."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ngbench.report.load import KEY_COLUMNS, Sweep
from ngbench.report.views import SHARE_COLUMNS, all_shares, check_view, with_cis, with_keys

PAGES = ("html", "markdown")


@dataclass
class Table:
    name: str                    # CSV file stem and HTML table id
    title: str
    frame: object                # pandas.DataFrame of values, written as <name>.csv when `csv`
    display: object = None       # pandas.DataFrame of formatted text for the pages (None: not on a page)
    note: str = ""
    csv: bool = True
    pages: tuple[str, ...] = PAGES
    html: str = ""               # its HTML, once made (ngbench.report.page.prerender)


@dataclass
class Figure:
    name: str
    title: str
    paths: list[Path]            # the PNG first (embedded in the HTML page), then the PDF


@dataclass
class Files:
    """Files a section wrote itself (listed with the report's outputs, not laid out on a page)."""

    paths: list[Path]


@dataclass
class Report:
    sweep: Sweep
    view: str
    ops: object                  # ngbench.report.query.Ops over the ok cells' ops.parquet
    sums: object                 # per run, iteration, group: summed times (views.with_paper_us)
    out: Path | None = None      # where figures go; None when only text is written
    pages: tuple[str, ...] = ("csv", *PAGES)   # what is being written: a section skips tables nothing shows
    _shares: object = None       # views.all_shares of every view
    _all_views: object = None
    _by_view: dict = field(default_factory=dict)
    plans: dict = field(default_factory=dict)   # what each figure draws, worked out (planned)
    arriving: object = None      # where plans not made here come from, more at each call (the drawing process's)

    @property
    def cells(self):
        return self.sweep.cells

    def breakdown(self, view: str | None = None):
        """views.breakdown of every ok cell in `view` (the report's view by default), with the cell key."""
        if self._all_views is None:
            self._all_views = with_keys(with_cis(self.shares()), self.cells, KEY_COLUMNS)
        view = check_view(view or self.view)
        if view not in self._by_view:
            self._by_view[view] = self._all_views[self._all_views["view"] == view].reset_index(drop=True)
        return self._by_view[view]

    def all_views(self):
        """Every view's breakdown, one after the other."""
        self.breakdown()
        return self._all_views

    def shares(self):
        """views.all_shares of every view: the breakdown less its CIs."""
        if self._shares is None:
            self._shares = all_shares(self.sums)
        return self._shares

    def planned(self, name: str, make):
        """make()'s value, made once per report and kept under `name`: what a figure draws, worked out without
        matplotlib, so that this process can make it before the report goes to the drawing process
        (ngbench.report.sections.PLANS) and the drawing process only draws (it waits for a plan still on its
        way: `arriving`)."""
        while name not in self.plans and self.arriving is not None:
            self.plans.update(self.arriving())
        if name not in self.plans:
            self.plans[name] = make()
        return self.plans[name]

    def for_drawing(self) -> Report:
        """What the drawing process gets (ngbench.report.sections.build): this report without what a pipe
        cannot carry or the figures never read (the DuckDB connection, the group sums), whose breakdown is of
        the report's view alone and has no CI columns (figures draw no other view and no CI: the other views
        and the t-quantiles are made here while the figures are drawn there, and the drawing starts sooner)."""
        shares = all_shares(self.sums, (self.view,)) if self._shares is None else self.shares()
        breakdown = with_keys(shares[shares["view"] == self.view][SHARE_COLUMNS], self.cells, KEY_COLUMNS)
        return replace(self, ops=None, sums=None, _shares=None, _all_views=breakdown, _by_view={})

    def plans_only(self) -> Report:
        """This report less every frame and the summaries: what the drawing process gets once the figures'
        plans are made here (ngbench.report.sections.Drawing.send). It draws from the plans alone, so that it
        never imports pandas (it is forked before this process does): its memory and its start are spared."""
        sweep = replace(self.sweep, cells=None, failed=None, summaries={})
        return replace(self, sweep=sweep, ops=None, sums=None, _shares=None, _all_views=None, _by_view={})
