"""Roofline: FLOP and byte formulas at known shapes, unknown ops left null, the spec table, the bandwidth
probes and their cache, and the per-group figures of the summary (known answers)."""

import math

import pandas as pd
import pytest

from ngbench.measure.bandwidth import bandwidth_for, host_triad_gbs
from ngbench.roofline import Call, Work, estimate, with_flops_bytes
from ngbench.roofline.specs import device_spec, peak_name
from ngbench.summary import roofline_totals

F32, F16 = "float", "c10::Half"


def work(op, shapes, dtypes, values=(), launched=None, rule=None) -> Work:
    return estimate(Call(op, tuple(tuple(s) for s in shapes), tuple(dtypes), tuple(values), launched), rule)


def test_mm_bmm_and_matmul_broadcast():
    assert work("aten::mm", [[64, 128], [128, 32]], [F32, F32]) == Work(2 * 64 * 128 * 32, 4 * (64 * 128 + 128 * 32 + 64 * 32))
    assert work("aten::bmm", [[8, 4, 16], [8, 16, 2]], [F16, F16]) == Work(2 * 8 * 4 * 16 * 2, 2 * (512 + 256 + 64))
    # matmul broadcasts the batch: [2, 1, 4, 8] @ [3, 8, 5] -> [2, 3, 4, 5]
    assert work("aten::matmul", [[2, 1, 4, 8], [3, 8, 5]], [F32, F32]).flops == 2 * (2 * 3 * 4 * 5) * 8
    assert work("aten::mm", [[4, 8], [7, 5]], [F32, F32]) == Work(None, None)        # shapes that do not fit


def test_linear_and_addmm_count_the_bias():
    x, w, b = [2, 8, 768], [3072, 768], [3072]
    flops = 2 * 16 * 3072 * 768 + 16 * 3072
    nbytes = 2 * (16 * 768 + 3072 * 768 + 3072 + 16 * 3072)
    assert work("aten::linear", [x, w, b], [F16] * 3) == Work(flops, nbytes)
    assert work("aten::linear", [x, w, []], [F16, F16, ""]).flops == 2 * 16 * 3072 * 768
    assert work("aten::addmm", [[3072], [16, 768], [768, 3072], [], []], [F16, F16, F16, "Scalar", "Scalar"]) == \
        Work(flops, nbytes)


def test_onnx_gemm_infers_the_transposition_or_gives_up():
    # torch exports Linear as Gemm(x, W[n, k], b) with transB=1: only one transposition fits
    assert work("Gemm", [[8, 768], [3072, 768], [3072]], ["float"] * 3).flops == 2 * 8 * 3072 * 768 + 8 * 3072
    # square B: A[8, 4] fits B[4, 4] either way, same work
    assert work("Gemm", [[8, 4], [4, 4]], ["float"] * 2).flops == 2 * 8 * 4 * 4
    # A[4, 6] with B[6, 4]: AB is 4x4 (k=6), A^T B^T is 6x6 (k=4): ambiguous, so unknown
    assert work("Gemm", [[4, 6], [6, 4]], ["float"] * 2) == Work(None, None)


CONV_TYPES = [F32, F32, F32, "ScalarList", "ScalarList", "ScalarList", "Scalar"]


def test_conv2d_output_from_stride_padding_dilation():
    shapes = [[2, 3, 32, 32], [16, 3, 3, 3], [16], [], [], [], []]
    w = work("aten::conv2d", shapes, CONV_TYPES, ["", "", "", "[2, 2]", "[1, 1]", "[1, 1]", "1"])
    out = 2 * 16 * 16 * 16                       # (32 + 2 - 2 - 1) // 2 + 1 = 16
    assert w.flops == 2 * out * 3 * 9 + out
    assert w.bytes == 4 * (2 * 3 * 32 * 32 + 16 * 27 + 16 + out)
    dilated = work("aten::conv2d", shapes, CONV_TYPES, ["", "", "", "[1, 1]", "[0, 0]", "[2, 2]", "1"])
    assert dilated.flops == 2 * (2 * 16 * 28 * 28) * 27 + 2 * 16 * 28 * 28      # 32 - 2 * 2 = 28
    # depthwise: groups = channels, each output reads one input channel
    depthwise = work("aten::conv2d", [[1, 8, 10, 10], [8, 1, 3, 3], [], [], [], [], []], [F32, F32, ""] + CONV_TYPES[3:],
                     ["", "", "", "[1, 1]", "[1, 1]", "[1, 1]", "8"])                   # no bias: type ''

    assert depthwise.flops == 2 * (8 * 10 * 10) * 9
    # stride and padding not recorded (an ONNX Conv, or a trace without record_shapes): unknown, never guessed
    assert work("aten::conv2d", shapes, CONV_TYPES) == Work(None, None)
    assert work("Conv", [[2, 3, 32, 32], [16, 3, 3, 3]], ["float", "float"]) == Work(None, None)


