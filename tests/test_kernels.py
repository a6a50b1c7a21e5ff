"""Kernel classes: the class table over real kernel names, and a hand-made trace in which a convolution's
device time is partly layout transforms and a memset (known answers in microseconds)."""

from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_attribution import iteration, kernel, launch, op

from ngbench.record import CellKey, kernels_table, owned_kernels, read_summary
from ngbench.schema import KERNEL_TABLE_COLUMNS, normalise_events
from ngbench.summary import kernel_class_totals
from ngbench.taxonomy import classify, classify_kernels, load_taxonomy, unmapped_kernels
from ngbench.trace import kineto
from ngbench.trace.kineto import events_from_trace
from ngbench.trace.reconstruct import Costs
from ngbench.trace.result import attribute_windows

REAL_KERNELS = yaml.safe_load((Path(__file__).parent / "fixtures" / "kernel_names.yaml").read_text())


@pytest.mark.parametrize("entry", REAL_KERNELS, ids=[e["name"][:60] for e in REAL_KERNELS])
def test_real_kernel_names_get_their_class(entry):
    rule = load_taxonomy().kernel_rule(entry["name"])
    assert rule is not None, f"no kernel rule maps {entry['name']!r} (source: {entry['source']})"
    assert rule.kind == entry["class"]


def test_fixture_covers_every_class_but_other_and_communication():
    classes = {e["class"] for e in REAL_KERNELS}
    table = yaml.safe_load((Path(__file__).parents[1] / "ngbench" / "taxonomy.yaml").read_text())
    assert set(table["kernel_classes"]) - classes <= {"other", "communication"}
    assert all(e["source"] for e in REAL_KERNELS)


def test_unmapped_kernels_are_other_and_listed():
    kernels = pd.DataFrame({"kernel": ["ampere_sgemm_128x64_tn", "my_custom_kernel", "my_custom_kernel"]})
    classified = classify_kernels(kernels)
    assert classified["kernel_class"].tolist() == ["gemm", "other", "other"]
    assert unmapped_kernels(classified) == {"my_custom_kernel": 2}


def test_every_group_own_class_is_a_kernel_class():
    table = yaml.safe_load((Path(__file__).parents[1] / "ngbench" / "taxonomy.yaml").read_text())
    for group, classes in table["group_kernel_classes"].items():
        assert set(classes) <= set(table["kernel_classes"]), group


NCHW_TO_NHWC = "void cudnn::engines_precompiled::nchwToNhwcKernel<__half, __half, float, false, true, (cudnnKernelDataType_t)0>"
NHWC_TO_NCHW = "void cudnn::engines_precompiled::nhwcToNchwKernel<__half, __half, float, true, false, (cudnnKernelDataType_t)0>"
CONV = "sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128x128x64_warpgroupsize1x1x1_g1"
GELU = "void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl(at::TensorIteratorBase&)>"


def memset(ts, dur, corr):
    return {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "ts": ts, "dur": dur, "pid": 0, "tid": 7,
            "args": {"correlation": corr, "stream": 7}}


def conv_iteration(k, t0):
    """aten::conv2d launches a memset, a layout transform in, the convolution and a layout transform out
    (3 + 4 + 10 + 2 = 19 µs, of which 9 µs are not convolution); then a GELU (1 µs)."""
    return [iteration(k, t0, 100), op("aten::conv2d", t0 + 10, 30), op("aten::convolution", t0 + 11, 28),
            launch(t0 + 12, 10 * k + 1), memset(t0 + 14, 3, 10 * k + 1),
            launch(t0 + 15, 10 * k + 2), kernel(NCHW_TO_NHWC, t0 + 18, 4, 10 * k + 2),
            launch(t0 + 20, 10 * k + 3), kernel(CONV, t0 + 23, 10, 10 * k + 3),
            launch(t0 + 25, 10 * k + 4), kernel(NHWC_TO_NCHW, t0 + 34, 2, 10 * k + 4),
            op("aten::gelu", t0 + 45, 10), launch(t0 + 46, 10 * k + 5), kernel(GELU, t0 + 48, 1, 10 * k + 5)]


