"""report/index.html: one self-contained page per sweep (figures embedded as base64 PNG, tables sortable by a
click on their header, no file or script fetched from elsewhere), and the markdown page of the same tables."""

from __future__ import annotations

import base64
import html

from ngbench.report import format as fmt
from ngbench.report.parts import Figure, Report, Table
from ngbench.report.views import VIEW_TITLES

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.4em 0 1em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; cursor: pointer; position: sticky; top: 0; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
tr:nth-child(even) td { background: #fafafa; }
.note { color: #555; font-size: 0.85em; max-width: 70em; }
.warning { background: #fff3cd; border: 1px solid #e0c36c; padding: 0.5em 1em; }
.ok { background: #e8f5e9; border: 1px solid #9ccc9c; padding: 0.5em 1em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
nav a { margin-right: 1em; }
.scroll { max-height: 70vh; max-width: 100%; overflow: auto; border: 1px solid #ddd; margin-bottom: 1em; display: inline-block; }
.scroll table { margin: 0; }
td { white-space: nowrap; } td:last-child { white-space: normal; min-width: 24em; }
"""
SCROLL_ROWS = 25   # a longer table scrolls in its own box, so that the sections below stay in reach
# Click a header to sort by that column (numbers as numbers, the rest as text); click again to reverse.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var ascending = !th.classList.contains("sorted-asc");
      table.querySelectorAll("thead th").forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(ascending ? "sorted-asc" : "sorted-desc");
      rows.sort(function (a, b) {
        var x = a.cells[column].textContent.trim(), y = b.cells[column].textContent.trim();
        var p = parseFloat(x), q = parseFloat(y);
        var order = (!isNaN(p) && !isNaN(q)) ? p - q : x.localeCompare(y, undefined, {numeric: true});
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def headline(report: Report) -> tuple[str, bool]:
    """The page's first line (cells reported, failed or unreadable; the view) and whether all cells are in."""
    ok, failed = len(report.cells), len(report.sweep.failed)
    text = (f"{ok} of {ok + failed} cells reported; {failed} failed or have missing or unreadable files. "
            f"View: {VIEW_TITLES[report.view]}.{fidelity(report.cells)}")
    return text, failed == 0


def fidelity(cells) -> str:
    """How many cells' rebuilt iteration is within ±5% (±10%) of their clean latency, issue #9's check: the
    trust a reader can put in the wall view; '' where no cell has both (traces analysed without a clean run)."""
    if "reconstructed_over_clean" not in cells:
        return ""
    ratios = cells["reconstructed_over_clean"].dropna()
    if ratios.empty:
        return ""
    from ngbench.summary import RATIO_TOLERANCE  # the tolerance a run warns beyond

    def within(values, tolerance: float) -> int:
        return int(((values - 1.0).abs() - 1e-9 <= tolerance).sum())    # 0.95 and 1.05 themselves count as within

    text = (f" The rebuilt timeline is within ±{RATIO_TOLERANCE:.0%} of the clean latency on "
            f"{within(ratios, RATIO_TOLERANCE)} of {len(ratios)} cells (within ±{2 * RATIO_TOLERANCE:.0%} on "
            f"{within(ratios, 2 * RATIO_TOLERANCE)}; median {ratios.median():.3f}).")
    halves = cells["clean_halves"].dropna() if "clean_halves" in cells else None
    if halves is not None and not halves.empty:
        text += (f" The host's own noise, the floor under that check: a cell's clean latency over its even blocks "
                 f"is within ±{RATIO_TOLERANCE:.0%} of that over its odd ones on {within(halves, RATIO_TOLERANCE)} "
                 f"of {len(halves)} cells (docs/measurement.md).")
    return text


def _anchor(text: str) -> str:
    """A section's id, apart from the tables' ids (which are their CSV names)."""
    return "section-" + "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def prerender(parts: list) -> None:
    """Make the HTML of the tables among `parts` that go on the page now (html_page uses it), while the figures
    are still being drawn."""
    for part in parts:
        if isinstance(part, Table) and "html" in part.pages and part.display is not None and not part.html:
            part.html = _table_html(part)


def _table_html(table: Table) -> str:
    if table.html:
        return table.html
    body = _html_rows(table.display, table.name)
    note = f'<p class="note">{html.escape(table.note)}</p>\n' if table.note else ""
    if len(table.display) > SCROLL_ROWS:
        body = f'<div class="scroll">{body}</div>'
    return f"<h3>{html.escape(table.title)}</h3>\n{note}{body}\n"


def _html_rows(frame, table_id: str) -> str:
    """`frame` (text and integer columns: a Table's display) as an HTML table, cells escaped, missing ones shown
    as fmt.MISSING. Written here rather than by DataFrame.to_html, which formats and escapes cell by cell in
    Python at about eight times the cost (0.3 s of a 10^6-row report's main process)."""
    def escaped(k: int) -> list[str]:
        values = frame.iloc[:, k]
        return [fmt.MISSING if gone else html.escape(str(value), quote=False)
                for value, gone in zip(values.tolist(), values.isna().tolist())]

    columns = [escaped(k) for k in range(frame.shape[1])]
    head = "".join(f"<th>{html.escape(str(c), quote=False)}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>\n" for row in zip(*columns))
    return (f'<table class="sortable" id="{html.escape(table_id)}">\n<thead>\n<tr>{head}</tr>\n</thead>\n'
            f"<tbody>\n{rows}</tbody>\n</table>")


def _figure_html(figure: Figure) -> str:
    png = next(p for p in figure.paths if p.suffix == ".png")
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    links = " ".join(f'<a href="{p.name}">{p.suffix[1:].upper()}</a>' for p in figure.paths)
    return (f'<figure id="{figure.name}"><img alt="{html.escape(figure.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(figure.title)} ({links})</figcaption></figure>\n")


def html_page(report: Report, sections: list[tuple[str, list]], name: str) -> str:
    text, complete = headline(report)
    shown = [(heading, [p for p in parts if isinstance(p, Figure) or (isinstance(p, Table) and "html" in p.pages
                                                                       and p.display is not None)])
             for heading, parts in sections]
    shown = [(heading, parts) for heading, parts in shown if parts]
    out = [f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
           f"<title>ngbench report: {html.escape(name)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
           f"<h1>ngbench report: {html.escape(name)}</h1>\n"
           f'<p class="{"ok" if complete else "warning"}" id="headline">{html.escape(text)}</p>\n<nav>'
           + "".join(f'<a href="#{_anchor(h)}">{html.escape(h)}</a>' for h, _ in shown) + "</nav>\n"]
    for heading, parts in shown:
        out.append(f'<h2 id="{_anchor(heading)}">{html.escape(heading)}</h2>\n')
        out += [_figure_html(p) if isinstance(p, Figure) else _table_html(p) for p in parts]
    out.append(f"<script>{SCRIPT}</script>\n</body>\n</html>\n")
    return "".join(out)


def markdown_table(frame) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def markdown_page(report: Report, sections: list[tuple[str, list]], name: str) -> str:
    """The tables that go on the markdown page, under their sections' headings; no figures, nothing that
    changes from one run of the report to the next."""
    text, _ = headline(report)
    out = [f"# ngbench report: {name}\n\n{text}\n"]
    for heading, parts in sections:
        tables = [p for p in parts if isinstance(p, Table) and "markdown" in p.pages and p.display is not None]
        if not tables:
            continue
        out.append(f"\n## {heading}\n")
        for table in tables:
            if table.title != heading:
                out.append(f"\n### {table.title}\n")
            out.append(f"\n{table.note}\n" if table.note else "")
            out.append("\n" + markdown_table(table.display))
    return "".join(out)
