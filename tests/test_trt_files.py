"""TensorRT's timing files and IProfiler rows turned into numbers (ngbench.trace.trt_profile), on hand-written
entries whose answers are worked out below."""

import json
from pathlib import Path

import pandas as pd

from ngbench.trace.trt_profile import (
    Layer,
    latency_from_trtexec_times,
    layer_result,
    parse_layers,
    profile_from_trtexec,
)


def test_profile_takes_the_average_or_the_total_over_the_count():
    profile = [{"count": 4}, {"name": "conv", "averageMs": 0.5, "timeMs": 9.0}, {"name": "relu", "timeMs": 2.0},
               {"name": "pool"}]
    times, count = profile_from_trtexec(profile)
    assert count == 4
    assert times == {"conv": 0.5, "relu": 0.5, "pool": 0.0}       # relu: 2 ms over 4 runs
    assert profile_from_trtexec([{"name": "a", "timeMs": 3.0}]) == ({"a": 3.0}, 1)


def test_latency_is_the_median_in_microseconds():
    assert latency_from_trtexec_times([{"latencyMs": 3.0}, {"latencyMs": 1.0}, {"latencyMs": 2.0}]) == 2000.0
    assert latency_from_trtexec_times([{"latencyMs": 4.0}, {"latencyMs": 1.0}, {"latencyMs": 2.0},
                                       {"latencyMs": 3.0}]) == 2500.0
    assert latency_from_trtexec_times([{"computeMs": 0.25}, {"computeMs": 0.75}]) == 500.0
    assert latency_from_trtexec_times([{}, {"computeMs": 1.0}, {"computeMs": 2.0}]) == 1000.0
    assert latency_from_trtexec_times([]) == 0.0


def test_layer_shapes_and_types_come_from_the_inspector_entries():
    info = {"Layers": [{"Name": "conv1", "LayerType": "CaskConvolution", "TacticName": "t1",
                        "Inputs": [{"Dimensions": [1, 3, 8, 8], "Format/Datatype": "Half"}, "not a tensor"]}]}
    [layer] = parse_layers(info)
    assert (layer.name, layer.layer_type, layer.tactic) == ("conv1", "CaskConvolution", "t1")
    assert (layer.input_shapes, layer.input_dtypes) == ([[1, 3, 8, 8]], ["Half"])
    [bare] = parse_layers([{"Name": "shuffle", "Inputs": [{"Dimensions": [4]}]}])
    assert (bare.layer_type, bare.tactic, bare.input_shapes, bare.input_dtypes) == ("", "", [[4]], [""])
    [unnamed] = parse_layers([{"LayerType": "Shuffle", "Inputs": [{"Format/Datatype": "Half"}]}])
    assert (unnamed.name, unnamed.input_shapes, unnamed.input_dtypes) == ("", [[]], ["Half"])


def test_layer_result_drops_a_stalled_iteration_and_keeps_the_wall_view_as_profiled():
    ops = pd.DataFrame({"iteration": [0, 1, 2, 3], "op": ["conv"] * 4, "wall_us": [10.0, 11.0, 50.0, 10.0]})
    result = layer_result(ops, iteration_us=[10.0, 11.0, 50.0, 10.0], busy_us=[9.0, 9.0, 40.0, 9.0])
    # median 10.5, MAD 0.5: the 50 us iteration is past both median + 6 scaled MADs and median x 1.15
    assert list(result.iterations["stalled"]) == [False, False, True, False]
    assert list(result.ops["iteration"]) == [0, 1, 3]
    assert list(result.ops["wall_profiled_us"]) == [10.0, 11.0, 10.0]
    assert list(result.iterations["rebuilt_us"]) == [10.0, 11.0, 50.0, 10.0]
    assert list(result.iterations["busy_profiled_us"]) == [9.0, 9.0, 40.0, 9.0]
    assert (result.iterations["record_cost_us"] == 0).all() and (result.iterations["block"] == 0).all()
    assert (result.iterations["waits"] == 0).all()
    assert result.kernels.empty and list(result.kernels.columns)[:2] == ["iteration", "op_seq"]


def test_a_layer_defaults_to_no_sources():
    assert Layer("x").sources == [] and Layer("x").input_shapes == []


FIXTURES = Path(__file__).parent / "fixtures" / "trt"


def test_trtexec_cli_with_the_onnx_file_takes_op_types_order_and_module_scopes(tmp_path, capsys):
    """--onnx: the graph's node order expands the Myelin range to all five nodes (without it only its two
    ends are known), and scopes.json beside the model gives the modules."""
    import onnx
    from onnx import helper

    from ngbench.trace.trt_profile import main

    nodes = json.loads((FIXTURES / "onnx_nodes.json").read_text())
    graph = helper.make_graph([helper.make_node(op_type, [f"t{k}"], [f"t{k + 1}"], name=name)
                               for k, (name, op_type) in enumerate(nodes.items())], "g", [], [])
    onnx.save(helper.make_model(graph), tmp_path / "model.onnx")
    scopes = {"/conv1/Conv": ["stem.conv1", "Conv2d"], "/bn1/BatchNormalization": ["stem.bn1", "BatchNorm2d"],
              "/relu/Relu": ["stem.relu", "ReLU"], "/pool/MaxPool": ["pool", "MaxPool2d"]}
    (tmp_path / "scopes.json").write_text(json.dumps({"scopes": scopes}))
    args = ["--profile", str(FIXTURES / "profile.json"), "--layers", str(FIXTURES / "layer_info.json"),
            "--out", str(tmp_path / "ops.parquet")]
    assert main([*args, "--onnx", str(tmp_path / "model.onnx")]) == 0
    rows = pd.read_parquet(tmp_path / "ops.parquet").set_index("op")
    myelin = rows.loc["{ForeignNode[/flatten/Flatten.../attn/MatMul_1]}"]
    assert list(myelin["fused_ops"]) == ["Flatten", "MatMul", "Mul", "Softmax", "MatMul"]
    assert (rows.loc["/pool/MaxPool", "module"], rows.loc["/pool/MaxPool", "module_type"]) == ("pool", "MaxPool2d")
    assert (rows.loc["/conv1/Conv + /relu/Relu", "module"], rows.loc["/conv1/Conv + /relu/Relu", "module_type"]) == (
        "stem", "")
    (tmp_path / "scopes.json").unlink()                   # an ONNX file of another exporter: no modules
    assert main([*args, "--onnx", str(tmp_path / "model.onnx")]) == 0
    assert set(pd.read_parquet(tmp_path / "ops.parquet")["module"]) == {""}
    assert main(args) == 0                                 # no graph: the range is its two ends
    rows = pd.read_parquet(tmp_path / "ops.parquet").set_index("op")
    assert list(rows.loc["{ForeignNode[/flatten/Flatten.../attn/MatMul_1]}", "fused_ops"]) == ["Flatten", "MatMul"]
    capsys.readouterr()
