"""Known answers worked out by hand, through the real commands: a synthetic Kineto trace through
`python -m ngbench.analyze` and `python -m ngbench.report` (device, wall and host time per group); a user
model whose operators are known (docs/examples/toy_cnn.py) through `python -m ngbench`, counted per group;
and the reconciliation ratios against the iteration and clean times they are made of."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import TINY, check_ratios_against_their_inputs, read_summary, run_cli

# ----------------------------------------------------------------------------- a synthetic trace, end to end
# Two ProfilerSteps of 200 µs on one thread. Operators (host µs, relative to the step):
#   aten::linear [10, 40]  launches a GEMM kernel at 30 lasting 50 (step 1) or 60 (step 2)
#   aten::layer_norm [45, 60]  launches a 20 µs kernel that runs right after the GEMM
#   aten::view [65, 70]  no kernel
#   aten::softmax [75, 90]  launches a 10 µs kernel right after the layer norm's
# then a device synchronise (not an operator) until the kernels are done.
# Wall time: each kernel's time + the device-idle time while the host is inside the operator; the GPU is
# idle over [0, 30) and from the last kernel's end to 200. aten::linear is inside [10, 30) of that: +20 µs.
#   step 1: linear 50 + 20 = 70, layer_norm 20, view 0, softmax 10, [idle] (30 + 90) - 20 = 100
#   step 2: linear 60 + 20 = 80, layer_norm 20, view 0, softmax 10, [idle] (30 + 80) - 20 = 90
GEMM_US = (50.0, 60.0)
EXPECTED_DEVICE_US = {"GEMM": 110.0, "Normalization": 40.0, "Logit": 20.0}
EXPECTED_WALL_US = {"GEMM": 150.0, "Normalization": 40.0, "Logit": 20.0, "Idle": 190.0}
EXPECTED_HOST_US = {"GEMM": 60.0, "Normalization": 30.0, "Memory": 10.0, "Logit": 30.0}


def synthetic_trace() -> dict:
    def x(name, cat, ts, dur, pid=1, tid=1, **args):
        return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "pid": pid, "tid": tid, "args": args}

    def kernel(name, ts, dur, corr):
        return x(name, "kernel", ts, dur, pid=0, tid=7, correlation=corr, stream=7, device=0)

    events = []
    for step, gemm_us in enumerate(GEMM_US, start=1):
        b, c = 1000.0 * step, 10 * step
        ln_start = 30 + gemm_us
        events += [
            x(f"ProfilerStep#{step}", "user_annotation", b, 200),
            x("aten::linear", "cpu_op", b + 10, 30), x("aten::addmm", "cpu_op", b + 15, 20),
            x("cudaLaunchKernel", "cuda_runtime", b + 20, 5, correlation=c),
            kernel("sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n_tilesize128x128x32", b + 30, gemm_us, c),
            x("aten::layer_norm", "cpu_op", b + 45, 15),
            x("cudaLaunchKernel", "cuda_runtime", b + 50, 5, correlation=c + 1),
            kernel("void at::native::vectorized_layer_norm_kernel<float, float>", b + ln_start, 20, c + 1),
            x("aten::view", "cpu_op", b + 65, 5),
            x("aten::softmax", "cpu_op", b + 75, 15),
            x("cudaLaunchKernel", "cuda_runtime", b + 80, 5, correlation=c + 2),
            kernel("void at::native::softmax_warp_forward<float, float, float, 7, false, false>", b + ln_start + 20,
                   10, c + 2),
            x("cudaDeviceSynchronize", "cuda_runtime", b + 95, ln_start + 30 - 95 + 5, correlation=c + 3),
        ]
    return {"schemaVersion": 1, "traceEvents": events}


def per_group(ops, column: str) -> dict[str, float]:
    sums = ops.groupby("op_group")[column].sum()
    return {str(group): float(value) for group, value in sums[sums != 0].items()}


@pytest.mark.slow
def test_synthetic_trace_through_analyze_and_report(tmp_path):
    trace = tmp_path / "synthetic.json"
    trace.write_text(json.dumps(synthetic_trace()))
    run_dir = tmp_path / "run"
    result = run_cli(str(trace), "--out", str(run_dir), module="ngbench.analyze", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ops = pd.read_parquet(run_dir / "ops.parquet")
    by_step = ops.pivot_table(index="op", columns="iteration", values="wall_us", aggfunc="sum")
    assert by_step.to_dict("index") == {
        "aten::linear": {1: 70.0, 2: 80.0}, "aten::layer_norm": {1: 20.0, 2: 20.0}, "aten::view": {1: 0.0, 2: 0.0},
        "aten::softmax": {1: 10.0, 2: 10.0}, "[idle]": {1: 100.0, 2: 90.0}}
    assert ops.loc[ops["op"] == "aten::linear", "device_us"].tolist() == list(GEMM_US)
    assert per_group(ops, "device_us") == EXPECTED_DEVICE_US
    assert per_group(ops, "wall_us") == EXPECTED_WALL_US
    assert per_group(ops, "host_us") == EXPECTED_HOST_US
    kernels = pd.read_parquet(run_dir / "kernels.parquet")
    assert kernels.groupby("op_group")["device_us"].sum().to_dict() == EXPECTED_DEVICE_US

    groups = read_summary(run_dir)["groups"]                       # per inference: over two steps, in ms
    for group, us in EXPECTED_DEVICE_US.items():
        assert groups[group]["device_ms"] == pytest.approx(us / 2 / 1000)
        assert groups[group]["device_pct"] == pytest.approx(100 * us / 170)
    for group, us in EXPECTED_WALL_US.items():
        assert groups[group]["wall_ms"] == pytest.approx(us / 2 / 1000)
        assert groups[group]["wall_pct"] == pytest.approx(100 * us / 400)
    for group, us in EXPECTED_HOST_US.items():
        assert groups[group]["host_ms"] == pytest.approx(us / 2 / 1000)
    assert {g: e["ops"] for g, e in groups.items()} == {"GEMM": 1, "Normalization": 1, "Memory": 1, "Logit": 1,
                                                         "Idle": 1}

    for view, expected, total in (("wall", EXPECTED_WALL_US, 400.0), ("device", EXPECTED_DEVICE_US, 170.0),
                                  ("host", EXPECTED_HOST_US, 130.0)):
        out = tmp_path / f"report-{view}"
        report = run_cli(str(run_dir), "--view", view, "--out", str(out), module="ngbench.report", timeout=300)
        assert report.returncode == 0, report.stderr[-3000:]
        breakdown = pd.read_csv(out / "breakdown.csv").set_index("op_group")
        assert breakdown["pct"].to_dict() == pytest.approx({g: 100 * us / total for g, us in expected.items()})
        assert breakdown["ms"].to_dict() == pytest.approx({g: us / 2 / 1000 for g, us in expected.items()})


# ----------------------------------------------------------------------------- a user model, counted
# docs/examples/toy_cnn.py: Conv2d, BatchNorm2d, ReLU, Conv2d, BatchNorm2d, ReLU, AdaptiveAvgPool2d, Flatten,
# Linear. Its top-level operators per inference: aten::conv2d x2 + aten::linear (GEMM), aten::batch_norm x2
# (Normalization), aten::relu x2 (Activation), aten::adaptive_avg_pool2d (Pooling), aten::flatten (Memory),
# and one [idle] row (Idle).
TOY_CNN_OPS = {"GEMM": 3, "Normalization": 2, "Activation": 2, "Pooling": 1, "Memory": 1, "Idle": 1}
TOY_CNN = ["hydra.searchpath=[file://docs/examples]", "model=toy_cnn", "model.image_size=32", "model.width=8",
           *TINY[1:], "calibration.mode=off"]


def test_user_model_through_the_cli_has_its_operators_counted_per_group(tmp_path):
    """The quick tier's CLI run: the real `python -m ngbench` on docs/examples' toy CNN (CPU)."""
    run_dir = tmp_path / "run"
    result = run_cli(*TOY_CNN, f"hydra.run.dir={run_dir}", env={"PYTHONPATH": "docs/examples"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "ok" and summary["model"] == "toy_cnn" and summary["unmapped_ops"] == {}
    assert {group: entry["ops"] for group, entry in summary["groups"].items()} == TOY_CNN_OPS
    ops = pd.read_parquet(run_dir / "ops.parquet")
    first = ops[ops["iteration"] == ops["iteration"].min()]
    assert first["op"].tolist() == ["aten::conv2d", "aten::batch_norm", "aten::relu", "aten::conv2d",
                                    "aten::batch_norm", "aten::relu", "aten::adaptive_avg_pool2d", "aten::flatten",
                                    "aten::linear", "[idle]"]
    assert first["module_type"].tolist()[:9] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU",
                                                 "AdaptiveAvgPool2d", "Flatten", "Linear"]
    check_ratios_against_their_inputs(summary)


# ----------------------------------------------------------------------------- the reconciliation ratios
def test_reconciliation_known_answer():
    """Three blocks; block 1 holds a stalled iteration (left out). Worked by hand:
    clean medians 100, 140, 80 µs; rebuilt medians 105, 150, 80; profiled medians 130, 200, 90."""
    from ngbench.summary import reconciliation

    iterations = pd.DataFrame({
        "iteration": [0, 1, 2, 3, 4], "block": [0, 0, 1, 1, 2],
        "profiled_us": [120.0, 140.0, 200.0, 900.0, 90.0], "rebuilt_us": [100.0, 110.0, 150.0, 800.0, 80.0],
        "busy_us": [50.0, 60.0, 75.0, 700.0, 40.0], "busy_profiled_us": [55.0, 65.0, 80.0, 750.0, 45.0],
        "record_cost_us": [10.0, 20.0, 30.0, 500.0, 40.0], "waits": [1, 2, 3, 9, 4],
        "stalled": [False, False, False, True, False]})
    clean_blocks_us = [[100.0, 90.0, 110.0], [150.0, 130.0], [80.0]]
    recon = reconciliation(iterations, clean_blocks_us)
    assert [b["clean_ms"] for b in recon["by_block"]] == pytest.approx([0.1, 0.14, 0.08])
    assert [b["reconstructed_over_clean"] for b in recon["by_block"]] == pytest.approx([1.05, 150 / 140, 1.0])
    assert [b["profiled_over_clean"] for b in recon["by_block"]] == pytest.approx([1.3, 200 / 140, 1.125])
    assert recon["reconstructed_over_clean"] == pytest.approx(1.05)      # median of the three blocks
    assert recon["profiled_over_clean"] == pytest.approx(1.3)
    assert recon["clean_drift"] == pytest.approx(0.14 / 0.08 - 1)
    assert recon["device_busy_share"] == pytest.approx(225 / 440)
    assert recon["device_busy_share_profiled"] == pytest.approx(245 / 550)
    assert (recon["stalled_iterations"], recon["profiled_iterations"]) == (1, 5)
    assert recon["record_cost_ms"] == pytest.approx(0.025) and recon["blocking_waits"] == 2
