"""The report's figures, checked by what they plot: each bar's groups and heights, read back from the matplotlib
figure, against hand-made tables and against the cells' own ops.parquet (not against the PNG's size)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ngbench.report import figures

SWEEP = Path(__file__).parent / "fixtures" / "sweep-cpu"


@pytest.fixture
def drawn(monkeypatch):
    """The figures the report draws, by name, kept instead of saved."""
    kept: dict = {}

    def keep(fig, out_dir, name):
        kept[name] = fig
        return [Path(out_dir) / f"{name}.png"]

    monkeypatch.setattr(figures, "save_figure", keep)
    return kept


def plotted(fig, colours: dict | None = None) -> dict[str, list[dict[str, float]]]:
    """Per row title, the stacked bars left to right, each {group: height}, the group told by its colour (the
    palette's, or `colours`); checks that each bar's segments stack without gaps from 0."""
    from matplotlib.patches import PathPatch

    group_of = {tuple(np.round(colour, 4)): group for group, colour in (colours or figures.palette()).items()}
    rows = {}
    for ax in fig.axes:
        segments = []   # (x, bottom, top, group)
        for patch in (c for c in ax.get_children() if isinstance(c, PathPatch)):
            group = group_of[tuple(np.round(patch.get_facecolor()[:3], 4))]
            corners = patch.get_path().vertices.reshape(-1, 5, 2)
            segments += [(float(r[:, 0].mean()), float(r[0, 1]), float(r[2, 1]), group) for r in corners]
        bars: dict[float, list] = {}
        for x, bottom, top, group in segments:
            bars.setdefault(round(x, 6), []).append((bottom, top, group))
        stacks = []
        for x in sorted(bars):
            parts = sorted(bars[x])
            assert parts[0][0] == 0.0 and all(a[1] == pytest.approx(b[0]) for a, b in zip(parts, parts[1:]))
            stacks.append({group: top - bottom for bottom, top, group in parts})
        rows[ax.get_title(loc="left")] = stacks
    return rows


def legend(fig) -> list[str]:
    return [text.get_text() for text in fig.legends[0].get_texts()]


def _cell(run_id, flow, batch_size, shares):
    return [{"run_id": run_id, "model": "gpt2", "variant": "tiny", "device": "cpu", "flow": flow,
             "precision": "fp32", "quant": "", "batch_size": batch_size, "op_group": group, "pct": pct}
            for group, pct in shares.items()]


def test_fig6_stacks_each_cells_groups_in_its_row_and_slot(tmp_path, drawn):
    table = pd.DataFrame(_cell("r1", "torch", 1, {"GEMM": 60.0, "Logit": 10.0, "Idle": 30.0})
                         + _cell("r2", "torch", 8, {"Logit": 20.0, "GEMM": 80.0})
                         + _cell("r3", "ort", 1, {"Normalization": 50.0, "GEMM": 50.0}))
    figures.group_breakdown(table, tmp_path)
    fig = drawn["fig6"]
    assert plotted(fig) == {
        "ort | cpu | fp32 (tiny)": [{"GEMM": 50.0, "Normalization": 50.0}],
        "torch | cpu | fp32 (tiny)": [{"GEMM": 60.0, "Logit": 10.0, "Idle": 30.0}, {"GEMM": 80.0, "Logit": 20.0}]}
    assert legend(fig) == ["GEMM", "Normalization", "Logit", "Idle"]     # the paper's order, Idle last
    assert fig._suptitle.get_text() == "bars: batch size 1, 8"


def test_fig6_bottom_segment_is_gemm():
    """GEMM sits at the bottom of every bar, whatever the table's order."""
    table = pd.DataFrame(_cell("r1", "torch", 1, {"Idle": 30.0, "Logit": 10.0, "GEMM": 60.0}))
    fig, _ = figures.rows_of_bars(table, figures.ROW_KEYS, figures.MODEL_KEYS, "batch_size", "pct",
                                  figures.palette(), "%")
    (stack,) = plotted(fig)["torch | cpu | fp32 (tiny)"]
    assert list(stack) == ["GEMM", "Logit", "Idle"]


def _expected_shares(column: str) -> dict[str, list[dict[str, float]]]:
    """Per figure row, per ok cell left to right (model, then batch size): each group's % of the cell's total in
    `column`, summed by pandas straight from the cell's ops.parquet; groups with no time left out."""
    from conftest import read_summary

    from ngbench.report.figures import variant_text

    cells = [(read_summary(d), d) for d in sorted(p.parent for p in SWEEP.glob("*/summary.json"))]
    cells = sorted(((s, d) for s, d in cells if s["status"] == "ok"),
                   key=lambda c: (c[0]["model"], c[0]["variant"], c[0]["batch_size"]))
    rows: dict[str, list] = {}
    for summary, cell_dir in cells:
        sums = pd.read_parquet(cell_dir / "ops.parquet").groupby("op_group")[column].sum()
        sums = sums[sums != 0]
        title = f"{summary['flow']} | {summary['device']} | {summary['precision']}{variant_text(summary['variant'])}"
        rows.setdefault(title, []).append((100.0 * sums / sums.sum()).to_dict())
    return rows


@pytest.mark.parametrize("view,column", [("wall", "wall_us"), ("device", "device_us")])
def test_report_fig6_plots_each_cells_shares_in_the_view(view, column, tmp_path, drawn):
    from ngbench.report.__main__ import open_report

    report = open_report(SWEEP, view, out=tmp_path)
    figures.section(report)
    bars, expected = plotted(drawn["fig6"]), _expected_shares(column)
    assert sorted(bars) == sorted(expected) == ["ort | cpu | fp32 (tiny)", "torch | cpu | fp32 (tiny)"]
    for title, cells in expected.items():
        assert len(bars[title]) == len(cells) == 2
        for stack, shares in zip(bars[title], cells):
            assert set(stack) == set(shares)
            assert [stack[g] for g in shares] == pytest.approx(list(shares.values()), rel=1e-9)
    assert ("Idle" in legend(drawn["fig6"])) == (view == "wall")       # no device time is idle


def test_fig5_plots_each_cells_energy(tmp_path, drawn):
    def cell(model, batch_size, joules):
        return {"model": model, "variant": "", "device": "cuda:0", "flow": "torch", "precision": "fp16", "quant": "",
                "batch_size": batch_size, "energy_j": joules, "run_id": f"{model}{batch_size}"}

    cells = pd.DataFrame([cell("gpt2", 1, 0.5), cell("gpt2", 8, 2.25), cell("vit_b16", 1, None)])  # None: no bar
    figures.energy(cells, tmp_path)
    assert plotted(drawn["fig5"], {"Energy": (0.2, 0.45, 0.7)}) == {
        "torch | cuda:0 | fp16": [{"Energy": 0.5}, {"Energy": 2.25}]}


def test_figures_drawn_from_the_plans_sent_are_those_drawn_from_the_data(tmp_path, drawn):
    """The report process works out what each figure draws (sections.PLANS) before the report goes to the
    drawing process, which then only draws: the same bars as a figure worked out from the breakdown itself, and
    the plan sent is what is drawn (a changed title shows)."""
    from ngbench.report import flows
    from ngbench.report.__main__ import open_report
    from ngbench.report.sections import PLANS, kernels_section

    report = open_report(SWEEP, "wall", out=tmp_path)
    figures.fig6(report)
    flows.FIGURES[1](report)   # Figure 7: torch beside ort, the fixture's two flows
    expected = {name: plotted(fig) for name, fig in drawn.items()}
    sent = open_report(SWEEP, "wall", out=tmp_path).for_drawing()
    for plan in PLANS:
        plan(sent)
    # every job's plan: no energy (Figure 5), nothing quantized (Figure 9), no fusing flow (Figure 8) are planned
    # as no bars; the kernels section's is its cells' (run directory, summary)
    assert sorted(sent.plans) == ["fig5", "fig6", "fig7_torch_vs_ort", "fig8_fusion_flows", "fig9", "kernels"]
    assert sent.plans["fig5"] is None and sent.plans["fig9"] is None and sent.plans["fig8_fusion_flows"] is None
    assert [(path.name, summary["run_id"]) for path, summary in sent.plans["kernels"]] == [
        (d, sent.sweep.summaries[d]["run_id"]) for d in sent.cells["dir"]]
    sent.plans["fig6"].rows[0].title = "planned"
    drawn.clear()
    sent = sent.plans_only()   # what the drawing process gets: no frame, and it needs none
    assert sent.cells is None and sent.sums is None and sent.sweep.summaries == {}
    figures.fig6(sent)
    flows.FIGURES[1](sent)
    assert figures.fig5(sent) == [] and figures.fig9(sent) == [] and flows.FIGURES[0](sent) == []
    names = [getattr(part, "name", None) for part in kernels_section(report)]
    assert "roofline" in names and [getattr(part, "name", None) for part in kernels_section(sent)] == names
    assert plotted(drawn["fig7_torch_vs_ort"]) == expected["fig7_torch_vs_ort"]
    assert plotted(drawn["fig6"]) == {("planned" if title == min(expected["fig6"]) else title): bars
                                      for title, bars in expected["fig6"].items()}