def test_conv_transpose_output_size():
    # (4 - 1) * 2 - 2 * 0 + 1 * (2 - 1) + 0 + 1 = 8
    w = work("aten::conv_transpose2d", [[1, 4, 4, 4], [4, 2, 2, 2], [], [], [], [], [], []],
             [F32, F32, "", "ScalarList", "ScalarList", "ScalarList", "Scalar", "ScalarList"],
             ["", "", "", "[2, 2]", "[0, 0]", "[0, 0]", "1", "[1, 1]"])
    assert w.flops == 2 * (4 * 4 * 4) * 2 * 4
    assert w.bytes == 4 * (64 + 32 + 1 * 2 * 8 * 8)


def test_layer_norm_softmax_and_elementwise_known_answers():
    x = [4, 128, 768]
    n = math.prod(x)
    assert work("aten::layer_norm", [x, [], [768], [768]], [F16, "ScalarList", F16, F16], ["", "[768]", "", ""]) == \
        Work(7 * n, 2 * (2 * n + 2 * 768))
    assert work("aten::softmax", [x, [], []], [F32, "Scalar", ""], ["", "-1", ""]) == Work(5 * n, 4 * 2 * n)
    # _softmax(x, dim, half_to_float=True) writes float from half
    assert work("aten::_softmax", [x, [], []], [F16, "Scalar", "Scalar"], ["", "-1", "True"]) == Work(5 * n, 2 * n + 4 * n)
    # add broadcasts [4, 1, 8] + [3, 8] -> [4, 3, 8]; a scalar operand is not a tensor
    assert work("aten::add", [[4, 1, 8], [3, 8], []], [F32, F32, "Scalar"], rule="elementwise") == \
        Work(96, 4 * (32 + 24 + 96))
    assert work("aten::gelu", [[2, 10]], [F16], rule="activation") == Work(20, 2 * 40)
    assert work("aten::eq", [[2, 10], [2, 10]], [F32, F32], rule="elementwise") == Work(20, 80 + 80 + 20)  # bool out
    assert work("Add", [[1, 3], [3]], ["float16", "float16"], rule="onnx_elementwise") == Work(3, 2 * (3 + 3 + 3))


def test_reductions_need_their_dimensions():
    x = [[4, 6, 8], [], [], []]
    types = [F32, "ScalarList", "Scalar", ""]
    assert work("aten::mean", x, types, ["", "[-1]", "False", ""]) == Work(192, 4 * (192 + 24))
    assert work("aten::sum", x, types, ["", "", "False", ""]) == Work(192, 4 * (192 + 1))   # all dimensions
    assert work("aten::sum", x, types) == Work(None, None)                                 # values not recorded
    assert work("aten::argmax", x, types, ["", "1", "False"]).bytes == 4 * 192 + 8 * 32     # int64 indices


def test_copies_count_bytes_only_when_they_happen():
    x, types, values = [[64, 32]], [F32], [""]
    assert work("aten::view", x, types, values, launched=False) == Work(0, 0)
    assert work("aten::contiguous", x, types, values, launched=True) == Work(0, 2 * 4 * 2048)
    assert work("aten::contiguous", x, types, values, launched=False) == Work(0, 0)
    assert work("aten::contiguous", x, types, values, launched=None) == Work(None, None)     # CPU: not visible
    cast = work("aten::_to_copy", [[64, 32], [], [], [], []], [F32, "Scalar", "", "", ""], ["", "5", "", "", ""])
    assert cast == Work(0, 4 * 2048 + 2 * 2048)                                            # float -> half
    same = ["", "6", "False", "False", ""]
    assert work("aten::to", [[64, 32], [], [], [], []], [F32, "Scalar", "Scalar", "Scalar", ""], same) == Work(0, 0)
    assert work("aten::embedding", [[1000, 64], [2, 5]], [F32, "long int"]) == Work(0, 8 * 10 + 2 * 4 * 10 * 64)


def test_swin_window_ops_move_their_bytes():
    x = [1, 56, 56, 96]
    n = math.prod(x)
    assert work("aten::roll", [x, [], []], [F32, "ScalarList", "ScalarList"], ["", "[-3, -3]", "[1, 2]"]) == Work(0, 8 * n)
    padded = work("aten::pad", [[1, 55, 55, 96], [], [], []], [F32, "ScalarList", "", ""],
                  ["", "[0, 0, 0, 1, 0, 1]", "constant", ""])
    assert padded == Work(0, 4 * (55 * 55 * 96 + n))
    assert work("aten::repeat", [[2, 3], []], [F32, "ScalarList"], ["", "[4, 1, 2]"]) == Work(0, 4 * (6 + 48))


