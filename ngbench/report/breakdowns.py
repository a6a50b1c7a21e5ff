"""Group breakdowns: the report's view for every cell (breakdown.csv, one table per model on the HTML page)
and every view side by side (breakdown_by_view.csv, one table per cell on the markdown page). Each page's
tables are made only when that page is written."""

from __future__ import annotations

from ngbench.report import format as fmt
from ngbench.report.load import KEY_COLUMNS
from ngbench.report.parts import Report, Table
from ngbench.report.views import VIEW_TITLES, VIEWS
from ngbench.schema import GROUPS


def _ordered_groups(groups) -> list[str]:
    present = set(groups)
    return [g for g in GROUPS if g in present] + sorted(present - set(GROUPS))


def per_model_tables(report: Report) -> list[Table]:
    """One table per model: a row per cell, a column per group (share ± CI in the report's view)."""
    import itertools

    import pandas as pd

    table = report.breakdown()
    keys = [k for k in KEY_COLUMNS if k not in ("model", "variant", "task")]
    # tokens, a column of its own where cells have them: cells of a sweep over model.seq_len differ in nothing else
    if fmt.has_tokens(report.cells):
        tokens = report.cells.set_index("run_id")["seq_len"].map(fmt.tokens)
        table = table.assign(tokens=table["run_id"].map(tokens))
        keys.insert(keys.index("batch_size") + 1, "tokens")
    text = table.assign(text=[fmt.share(p, lo, hi) for p, lo, hi in
                              zip(table["pct"], table["pct_ci95_lo"], table["pct_ci95_hi"])])
    # every model's cells at once, a column per group, sorted by model; each model's table keeps its groups
    wide = text.pivot(index=["model", "variant", *keys, "run_id"], columns="op_group", values="text")
    groups_of, values = list(wide.columns), wide.to_numpy(dtype=object)
    rows = enumerate(wide.index)
    tables = []
    for (model, variant), cells in itertools.groupby(rows, key=lambda row: row[1][:2]):
        cells = list(cells)
        shown = values[[k for k, _ in cells]]
        present = {g for g, any_value in zip(groups_of, pd.notna(shown).any(axis=0)) if any_value}
        groups = _ordered_groups(present)
        columns = [groups_of.index(g) for g in groups]
        frame = pd.DataFrame([[*index[2:-1], *(fmt.MISSING if pd.isna(v) else v for v in line[columns])]
                              for (_, index), line in zip(cells, shown)],
                             columns=[*["batch" if k == "batch_size" else k for k in keys], *groups])
        suffix = f" ({variant})" if variant not in ("", "full") else ""
        tables.append(Table(f"model-{model}-{variant}", f"{model}{suffix}: % of latency, {VIEW_TITLES[report.view]}",
                            frame, frame, csv=False, pages=("html",)))
    return tables


def per_cell_tables(report: Report, all_views) -> list[Table]:
    """One table per cell: a row per group, ms in the wall view and the share ± CI in every view."""
    text = all_views.assign(text=[fmt.share(p, lo, hi) for p, lo, hi in
                                  zip(all_views["pct"], all_views["pct_ci95_lo"], all_views["pct_ci95_hi"])])
    wide = text.set_index(["run_id", "op_group", "view"])["text"].unstack("view")
    wide = wide.reindex(columns=list(VIEWS)).fillna(fmt.MISSING)
    wide.columns = [f"{view} %" for view in wide.columns]
    wall_ms = text[text["view"] == "wall"].set_index(["run_id", "op_group"])["ms"]
    wide.insert(0, "wall ms", wall_ms.reindex(wide.index).map(lambda v: fmt.number(v, 3)))
    by_run = dict(tuple(wide.reset_index().groupby("run_id", sort=False)))
    tables = []
    for k, cell in enumerate(report.cells.to_dict("records")):
        rows = by_run[cell["run_id"]].drop(columns="run_id").rename(columns={"op_group": "group"}).set_index("group")
        frame = rows.loc[_ordered_groups(rows.index)].reset_index()
        tables.append(Table(f"cell-{k}", fmt.cell_label(cell), frame, frame, csv=False, pages=("markdown",)))
    return tables


def section(report: Report) -> list:
    all_views = report.all_views()
    parts = [Table("breakdown", f"Breakdown ({VIEW_TITLES[report.view]})", report.breakdown(), pages=()),
             Table("breakdown_by_view", "Breakdown in every view", all_views, pages=())]
    if "html" in report.pages:
        parts += per_model_tables(report)
    if "markdown" in report.pages:
        parts += per_cell_tables(report, all_views)
    return parts
