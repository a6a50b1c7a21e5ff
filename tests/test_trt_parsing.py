"""TensorRT parsing (layer names, inspector JSON, trtexec profiles, fusion table) on hand-made fixtures.

The engine build/execute path of flow=trt needs TensorRT and a GPU and is not exercised here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ngbench.flows.base import RunContext
from ngbench.schema import EVENT_COLUMNS, IDLE_OP
from ngbench.trace.trt_profile import (
    Layer,
    layer_events,
    parse_layer_name,
    parse_layers,
    profile_from_trtexec,
    read_trtexec,
    trt_fusion_table,
)

FIXTURES = Path(__file__).parent / "fixtures" / "trt"
NODES = json.loads((FIXTURES / "onnx_nodes.json").read_text())
ORDER = {name: i for i, name in enumerate(NODES)}


@pytest.mark.parametrize("name, sources, span", [
    ("/a/Conv + /a/BatchNormalization + /a/Relu", ["/a/Conv", "/a/BatchNormalization", "/a/Relu"], None),
    ("PWN(PWN(/x/Add), /x/Relu)", ["/x/Add", "/x/Relu"], None),
    ("PWN(/x/Mul, PWN(/x/Add, /x/Tanh))", ["/x/Mul", "/x/Add", "/x/Tanh"], None),
    ("{ForeignNode[/a/MatMul.../b/Softmax]}", [], ("/a/MatMul", "/b/Softmax")),
    ("{ForeignNode[/a/MatMul]}", [], ("/a/MatMul", "/a/MatMul")),
    ("/q/MatMul || /k/MatMul || /v/MatMul", ["/q/MatMul", "/k/MatMul", "/v/MatMul"], None),
    ("/x/Conv + PWN(/x/Add, /x/Relu)", ["/x/Conv", "/x/Add", "/x/Relu"], None),
    ("Reformatting CopyNode for Input Tensor 0 to /x/Conv + /x/Relu", [], None),
    ("Reformatting CopyNode for Output Tensor 0 to {ForeignNode[/a/MatMul.../b/Softmax]}", [], None),
    ("[trainStation1]", [], None),
    ("(Unnamed Layer* 20) [Shuffle]", [], None),
    ("/single/Softmax", ["/single/Softmax"], None),
    ("/backbone/ResNeXt/Conv + /backbone/ResNeXt/Relu", ["/backbone/ResNeXt/Conv", "/backbone/ResNeXt/Relu"], None),
    ("/Slice_1 (copy) + /Add_2", ["/Slice_1 (copy)", "/Add_2"], None),
    ("{ForeignNode[/a/MatMul.../a/Add]} + /b/Relu", ["/b/Relu"], None),   # a range inside a name is not kept
])
def test_layer_name_sources(name, sources, span):
    assert parse_layer_name(name) == (sources, span)


def test_inspector_json_layers():
    layers = parse_layers(json.loads((FIXTURES / "layer_info.json").read_text()), ORDER)
    by_name = {layer.name: layer for layer in layers}
    assert len(layers) == 8
    conv = by_name["/conv1/Conv + /relu/Relu"]
    assert conv.sources == ["/conv1/Conv", "/bn1/BatchNormalization", "/relu/Relu"]   # from Metadata
    assert conv.layer_type == "CaskConvolution" and conv.tactic.startswith("sm80_xmma_fprop")
    assert conv.input_shapes == [[1, 3, 32, 32]]
    myelin = by_name["{ForeignNode[/flatten/Flatten.../attn/MatMul_1]}"]
    assert myelin.sources == ["/flatten/Flatten", "/attn/MatMul", "/attn/Mul", "/attn/Softmax", "/attn/MatMul_1"]
    assert by_name["PWN(PWN(PWN(/act/Mul), /act/Add), /act/Tanh)"].sources == ["/act/Mul", "/act/Add", "/act/Tanh"]
    assert by_name["(Unnamed Layer* 20) [Shuffle]"].sources == []
    assert parse_layers({"Layers": ["/a/Relu", "/b/Add + /b/Relu"]})[1].sources == ["/b/Add", "/b/Relu"]


def test_trtexec_profile_and_times_to_op_table():
    ops, iteration_us, busy_us, _ = read_trtexec(FIXTURES / "profile.json", FIXTURES / "layer_info.json",
                                                 times_path=FIXTURES / "times.json", onnx_nodes=NODES)
    assert list(ops.columns[: len(EVENT_COLUMNS)]) == EVENT_COLUMNS
    assert busy_us == [pytest.approx(855.0)] and iteration_us == [pytest.approx(1000.0)]
    assert ops["wall_us"].tolist() == pytest.approx([10, 200, 30, 400, 50, 40, 120, 5, 145])
    assert (ops["host_us"] == ops["device_us"]).all()
    assert ops["op"].iloc[-1] == IDLE_OP and ops["seq"].tolist() == list(range(9))
    fused = dict(zip(ops["op"], ops["fused_ops"], strict=True))
    assert fused["/conv1/Conv + /relu/Relu"] == ["Conv", "BatchNormalization", "Relu"]
    assert fused["{ForeignNode[/flatten/Flatten.../attn/MatMul_1]}"] == ["Flatten", "MatMul", "Mul", "Softmax",
                                                                         "MatMul"]
    assert fused["Reformatting CopyNode for Input Tensor 0 to /conv1/Conv + /relu/Relu"] == []
    assert sum(ops["wall_us"]) == pytest.approx(iteration_us[0])


def test_trt_rows_classify_into_groups():
    from ngbench.taxonomy import classify

    ops, *_ = read_trtexec(FIXTURES / "profile.json", FIXTURES / "layer_info.json", onnx_nodes=NODES)
    groups = dict(zip(ops["op"], classify(ops)["op_group"], strict=True))
    assert groups == {
        "Reformatting CopyNode for Input Tensor 0 to /conv1/Conv + /relu/Relu": "Memory",
        "/conv1/Conv + /relu/Relu": "GEMM",
        "/pool/MaxPool": "Pooling",
        "{ForeignNode[/flatten/Flatten.../attn/MatMul_1]}": "GEMM",
        "PWN(PWN(PWN(/act/Mul), /act/Add), /act/Tanh)": "Activation",
        "/norm/LayerNormalization": "Normalization",
        "/head/Gemm": "GEMM",
        "(Unnamed Layer* 20) [Shuffle]": "Memory",
        IDLE_OP: "Idle",
    }


def test_iprofiler_iterations_and_idle():
    layers = [Layer("/a/Conv + /a/Relu", "CaskConvolution", ["/a/Conv", "/a/Relu"], "conv_kernel"),
              Layer("/b/Softmax", "Softmax", ["/b/Softmax"])]
    ops_types = {"/a/Conv": "Conv", "/a/Relu": "Relu", "/b/Softmax": "Softmax"}
    scopes = {"/a/Conv": ["stem.conv", "Conv2d"], "/a/Relu": ["stem.act", "ReLU"], "/b/Softmax": ["head", "Softmax"]}
    times = [{"/a/Conv + /a/Relu": 0.1, "/b/Softmax": 0.02}, {"/a/Conv + /a/Relu": 0.12, "/b/Softmax": 0.03}]
    ops, iteration_us, busy_us = layer_events(layers, times, ops_types, scopes, latency_us=[150.0, 100.0])
    assert busy_us == pytest.approx([120.0, 150.0])
    assert iteration_us == pytest.approx([150.0, 150.0])   # 100 < Σ layers: latency = Σ layers, idle 0
    assert ops["wall_us"].tolist() == pytest.approx([100, 20, 30, 120, 30, 0])
    assert ops["module"].tolist()[:2] == ["stem", "head"] and ops["module_type"].tolist()[:2] == ["", "Softmax"]
    assert ops["kernels"].tolist()[0] == ["conv_kernel"]


def test_profile_from_trtexec_counts():
    times, count = profile_from_trtexec(json.loads((FIXTURES / "profile.json").read_text()))
    assert count == 10 and times["/head/Gemm"] == 0.120


def test_fusion_table():
    layers = parse_layers(json.loads((FIXTURES / "layer_info.json").read_text()), ORDER)
    table = trt_fusion_table(layers, NODES).set_index("node")
    assert table.loc["/bn1/BatchNormalization", "status"] == "fused"
    assert table.loc["/bn1/BatchNormalization", "layer"] == "/conv1/Conv + /relu/Relu"
    assert bool(table.loc["/bn1/BatchNormalization", "layer_has_gemm"])
    assert table.loc["/act/Tanh", "status"] == "fused" and not table.loc["/act/Tanh", "layer_has_gemm"]
    assert table.loc["/pool/MaxPool", "status"] == "alone"
    assert table.loc["/out/Reshape", "status"] == "absent" and table.loc["/out/Reshape", "layer"] == ""
    assert table.loc["/attn/Softmax", "n_sources"] == 5
    assert table["is_gemm"].sum() == 4                      # Conv, MatMul, MatMul_1, Gemm
    non_gemm = table[~table["is_gemm"]]
    assert (non_gemm["status"] == "fused").mean() == pytest.approx(8 / 11)


def _ctx(device):
    return RunContext(device=device, precision="fp16", batch_size=1, quant=None, model_name="m", run_dir="/tmp")


def test_trt_flow_without_tensorrt_says_so(monkeypatch):
    from ngbench.config import QuantConfig
    from ngbench.flows.trt import config

    monkeypatch.setattr(config, "has_tensorrt", lambda: False)
    reason = config.TrtConfig().check(_ctx("cuda:0"))
    assert reason.startswith("flow=trt needs TensorRT: pip install tensorrt")
    assert "platform=cuda" in config.TrtConfig().check(_ctx("cpu"))
    monkeypatch.setattr(config, "has_tensorrt", lambda: True)
    assert "platform=cuda" in config.TrtConfig().check(_ctx("cpu"))
    assert config.TrtConfig().check(_ctx("cuda:0")) is None
    quantized = _ctx("cuda:0")
    quantized.quant = QuantConfig(name="int8")
    assert "+quant on flow=trt is not supported" in config.TrtConfig().check(quantized)


def test_trtexec_cli_writes_classified_parquet(tmp_path, capsys):
    import pandas as pd

    from ngbench.trace.trt_profile import guess_op_type, main

    assert guess_op_type("/encoder/layer.0/attention/MatMul_1") == "MatMul"
    out = tmp_path / "ops.parquet"
    assert main(["--profile", str(FIXTURES / "profile.json"), "--layers", str(FIXTURES / "layer_info.json"),
                 "--times", str(FIXTURES / "times.json"), "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert table["wall_us"].sum() == pytest.approx(1000.0)
    assert table.loc[table["op"] == "/pool/MaxPool", "op_group"].item() == "Pooling"
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines == [f"9 rows, latency 1000.0 us -> {out}", "GEMM 720.0 us 72.0%", "Idle 145.0 us 14.5%",
                     "Activation 50.0 us 5.0%", "Normalization 40.0 us 4.0%", "Pooling 30.0 us 3.0%",
                     "Memory 15.0 us 1.5%"]


def test_sources_resolve_to_graph_nodes_where_the_graph_is_known():
    """TensorRT suffixes a node it split (`_myl0_3`): with the ONNX order it resolves to the node it came
    from, without it the name stays; a range whose first node is not in the graph keeps its two ends."""
    entries = [{"Name": "/attn/MatMul_myl0_3 + /attn/Mul"}, {"Name": "{ForeignNode[/gone/Cast.../attn/Softmax]}"},
               "{ForeignNode[/attn/Softmax.../attn/Mul]}"]
    known = parse_layers(entries, ORDER)
    assert [layer.sources for layer in known] == [["/attn/MatMul", "/attn/Mul"], ["/gone/Cast", "/attn/Softmax"],
                                                  ["/attn/Mul", "/attn/Softmax"]]      # graph order
    assert parse_layers(entries)[0].sources == ["/attn/MatMul_myl0_3", "/attn/Mul"]


def test_layer_rows_of_layers_the_inspector_did_not_list_and_of_unscoped_sources():
    layers = [Layer("/a/Conv + /a/Relu", "CaskConvolution", ["/a/Conv", "/a/Relu"], "",
                    [[1, 3, 8, 8]], ["Half"])]
    times = [{"/a/Conv + /a/Relu": 0.01, "extra_reformat": 0.002}]
    ops, iteration_us, busy_us = layer_events(layers, times, {"/a/Conv": "Conv", "/a/Relu": "Relu"}, scopes={})
    rows = ops.set_index("op")
    assert list(rows.index) == ["/a/Conv + /a/Relu", "extra_reformat", IDLE_OP]
    conv, extra = rows.loc["/a/Conv + /a/Relu"], rows.loc["extra_reformat"]
    assert (conv["module"], conv["module_type"], conv["kernels"]) == ("", "", [])
    assert (conv["input_shapes"], conv["input_dtypes"], conv["fused_ops"]) == ([[1, 3, 8, 8]], ["Half"], ["Conv", "Relu"])
    assert (conv["node"], conv["provider"]) == ("/a/Conv + /a/Relu", "")
    assert (extra["module"], extra["module_type"], extra["node"], extra["fused_ops"], extra["input_shapes"]) == (
        "", "", "", [], [])
    assert extra["wall_us"] == pytest.approx(2.0) and busy_us == [pytest.approx(12.0)] == iteration_us


def test_fusion_table_rows_name_each_nodes_op_type():
    layers = parse_layers(json.loads((FIXTURES / "layer_info.json").read_text()), ORDER)
    table = trt_fusion_table(layers, NODES)
    assert table["op_type"].tolist() == list(NODES.values()) and table["node"].tolist() == list(NODES)
    assert table.set_index("node").loc["/pool/MaxPool", "layer_type"] != ""


def test_trtexec_cli_help_and_required_files(capsys, monkeypatch):
    from ngbench.trace.trt_profile import main

    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--profile PROFILE --layers LAYERS [--onnx ONNX] [--times TIMES] --out OUT" in text
    for line in ("Turn trtexec --exportProfile/--exportLayerInfo files into ngbench's classified op table (Parquet).",
                 "--profile PROFILE trtexec --exportProfile JSON",
                 "--layers LAYERS trtexec --exportLayerInfo JSON (build with --profilingVerbosity=detailed)",
                 "--onnx ONNX the ONNX file the engine was built from (op types, module scopes)",
                 "--times TIMES trtexec --exportTimes JSON (iteration latency -> idle row)",
                 "--out OUT output Parquet file"):
        assert line in text, line
    for missing in ("--profile", "--out"):
        given = {"--profile": str(FIXTURES / "profile.json"), "--layers": str(FIXTURES / "layer_info.json"),
                 "--out": "/nonexistent/ops.parquet"}
        del given[missing]
        with pytest.raises(SystemExit) as stopped:
            main([item for pair in given.items() for item in pair])
        assert stopped.value.code == 2
        assert f"the following arguments are required: {missing}" in capsys.readouterr().err


def test_module_of_sources_at_different_depths_and_a_fusion_source_outside_the_graph():
    layers = [Layer("/a/Conv + /a/Relu", "CaskConvolution", ["/a/Conv", "/a/Relu"])]
    scopes = {"/a/Conv": ["stem.conv", "Conv2d"], "/a/Relu": ["stem", "Stem"]}
    ops, _, _ = layer_events(layers, [{"/a/Conv + /a/Relu": 0.01}], {}, scopes)
    assert (ops["module"].iloc[0], ops["module_type"].iloc[0]) == ("stem", "")
    myelin = parse_layers(["{ForeignNode[/gone/Cast.../attn/Softmax]}"], ORDER)
    table = trt_fusion_table(myelin, NODES).set_index("node")
    assert table.loc["/attn/Softmax", "status"] == "fused" and not table.loc["/attn/Softmax", "layer_has_gemm"]
    assert table.loc["/attn/Softmax", "n_sources"] == 2


def test_names_without_a_path_layers_without_a_name_and_files_without_layers():
    from ngbench.trace.trt_profile import guess_op_type, latency_from_trtexec_times

    assert guess_op_type("Gemm_2") == "Gemm" and guess_op_type("/a/b/Relu") == "Relu"
    assert latency_from_trtexec_times([{}]) == 0.0
    assert parse_layers({"Bindings": []}) == []
    [named, unnamed] = parse_layers({"Layers": ["/a/Relu", {"LayerType": "Shuffle"}]})
    assert (named.name, named.sources) == ("/a/Relu", ["/a/Relu"]) and (unnamed.name, unnamed.sources) == ("", [])
    table = trt_fusion_table(parse_layers(json.loads((FIXTURES / "layer_info.json").read_text()), ORDER), NODES)
    absent = table.set_index("node").loc["/out/Reshape"]
    assert (absent["layer"], absent["layer_type"], absent["n_sources"]) == ("", "", 0)
    scopes = {"/a/Conv": ["stem.block.conv", "Conv2d"], "/a/Relu": ["stem.block.relu", "ReLU"]}
    ops, _, _ = layer_events([Layer("/a/Conv + /a/Relu", sources=["/a/Conv", "/a/Relu"])],
                             [{"/a/Conv + /a/Relu": 0.01}], {}, scopes)
    assert ops["module"].iloc[0] == "stem.block"