def test_unknown_ops_are_null():
    assert work("aten::nonzero", [[10]], [F32]) == Work(None, None)
    assert work("torchvision::nms", [[100, 4], [100]], [F32, F32]) == Work(None, None)
    assert work("triton_poi_fused_add_0", [], []) == Work(None, None)


def test_attention_counts_both_products_and_halves_causal():
    q, k, v = [2, 8, 128, 64], [2, 8, 256, 64], [2, 8, 256, 32]
    types = [F16, F16, F16, "", "Scalar", "Scalar"]
    full = work("aten::scaled_dot_product_attention", [q, k, v, [], [], []], types, ["", "", "", "", "0.", "False"])
    assert full.flops == 2 * 16 * 128 * 256 * (64 + 32)
    assert full.bytes == 2 * (2 * 8 * 128 * 64 + 2 * 8 * 256 * 64 + 2 * 8 * 256 * 32 + 2 * 8 * 128 * 32)
    causal = work("aten::scaled_dot_product_attention", [q, k, v, [], [], []], types, ["", "", "", "", "0.", "True"])
    assert causal.flops == full.flops / 2


def test_with_flops_bytes_fills_the_columns():
    ops = pd.DataFrame({"op": ["aten::mm", "aten::nonzero", "aten::contiguous"],
                        "input_shapes": [[[2, 3], [3, 4]], [[5]], [[5, 5]]], "input_dtypes": [[F32, F32], [F32], [F32]],
                        "input_values": [["", ""], [""], [""]], "kernels": [["sgemm"], [], ["copy"]]})
    out = with_flops_bytes(ops, device_is_host=False)
    assert out["flops"].tolist()[0] == 48 and math.isnan(out["flops"].tolist()[1])
    assert out["bytes"].tolist()[2] == 200
    assert math.isnan(with_flops_bytes(ops, device_is_host=True)["bytes"].tolist()[2])


def test_group_roofline_known_answer():
    # Memory: 1 GB moved in 1 ms (1000 GB/s) + an op of unknown bytes (1 ms); GEMM: 2 TFLOP in 2 ms
    ops = pd.DataFrame({"op_group": ["Memory", "Memory", "GEMM", "Idle"], "iteration": [0, 0, 0, 0],
                        "device_us": [1000.0, 1000.0, 2000.0, 0.0], "bytes": [1e9, float("nan"), 1e9, float("nan")],
                        "flops": [0.0, float("nan"), 2e12, float("nan")]})
    result = roofline_totals(ops, iterations=1, bandwidth_gbs=2000.0, peak_tflops=1000.0)
    assert set(result) == {"Memory", "GEMM"}
    assert result["Memory"]["achieved_gbs"] == pytest.approx(1000.0)
    assert result["Memory"]["memory_roofline_pct"] == pytest.approx(50.0)
    assert result["Memory"]["bytes_known_pct"] == pytest.approx(50.0)
    assert result["GEMM"]["achieved_tflops"] == pytest.approx(1000.0)
    assert result["GEMM"]["compute_peak_pct"] == pytest.approx(100.0)


def test_spec_table_names_the_gpus_pytorch_reports():
    assert device_spec("NVIDIA H100 80GB HBM3")["name"] == "H100 SXM"
    assert device_spec("NVIDIA H100 PCIe")["memory_gbs"] == 2000
    assert device_spec("NVIDIA H200")["name"] == "H200 SXM"
    assert device_spec("NVIDIA A100-SXM4-80GB")["memory_gbs"] == 2039
    assert device_spec("NVIDIA A100-PCIE-40GB")["name"] == "A100 PCIe 40GB"
    assert device_spec("NVIDIA L4")["peak_tflops"]["fp16_tensor"] == 121
    assert device_spec("NVIDIA GeForce RTX 4090") is None and device_spec("") is None
    assert peak_name("fp16") == "fp16_tensor" and peak_name("fp16", "int8") == "int8_tensor"


@pytest.mark.slow
def test_host_triad_probe_and_its_cache(tmp_path, monkeypatch):
    import ngbench.measure.bandwidth as bandwidth

    assert host_triad_gbs(elements=2**20, repeats=2) > 0
    monkeypatch.setattr(bandwidth, "TRIAD_ELEMENTS", 2**20)
    first = bandwidth_for("cached", str(tmp_path), "cpu")
    again = bandwidth_for("cached", str(tmp_path), "cpu")
    assert first["measured_now"] and not again["measured_now"] and again["gbs"] == first["gbs"] > 0
    assert first["probe"].startswith("host triad") and first["threads"] >= 1
    assert bandwidth_for("force", str(tmp_path), "cpu")["measured_now"]
    assert bandwidth_for("off", str(tmp_path), "cpu")["gbs"] is None