@pytest.fixture
def conv_run():
    events = events_from_trace({"traceEvents": conv_iteration(0, 0) + conv_iteration(1, 200)})
    result = attribute_windows(kineto.windows(events), Costs({}))
    ops = classify(normalise_events(result.ops))
    return ops, owned_kernels(result.kernels, ops)


def test_layout_kernels_inside_a_conv_op_are_reported(conv_run):
    ops, kernels = conv_run
    assert kernels.groupby("kernel_class")["device_us"].sum().to_dict() == pytest.approx(
        {"memset": 6.0, "layout": 12.0, "conv": 20.0, "elementwise": 2.0})
    assert set(kernels.loc[kernels["kernel_class"] == "layout", "op"]) == {"aten::conv2d"}
    totals = kernel_class_totals(kernels, iterations=2)
    gemm = totals["groups"]["GEMM"]
    assert gemm["device_ms"] == pytest.approx(0.019)
    assert gemm["by_class_ms"] == pytest.approx({"conv": 0.010, "layout": 0.006, "memset": 0.003})
    assert gemm["other_class_ms"] == pytest.approx({"layout": 0.006, "memset": 0.003})
    assert gemm["other_class_pct"] == pytest.approx(100 * 9 / 19)
    assert totals["groups"]["Activation"]["other_class_ms"] == {}
    # the op view calls all 19 µs GEMM; by the kernels' own names 10 of the 20 µs are GEMM work
    assert ops.loc[ops["op_group"] == "GEMM", "device_us"].sum() == pytest.approx(38.0)
    assert totals["gemm_class_pct"] == pytest.approx(50.0)


def test_kernels_table_has_the_class_column_in_schema_order(conv_run):
    ops, kernels = conv_run
    key = CellKey("m", "tiny", "t", "torch", "cuda", "cuda:0", "fp16", "", 1)
    table = kernels_table(kernels, ops, key, "run0")
    assert list(table.columns) == KERNEL_TABLE_COLUMNS
    assert table["kernel_class"].notna().all() and len(table) == 10


