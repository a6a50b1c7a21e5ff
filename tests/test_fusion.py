"""Known-answer tests of the fusion analysis (ngbench/fusion.py) on hand-made op tables."""

import math

import pandas as pd
import pytest

from ngbench.fusion import fusion_by_group, fusion_by_op, fusion_summary, non_gemm_time, op_key
from ngbench.taxonomy import classify


def _table(rows, iterations=2):
    """Op rows (op, wall_us, fused_ops[, module_type]) repeated for `iterations`, then classified."""
    frames = []
    for iteration in range(iterations):
        frame = pd.DataFrame([{"op": r[0], "wall_us": r[1], "fused_ops": list(r[2]) if len(r) > 2 else [],
                               "module_type": r[3] if len(r) > 3 else ""} for r in rows])
        frame["iteration"] = iteration
        frame["seq"] = range(len(frame))
        frames.append(frame)
    return classify(pd.concat(frames, ignore_index=True))


EAGER = _table([("aten::conv2d", 10.0), ("aten::batch_norm", 3.0), ("aten::relu", 2.0), ("aten::add", 1.0),
                ("aten::layer_norm", 2.0), ("aten::softmax", 2.0), ("[idle]", 0.0)])
INDUCTOR = _table([
    ("triton_tem_fused_convolution_native_batch_norm_relu_0", 11.0,
     ["aten::convolution", "aten::_native_batch_norm_legit_no_training", "aten::relu"]),
    ("triton_per_fused_add_native_layer_norm_1", 1.0, ["aten::add", "aten::native_layer_norm"]),
    ("triton_per_fused__softmax_2", 1.0, ["aten::_softmax"]),
    ("[idle]", 1.0),
])


def test_known_answer_rates():
    summary = fusion_summary(EAGER, INDUCTOR)
    assert summary["non_gemm_ops"] == 5
    assert summary["fused_with_gemm"] == 2          # batch_norm, relu (CONV+BN+ReLU)
    assert summary["fused_with_non_gemm"] == 2      # add, layer_norm
    assert summary["fusion_rate"] == pytest.approx(0.8)
    assert summary["fusion_rate_with_gemm"] == pytest.approx(0.4)
    assert summary["fusion_rate_with_non_gemm"] == pytest.approx(0.4)


def test_known_answer_times():
    summary = fusion_summary(EAGER, INDUCTOR)
    assert summary["total_before_ms"] == pytest.approx(0.020)
    assert summary["non_gemm_before_ms"] == pytest.approx(0.010)
    assert summary["non_gemm_before_pct"] == pytest.approx(50.0)
    assert summary["total_after_ms"] == pytest.approx(0.014)
    assert summary["non_gemm_after_ms"] == pytest.approx(0.002)       # the template with its epilogue is GEMM
    assert summary["non_gemm_after_pct"] == pytest.approx(100 * 2 / 14)
    assert summary["non_gemm_speedup"] == pytest.approx(5.0)


def test_known_answer_groups():
    groups = fusion_by_group(EAGER, INDUCTOR).set_index("op_group")
    assert groups.loc["Normalization", "non_gemm_ops"] == 2
    assert groups.loc["Normalization", "fused_with_gemm"] == 1        # batch_norm with the conv
    assert groups.loc["Normalization", "fused_with_non_gemm"] == 1    # layer_norm with the add
    assert groups.loc["Activation", "fusion_rate_with_gemm"] == 1.0
    assert groups.loc["Elementwise", "fusion_rate_with_non_gemm"] == 1.0
    assert groups.loc["Logit", "fusion_rate"] == 0.0                  # softmax alone in its kernel


def test_instances_are_capped_by_kernels_listing_them():
    eager = _table([("aten::add", 1.0), ("aten::add", 1.0), ("aten::add", 1.0), ("aten::mul", 1.0)], iterations=1)
    fused = _table([("triton_poi_fused_add_mul_0", 1.0, ["aten::add", "aten::mul"]),
                    ("triton_poi_fused_add_1", 1.0, ["aten::add"])], iterations=1)
    by_op = fusion_by_op(eager, fused).set_index("key")
    assert by_op.loc["add", "fused_with_non_gemm"] == 1               # one kernel lists add with another op
    assert by_op.loc["add", "unfused"] == 2
    assert fusion_summary(eager, fused)["fusion_rate"] == pytest.approx(0.5)


def test_key_in_two_groups_shares_its_fused_count():
    eager = _table([("aten::mul", 1.0, [], "NewGELUActivation"), ("aten::mul", 1.0), ("aten::mul", 1.0),
                    ("aten::tanh", 1.0)], iterations=1)
    fused = _table([("cpp_fused_mul_tanh_0", 1.0, ["aten::mul", "aten::tanh"])] * 3, iterations=1)
    by_op = fusion_by_op(eager, fused)
    act = by_op[(by_op["op_group"] == "Activation") & (by_op["key"] == "mul")].iloc[0]
    ew = by_op[(by_op["op_group"] == "Elementwise") & (by_op["key"] == "mul")].iloc[0]
    assert act["fused"] == pytest.approx(1.0) and ew["fused"] == pytest.approx(2.0)


