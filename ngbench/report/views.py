"""The report's views of where the time goes, and each group's share with its CI across profiled iterations.

- wall: the rebuilt, un-profiled timeline (wall_us; default)
- wall_profiled: the same attribution on the raw profiled timeline (wall_profiled_us)
- device: the operators' kernel time (device_us)
- host: the operators' host calls (host_us)
- paper: the seed artifact's accounting (ngbench.summary.paper_us): per top-level operator host + device time,
  host alone where the device is the host, no Idle and no unattributed kernels
"""

from __future__ import annotations

from ngbench.errors import UserError

VIEW_COLUMNS = {"wall": "wall_us", "wall_profiled": "wall_profiled_us", "device": "device_us", "host": "host_us",
                "paper": "paper_us"}
VIEWS = tuple(VIEW_COLUMNS)
VIEW_TITLES = {"wall": "wall (rebuilt, un-profiled)", "wall_profiled": "wall (profiled)",
               "device": "device (kernel time)", "host": "host (operator calls)",
               "paper": "paper (host + device per operator, no idle)"}
BREAKDOWN_COLUMNS = ["run_id", "op_group", "ms", "pct", "pct_ci95_lo", "pct_ci95_hi", "view"]
SHARE_COLUMNS = ["run_id", "op_group", "ms", "pct", "view"]
SPREAD_COLUMNS = ["mean", "std", "n"]   # of the per-iteration shares, for the CI


def check_view(view: str) -> str:
    if view not in VIEW_COLUMNS:
        raise UserError(f"--view {view!r} is not valid; valid: {', '.join(VIEWS)}")
    return view


def device_is_host(device: str) -> bool:
    """Whether a cell's `device` is the host CPU, so that its device_us repeats its host_us."""
    return not str(device).startswith("cuda")


def with_paper_us(rows, cells):
    """`rows` (op rows, or query.GROUP_SUMS_SQL's sums: run_id, op, host_us, device_us) with paper_us, by
    ngbench.summary.paper_us, the run's own definition; `cells` gives each run_id's device."""
    import pandas as pd

    from ngbench.summary import paper_us

    on_host = rows["run_id"].map(dict(zip(cells["run_id"], cells["device"].map(device_is_host))))
    parts = [paper_us(rows[on_host == flag], device_is_host=bool(flag)) for flag in (True, False)]
    return rows.assign(paper_us=pd.concat(parts).reindex(rows.index).fillna(0.0))


def breakdown(sums, view: str):
    """Per cell and group, in one view: ms per inference, % of the cell's total, and the 95% t-interval of the
    per-iteration shares (as ngbench.summary.group_totals gives them in summary.json). Groups with no time in
    the view (Idle outside the wall views) are left out."""
    table = all_breakdowns(sums, (check_view(view),))
    return table.reset_index(drop=True)


def all_breakdowns(sums, views: tuple[str, ...] = VIEWS):
    """breakdown() of every view in `views`, one after the other (one grouping pass over `sums`)."""
    return with_cis(all_shares(sums, views))


def all_shares(sums, views: tuple[str, ...] = VIEWS):
    """all_breakdowns without the CIs: ms and pct per cell, group and view (BREAKDOWN_COLUMNS but the CI's,
    with SPREAD_COLUMNS, from which with_cis makes them). What the figures read, made first so that the drawing
    process has its plans sooner."""
    import numpy as np
    import pandas as pd

    if sums is None or sums.empty:
        return pd.DataFrame(columns=[*SHARE_COLUMNS, *SPREAD_COLUMNS])
    columns = [VIEW_COLUMNS[v] for v in views]
    # one row per (run, iteration), one column per (view, group); a group missing from an iteration counts 0
    per_group = sums.groupby(["run_id", "iteration", "op_group"], sort=True)[columns].sum().astype(float)
    wide = per_group.unstack("op_group", fill_value=0.0)
    runs = wide.index.get_level_values("run_id")
    iterations = pd.Series(runs).value_counts()
    frames = []
    for view, column in zip(views, columns):
        block = wide[column]
        totals = block.to_numpy().sum(axis=1, keepdims=True)
        shares = pd.DataFrame(100.0 * block.to_numpy() / np.where(totals != 0, totals, np.nan), index=runs,
                              columns=block.columns)
        grouped = shares.groupby(level=0, sort=True)
        table = pd.DataFrame({"us": block.groupby(level="run_id", sort=True).sum().stack(),
                              "mean": grouped.mean().stack(), "std": grouped.std(ddof=1).stack(),
                              "n": grouped.count().stack()}).reset_index()
        table = table[table["us"] != 0]
        table["ms"] = table["us"] / table["run_id"].map(iterations).to_numpy() / 1000.0
        table["pct"] = 100.0 * table["us"] / table.groupby("run_id")["us"].transform("sum")
        frames.append(table.assign(view=view)[[*SHARE_COLUMNS, *SPREAD_COLUMNS]])
    return pd.concat(frames, ignore_index=True)


def with_cis(shares):
    """all_shares' table with each share's 95% t-interval across profiled iterations (BREAKDOWN_COLUMNS)."""
    import numpy as np

    from ngbench.summary import t_half_width

    table = shares.copy()
    half = t_half_width(table["std"].to_numpy(), table["n"].fillna(0).to_numpy())
    several = table["n"].fillna(0).to_numpy() > 0
    table["pct_ci95_lo"] = np.where(several, table["mean"] - half, table["pct"])
    table["pct_ci95_hi"] = np.where(several, table["mean"] + half, table["pct"])
    return table[BREAKDOWN_COLUMNS].reset_index(drop=True)


def with_keys(table, cells, keys: list[str]):
    """`table` (with run_id) with the cells' `keys` columns in front."""
    merged = cells[["run_id", *keys]].merge(table, on="run_id", how="inner")
    return merged[["run_id", *keys, *[c for c in table.columns if c != "run_id"]]]