@pytest.mark.slow
def test_cli_run_writes_kernel_classes_flops_and_the_report(tmp_path):
    """The real CLI on a tiny model (CPU): ops.parquet carries flops/bytes, kernels.parquet the class column,
    the summary the roofline against the measured host bandwidth and full coverage; the report draws it."""
    from conftest import TINY, read_summary, run_cli

    run_dir = tmp_path / "run"
    result = run_cli("model=gpt2", *TINY, f"hydra.run.dir={run_dir}")   # the suite's shared calibration cache
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    ops = pd.read_parquet(run_dir / "ops.parquet")
    linear = ops[ops["op"] == "aten::linear"]
    assert len(linear) and linear["flops"].notna().all() and (linear["bytes"] > 0).all()
    assert ops.loc[ops["op"] == "aten::view", "bytes"].eq(0).all()
    assert "kernel_class" in pd.read_parquet(run_dir / "kernels.parquet").columns
    assert summary["environment"]["bandwidth"]["gbs"] > 0
    assert summary["roofline"]["bandwidth_source"] == "measured"
    assert summary["roofline"]["groups"]["GEMM"]["achieved_tflops"] > 0
    assert summary["coverage"]["device_pct"] == pytest.approx(100.0)
    report = run_cli(str(run_dir), "--out", str(tmp_path / "report"), module="ngbench.report", timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "| GEMM |" in (tmp_path / "report" / "kernels.md").read_text()
    assert (tmp_path / "report" / "roofline.png").stat().st_size > 10_000
    assert set(pd.read_csv(tmp_path / "report" / "roofline.csv")["op_group"]) >= {"GEMM", "Normalization"}


@pytest.mark.slow
def test_report_says_how_much_of_gemm_is_layout(conv_run, tmp_path):
    """A GPU-like run directory from the hand-made conv trace, through the report's kernels module."""
    from ngbench.record import Summary, ops_table, write_run
    from ngbench.report.kernels import cells_of, write_kernel_reports
    from ngbench.summary import coverage, roofline_totals

    ops, kernels = conv_run
    ops = ops.assign(input_shapes=[[[8, 3, 32, 32], [16, 3, 3, 3]] if o == "aten::conv2d" else [] for o in ops["op"]],
                     input_dtypes=[["c10::Half", "c10::Half"] if o == "aten::conv2d" else [] for o in ops["op"]],
                     input_values=[["", "", "", "[1, 1]", "[1, 1]", "[1, 1]", "1"] if o == "aten::conv2d" else []
                                   for o in ops["op"]])
    key = CellKey("detr", "full", "detection", "torch", "cuda", "cuda:0", "fp16", "", 8)
    table = ops_table(ops, key, "r1")
    assert table.loc[table["op"] == "aten::conv2d", "flops"].notna().all()
    roofline = {"peak": "fp16_tensor", "peak_tflops": 989.4, "bandwidth_gbs": 3000.0, "bandwidth_source": "measured",
                "groups": roofline_totals(table, 2, 3000.0, 989.4)}
    summary = Summary(status="ok", key=key, run_id="r1", kernel_classes=kernel_class_totals(kernels, 2),
                      roofline=roofline, coverage=coverage(table), clean={"median_ms": 0.1}, gemm_pct_device=95.0,
                      environment={"gpu": "NVIDIA H100 80GB HBM3"})
    write_run(tmp_path / "cell", summary, table, kernels_table(kernels, ops, key, "r1"))
    cell = tmp_path / "cell"
    written = write_kernel_reports(cells_of([(cell, read_summary(cell))]), tmp_path / "report")
    text = (tmp_path / "report" / "kernels.md").read_text()
    assert "| GEMM | 0.019 | layout 0.006, memset 0.003 |" in text
    assert "50.0% by kernel name" in text and "device time that reached an operator: 100.0%" in text
    classes = pd.read_csv(tmp_path / "report" / "kernel_classes.csv")
    assert classes.query("op_group == 'GEMM' and kernel_class == 'layout'")["own_class"].tolist() == [False]
    assert tmp_path / "report" / "roofline.png" in written


H100_RUNS = Path(__file__).parents[1] / "docs" / "results" / "fidelity-h100"


def test_every_kernel_of_the_committed_h100_runs_is_mapped():
    frames = [pd.read_parquet(p, columns=["kernel"]) for p in sorted(H100_RUNS.rglob("kernels.parquet"))]
    assert len(frames) >= 24
    assert unmapped_kernels(classify_kernels(pd.concat(frames))) == {}


def test_detr_fp16_batch8_on_the_h100_spends_a_third_of_gemm_on_layout():
    """Issue #11's observation, from the committed H100 run: cuDNN's NCHW<->NHWC transforms inside conv2d."""
    cell = H100_RUNS / "batch_size=8,model=detr,precision=fp16,variant=full"
    kernels = classify_kernels(pd.read_parquet(cell / "kernels.parquet"))
    totals = kernel_class_totals(kernels, kernels["iteration"].nunique())
    gemm = totals["groups"]["GEMM"]
    assert gemm["device_ms"] == pytest.approx(13.81, abs=0.01)
    assert gemm["other_class_ms"]["layout"] == pytest.approx(4.85, abs=0.01)
    iterations = kernels["iteration"].nunique()
    conv = kernels[kernels["op"] == "aten::conv2d"].groupby("kernel_class")["device_us"].sum() / iterations / 1000
    assert conv.sum() == pytest.approx(11.7, abs=0.1) and conv["layout"] == pytest.approx(4.8, abs=0.1)
    # the op view calls 41.2% of device time GEMM; by the kernels' own names it is 25.7%
    assert totals["gemm_class_pct"] == pytest.approx(25.7, abs=0.1)