def test_tensorrt_style_source_nodes():
    trt = _table([("conv1 + bn1 + relu1", 5.0, ["/conv1/Conv", "/bn1/BatchNormalization", "/relu1/Relu"]),
                  ("Add_3 + LayerNormalization_4", 1.0, ["Add_3", "LayerNormalization_4"])], iterations=1)
    summary = fusion_summary(EAGER, trt)
    assert summary["fused_with_gemm"] == 2 and summary["fused_with_non_gemm"] == 2


def test_unfused_run_has_zero_rate():
    summary = fusion_summary(EAGER, EAGER)
    assert summary["fusion_rate"] == 0.0
    assert summary["non_gemm_speedup"] == pytest.approx(1.0)


def test_empty_fused_after_time_gives_nan_speedup():
    fused = _table([("aten::conv2d", 1.0)])
    assert math.isnan(fusion_summary(EAGER, fused)["non_gemm_speedup"])
    assert non_gemm_time(fused)["non_gemm_ms"] == 0.0


@pytest.mark.parametrize("name,key", [
    ("aten::native_layer_norm", "layer_norm"), ("aten.add_.Tensor", "add"), ("LayerNormalization", "layer_norm"),
    ("/encoder/layer.0/Add_1", "add"), ("node_Softmax_12", "softmax"), ("Relu_2", "relu"),
    ("aten::_softmax", "softmax"), ("aten::relu_", "relu"), ("aten::_native_batch_norm_legit_no_training", "batch_norm"),
    ("aten::_to_copy", "to"), ("aten::contiguous", "clone"), ("aten::_unsafe_view", "view"),
])
def test_op_key(name, key):
    assert op_key(name) == key


# ------------------------------------------------------------------ report: Table V and the flow figures


def _cell(frame, model, flow):
    frame = frame.copy()
    frame = frame.assign(run_id=f"{model}-{flow}", model=model, task="t", flow=flow, platform="cuda",
                         device="cuda:0", precision="fp16", quant="", batch_size=1, kernels=[[]] * len(frame),
                         host_us=frame["wall_us"], device_us=frame["wall_us"])
    return frame


@pytest.mark.slow
def test_report_writes_table5_and_figures(tmp_path):
    from ngbench.report.flows import fusion_tables, write_flow_reports

    ort = _table([("MatMul", 8.0), ("Softmax", 3.0), ("Transpose", 4.0), ("[idle]", 1.0)])
    ops = pd.concat([_cell(EAGER, "swin_t", "torch"), _cell(INDUCTOR, "swin_t", "inductor"),
                     _cell(EAGER, "gpt2", "torch"), _cell(ort, "gpt2", "ort")], ignore_index=True)
    table5, groups = fusion_tables(ops)
    assert table5[["model", "flow"]].values.tolist() == [["swin_t", "inductor"]]   # ort has no fused_ops
    assert table5.loc[0, "fusion_rate"] == pytest.approx(0.8)
    assert table5.loc[0, "non_gemm_after_pct"] == pytest.approx(100 * 2 / 14)
    assert set(groups["op_group"]) == {"Normalization", "Activation", "Elementwise", "Logit"}
    paths = write_flow_reports(ops, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["fig7_torch_vs_ort.pdf", "fig7_torch_vs_ort.png", "fig8_fusion_flows.pdf",
                     "fig8_fusion_flows.png", "table5_fusion.csv", "table5_fusion_by_group.csv"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_report_without_eager_run_draws_nothing(tmp_path):
    from ngbench.report.flows import write_flow_reports

    assert write_flow_reports(_cell(INDUCTOR, "swin_t", "inductor"), tmp_path) == []


@pytest.mark.parametrize("sweep,flows", [("flows", "torch,ort"), ("fusion", "torch,inductor,trt")])
@pytest.mark.slow
def test_flow_sweeps_compose(sweep, flows):
    from conftest import run_cli

    result = run_cli("--config-dir", "sweeps", "--config-name", sweep, "--cfg", "hydra", timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"dir: outputs/sweeps/{sweep}" in result.stdout
    assert f"flow: {flows}" in result.stdout


def test_flows_run_at_their_own_precisions_stand_side_by_side():
    """Figure 7 as the seed ran it (PyTorch fp16, ONNX Runtime fp32): the two flows of a model and batch size
    are one cell, its row named by what each flow ran; a cell that shares one precision keeps its name, and a
    flow run at two precisions is not paired across them."""
    from ngbench.report.flows import _panels

    def rows(model, flow, precision, batch_size=1):
        return {"model": model, "variant": "full", "device": "cuda:0", "quant": "", "batch_size": batch_size,
                "flow": flow, "precision": precision, "op_group": "GEMM", "ms": 1.0}

    table = pd.DataFrame([rows("gpt2", "torch", "fp16"), rows("gpt2", "ort", "fp32"),
                          rows("bert", "torch", "fp32"), rows("bert", "ort", "fp32"),
                          rows("vit", "torch", "fp16"), rows("vit", "torch", "fp32"), rows("vit", "ort", "fp32")])
    panels = _panels(table, ("torch", "ort"))
    got = sorted(set(zip(panels["model"], panels["flow"], panels["precision"])))
    assert got == [("bert", "ort", "fp32"), ("bert", "torch", "fp32"),
                   ("gpt2", "ort", "torch fp16 / ort fp32"), ("gpt2", "torch", "torch fp16 / ort fp32"),
                   ("vit", "ort", "fp32"), ("vit", "torch", "fp32")]
