"""ngbench's Table IV beside the paper's published one (paper_table4.csv), view by view: the dominant
non-GEMM group and its share, and whether they agree (same group; share within ±5 points)."""

from __future__ import annotations

from pathlib import Path

from ngbench.report import format as fmt
from ngbench.report.parts import Report, Table
from ngbench.report.tables import TABLE4_KEYS, dominant_non_gemm

PUBLISHED_TABLE4 = Path(__file__).with_name("paper_table4.csv")
COMPARED_VIEWS = ("wall", "device", "host", "paper")
AGREE_POINTS = 5.0


def published_table4():
    """The paper's Table IV: model, paper_model, paper_group, op_group, latency_pct, source."""
    import pandas as pd

    return pd.read_csv(PUBLISHED_TABLE4, comment="#")


def agreement(group: str, pct: float, paper_group: str, paper_pct: float) -> str:
    """yes (same dominant group, share within ±5 points), group (same group only) or no."""
    if group != paper_group:
        return "no"
    return "yes" if abs(pct - paper_pct) <= AGREE_POINTS else "group"


def comparison(report: Report):
    """One row per ngbench Table IV row of a model the paper has: the paper's group and share, then per view
    ngbench's group, share, CI and agreement."""
    published = published_table4().rename(columns={"paper_model": "published_model", "paper_group": "published_label",
                                                   "op_group": "published_group", "latency_pct": "published_pct"})
    every = report.all_views()
    dominant = dominant_non_gemm(every[every["view"].isin(COMPARED_VIEWS)], by=("view",)).drop(columns=["batch_sizes"])
    frame = None
    for view in COMPARED_VIEWS:
        ours = dominant[dominant["view"] == view].drop(columns=["view"])
        ours = ours.rename(columns={"top_non_gemm_group": f"{view}_group", "latency_pct": f"{view}_pct",
                                    "pct_ci95_lo": f"{view}_ci95_lo", "pct_ci95_hi": f"{view}_ci95_hi"})
        frame = ours if frame is None else frame.merge(ours, on=TABLE4_KEYS, how="outer")
    columns = ["model", "published_model", "published_label", "published_group", "published_pct"]
    frame = published[columns].merge(frame, on="model")
    for view in COMPARED_VIEWS:
        frame[f"{view}_agree"] = [agreement(g, p, pg, pp) if isinstance(g, str) else "no" for g, p, pg, pp in
                                  zip(frame[f"{view}_group"], frame[f"{view}_pct"], frame["published_group"],
                                      frame["published_pct"])]
    return frame.sort_values(TABLE4_KEYS, kind="stable").reset_index(drop=True)


def comparison_table(report: Report) -> Table | None:
    frame = comparison(report)
    if frame.empty:
        return None
    display = frame[TABLE4_KEYS].copy()
    display["published"] = [f"{g} {fmt.number(p, 1)}" for g, p in zip(frame["published_group"], frame["published_pct"])]
    for view in COMPARED_VIEWS:
        display[f"{view} view"] = [f"{g} {fmt.share(p, lo, hi)}" if isinstance(g, str) else fmt.MISSING
                                   for g, p, lo, hi in zip(frame[f"{view}_group"], frame[f"{view}_pct"],
                                                           frame[f"{view}_ci95_lo"], frame[f"{view}_ci95_hi"])]
        display[f"{view} agrees"] = frame[f"{view}_agree"]
    counts = "; ".join(f"{view} view {int((frame[f'{view}_agree'] != 'no').sum())} "
                       f"({int((frame[f'{view}_agree'] == 'yes').sum())} also within ±{AGREE_POINTS:g} points)"
                       for view in COMPARED_VIEWS)
    note = (f"published: the paper's Table IV (A100, PyTorch, GPU, mean over batch sizes). ngbench: the mean over "
            f"this sweep's batch sizes, ± the half-width of the mean's 95% CI. Of {len(frame)} rows, the dominant "
            f"group is the paper's in: {counts}. agrees: yes = same group and share within ±{AGREE_POINTS:g} points, "
            "group = same group only, no = another group.")
    return Table("table4_vs_paper", "Table IV beside the paper's", frame, display, note)


def section(report: Report) -> list:
    table = comparison_table(report)
    return [table] if table is not None else []
