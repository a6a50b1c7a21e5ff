"""flow=ort: ONNX export cache, ORT CPU profiling end to end, and known-answer tests of the profile parsers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import profile_flow

from ngbench.config import QuantConfig
from ngbench.errors import UserError
from ngbench.flows.base import RunContext
from ngbench.schema import EVENT_COLUMNS, IDLE_OP, UNATTRIBUTED_OP
from ngbench.trace.reconstruct import Costs
from ngbench.trace.result import attribute_windows

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
torch = pytest.importorskip("torch")


def _ctx(tmp_path, name="tiny", device="cpu", precision="fp32", quant=None):
    return RunContext(device=device, precision=precision, batch_size=1, quant=quant, model_name=name,
                      run_dir=str(tmp_path / "run"), model_cfg={"name": name})


def _sequential_bundle():
    from ngbench.models.base import ModelBundle

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.GELU(),
                                torch.nn.Linear(32, 8), torch.nn.Softmax(dim=-1)).eval()
    return ModelBundle(model=model, args=(torch.randn(4, 16),), input_names=["x"], output_names=["probs"])


def _gpt2_bundle():
    from transformers import GPT2Config, GPT2LMHeadModel

    from ngbench.models.base import ModelBundle

    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config).eval()
    ids = torch.randint(0, 100, (1, 8))
    return ModelBundle(model=model, kwargs={"input_ids": ids}, input_names=["input_ids"],
                       output_names=["logits"])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("onnx_cache"))


def _flow(ctx, cache_dir, **options):
    from ngbench.flows.ort.config import OrtConfig
    from ngbench.flows.ort.flow import OrtFlow

    return OrtFlow(ctx, OrtConfig(name="ort", cache_dir=cache_dir, **options))


def _check_table(result):
    from ngbench.schema import normalise_events

    ops = normalise_events(result.ops)
    assert list(ops.columns) == EVENT_COLUMNS
    sums = ops.groupby("iteration")["wall_us"].sum().tolist()
    assert sums == pytest.approx(result.kept["rebuilt_us"].tolist(), rel=1e-6)
    assert (ops["op"] == IDLE_OP).sum() == len(result.kept)
    real = ops[ops["op"] != IDLE_OP]
    assert (real["host_us"] == real["device_us"]).all() and (real["wall_us"] == real["host_us"]).all()
    return ops


# ----------------------------------------------------------------------------- export
def test_export_is_cached_and_keeps_module_scopes(cache_dir):
    from ngbench.flows.onnx.export import export_onnx

    bundle = _sequential_bundle()
    args = dict(model_name="seq", model_cfg={"layers": 2}, precision="fp32", opset=18, cache_dir=cache_dir)
    first = export_onnx(bundle, **args)
    second = export_onnx(bundle, **args)
    assert not first.cache_hit and second.cache_hit and first.path == second.path
    assert first.exporter == "dynamo" and first.opset == 18
    by_type = {(scope[0], scope[1]) for scope in first.scopes.values()}
    assert ("1", "LayerNorm") in by_type and ("0", "Linear") in by_type
    other_shape = export_onnx(_sequential_bundle().__class__(model=bundle.model, args=(torch.randn(2, 16),)),
                              **args)
    assert other_shape.path != first.path


def test_export_failure_is_one_user_line(cache_dir):
    from ngbench.flows.onnx.export import export_onnx
    from ngbench.models.base import ModelBundle

    class Refuses(torch.nn.Module):
        def forward(self, x):
            if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting():
                raise RuntimeError("cannot be traced\nsecond line")
            return x + 1

    bundle = ModelBundle(model=Refuses(), args=(torch.ones(2),))
    with pytest.raises(UserError, match=r"^ONNX export of refuses failed: .*cannot be traced$"):
        export_onnx(bundle, model_name="refuses", model_cfg={}, precision="fp32", opset=18, cache_dir=cache_dir)


# ----------------------------------------------------------------------------- ORT CPU end to end
def test_ort_cpu_sequential(tmp_path, cache_dir):
    ctx = _ctx(tmp_path, "seq")
    flow = _flow(ctx, cache_dir)
    flow.prepare(_sequential_bundle())
    out = flow.infer()
    assert out[0].shape == (4, 8)
    result = profile_flow(flow, 3)
    ops = _check_table(result)
    assert len(result.iterations) == 3
    assert {"LayerNormalization", "Softmax"} <= set(ops["op"])
    assert ops[ops["op"] == "LayerNormalization"]["module_type"].eq("LayerNorm").all()
    facts = flow.facts()
    first = ops["iteration"].min()          # an iteration may be left out as stalled on a loaded machine
    assert facts["nodes_by_provider"] == {"CPUExecutionProvider": int((ops["iteration"] == first).sum() - 1)}
    assert {"export_s", "session_build_s", "ort_version", "providers"} <= set(facts)


def test_ort_cpu_tiny_gpt2_profile_and_groups(tmp_path, cache_dir):
    from ngbench.taxonomy import classify

    ctx = _ctx(tmp_path, "gpt2_tiny")
    flow = _flow(ctx, cache_dir)
    flow.prepare(_gpt2_bundle())
    result = profile_flow(flow, 2)
    ops = _check_table(result)
    kinds = set(ops["op"])
    assert {"Gemm", "Reshape", "Softmax", "SkipLayerNormalization", "FastGelu", "Gather"} <= kinds
    classified = classify(ops)
    group = dict(zip(classified["op"], classified["op_group"], strict=True))
    assert group["Gemm"] == "GEMM" and group["Softmax"] == "Logit" and group["Reshape"] == "Memory"
    assert group["SkipLayerNormalization"] == "Normalization" and group["FastGelu"] == "Activation"
    assert group[IDLE_OP] == "Idle"
    assert (classified["group_source"] != "unmapped").all(), classified[classified["group_source"] == "unmapped"]
    gelu = ops[ops["op"] == "FastGelu"].iloc[0]
    assert gelu["module"] == "transformer.h.0.mlp.act" and gelu["module_type"] == "NewGELUActivation"


def test_ort_int8_dynamic_quantization_adds_quant_nodes(tmp_path, cache_dir):
    from ngbench.taxonomy import classify

    ctx = _ctx(tmp_path, "seq", quant=QuantConfig(name="int8"))
    flow = _flow(ctx, cache_dir, graph_optimization="disable")
    flow.prepare(_sequential_bundle())
    assert flow.facts()["quantization"].startswith("dynamic int8")
    classified = classify(profile_flow(flow, 1).ops)
    group = dict(zip(classified["op"], classified["op_group"], strict=True))
    assert group["DynamicQuantizeLinear"] == "Quantization"
    assert group["MatMulInteger"] == "GEMM"
    flow2 = _flow(ctx, cache_dir, graph_optimization="disable")
    flow2.prepare(_sequential_bundle())
    assert flow2.facts()["quantize_cache_hit"] is True


# ----------------------------------------------------------------------------- bad combinations
def test_provider_cuda_on_cpu_platform_is_refused(tmp_path):
    from ngbench.flows.ort.config import OrtConfig

    assert "platform=cuda" in OrtConfig(provider="cuda").check(_ctx(tmp_path))
    assert "precision=fp32" in OrtConfig().check(_ctx(tmp_path, precision="fp16"))
    assert OrtConfig().check(_ctx(tmp_path)) is None
    assert OrtConfig().resolved_provider(_ctx(tmp_path)) == "cpu"
    assert OrtConfig().resolved_provider(_ctx(tmp_path, device="cuda:0")) == "cuda"


def test_provider_cuda_without_cuda_ep_names_onnxruntime_gpu(tmp_path, cache_dir):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    from ngbench.flows.ort.config import OrtConfig

    ctx = _ctx(tmp_path, device="cuda:0", precision="fp16")
    assert "pip install onnxruntime-gpu" in OrtConfig(provider="cuda").check(ctx)


def test_modules_import_no_heavy_libraries():
    code = ("import sys, ngbench.flows.ort.flow, ngbench.flows.trt.flow, ngbench.trace.ort_profile, "
            "ngbench.trace.trt_profile, ngbench.flows.onnx.export; "
            "bad = [m for m in ('torch', 'onnxruntime', 'onnx', 'tensorrt') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- known answers: parsers
def _node(name, op, ts, dur, provider="CPUExecutionProvider"):
    return {"cat": "Node", "pid": 1, "tid": 1, "ph": "X", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
            "args": {"op_name": op, "provider": provider,
                     "input_type_shape": [{"float": [1, 8, 32]}, {"int64": [3]}]}}


def _run(ts, dur):
    return {"cat": "Session", "pid": 1, "tid": 1, "ph": "X", "name": "model_run", "ts": ts, "dur": dur, "args": {}}


ORT_PROFILE = [
    {"cat": "Session", "pid": 1, "tid": 1, "ph": "X", "name": "session_initialization", "ts": 0, "dur": 90,
     "args": {}},
    _run(100, 50), _node("warm", "Add", 110, 30),                              # warm-up run: dropped
    _run(1000, 100), _node("a", "Reshape", 1010, 20), _node("b", "MatMul", 1035, 40),
    _node("c", "Softmax", 1080, 10),
    _run(2000, 80), _node("a", "Reshape", 2005, 30), _node("b", "MatMul", 2040, 25),
    _node("c", "Softmax", 2070, 5),
]


def test_ort_profile_parser_known_answer():
    from ngbench.schema import normalise_events
    from ngbench.trace.ort_profile import cpu_windows

    scopes = {"b": ["encoder.proj", "Linear"]}
    result = attribute_windows(cpu_windows(ORT_PROFILE, scopes, runs=[1, 2]), Costs({}))
    ops = normalise_events(result.ops)
    assert result.iterations["profiled_us"].tolist() == [100.0, 80.0]
    assert result.iterations["busy_us"].tolist() == [70.0, 60.0]
    assert ops["op"].tolist() == ["Reshape", "MatMul", "Softmax", IDLE_OP] * 2
    assert ops["wall_us"].tolist() == [20.0, 40.0, 10.0, 30.0, 30.0, 25.0, 5.0, 20.0]
    assert ops["seq"].tolist() == [0, 1, 2, 3] * 2
    row = ops.iloc[1]
    assert (row["module"], row["module_type"], row["node"]) == ("encoder.proj", "Linear", "b")
    assert row["input_shapes"] == [[1, 8, 32], [3]] and row["input_dtypes"] == ["float", "int64"]
    assert row["provider"] == "CPUExecutionProvider"


def _kineto_trace():
    def x(name, cat, ts, dur, **args):
        return {"ph": "X", "name": name, "cat": cat, "ts": ts, "dur": dur, "pid": 1, "tid": 7, "args": args}

    return {"baseTimeNanoseconds": 1_000_000_000 - 500_000, "traceEvents": [
        x("ProfilerStep#0", "user_annotation", 590, 130),
        x("cudaLaunchKernel", "cuda_runtime", 615, 3, correlation=1),
        x("cudaLaunchKernel", "cuda_runtime", 655, 3, correlation=2),
        x("cudaLaunchKernel", "cuda_runtime", 700, 1, correlation=3),
        x("gemm_kernel", "kernel", 620, 40, correlation=1),
        x("softmax_kernel", "kernel", 665, 25, correlation=2),
        x("copy_kernel", "kernel", 702, 3, correlation=3),
    ]}


def test_cuda_launch_window_matching_known_answer():
    from ngbench.schema import normalise_events
    from ngbench.trace.kineto import events_from_trace
    from ngbench.trace.ort_profile import cuda_windows

    trace = _kineto_trace()
    ort_events = [_run(100, 100), _node("n1", "MatMul", 110, 20, "CUDAExecutionProvider"),
                  _node("n2", "Reshape", 135, 5, "CPUExecutionProvider"),
                  _node("n3", "Softmax", 150, 20, "CUDAExecutionProvider")]
    windows, misfit = cuda_windows(ort_events, {}, [0], [events_from_trace(trace)], 1_000_000_000)
    result = attribute_windows(windows, Costs({}))
    ops = normalise_events(result.ops)
    iteration_us = result.iterations["profiled_us"].tolist()
    assert misfit == 0.0 and iteration_us == [130.0] and result.iterations["busy_us"].tolist() == [68.0]
    assert ops["op"].tolist() == ["MatMul", "Reshape", "Softmax", UNATTRIBUTED_OP, IDLE_OP]
    assert ops["host_us"].tolist() == [20.0, 5.0, 20.0, 0.0, 0.0]
    assert ops["device_us"].tolist() == [40.0, 0.0, 25.0, 3.0, 0.0]
    assert ops["wall_us"].tolist() == [50.0, 0.0, 30.0, 3.0, 47.0]
    assert ops["kernels"].tolist() == [["gemm_kernel"], [], ["softmax_kernel"], ["copy_kernel"], []]
    assert ops["provider"].tolist()[:3] == ["CUDAExecutionProvider", "CPUExecutionProvider",
                                             "CUDAExecutionProvider"]
    assert sum(ops["wall_us"]) == pytest.approx(iteration_us[0])


def test_clock_alignment_falls_back_to_window_start():
    from ngbench.trace.ort_profile import align_offsets

    offsets, misfit = align_offsets([(100, 200), (300, 350)], [(590, 720), (790, 840)], 500.0)
    assert offsets == [500.0, 500.0] and misfit == 10.0          # 350 + 500 ends 10 µs after 840: tolerated
    offsets, misfit = align_offsets([(100, 200)], [(590, 720)], 10_000.0)
    assert offsets == [490.0] and misfit == 9_480.0


def test_scopes_of_rewritten_nodes():
    from ngbench.trace.onnx_scopes import resolve_scopes

    known = {"node_Gemm_1": ["h.0.mlp.c_fc", "Conv1D"], "node_mul_3": ["h.0.mlp.act", "NewGELUActivation"],
             "node_view_2": ["h.0.attn", "GPT2Attention"]}
    producers = {"mul_3": "node_mul_3", "view_2": "node_view_2"}
    nodes = [("x_QuantizeLinear", ["mul_3"], ["x_q"]), ("node_Gemm_1_MatMul_quant", ["x_q"], ["x"]),
             ("GPT2Gelu", ["gemm_out"], ["mul_3"]), ("view_2_QuantizeLinear", ["view_2"], ["q"]),
             ("Orphan", ["nothing"], ["none"])]
    assert resolve_scopes(nodes, known, producers) == {
        "x_QuantizeLinear": ["h.0.mlp.c_fc", "Conv1D"],            # its consumer's, not its input's
        "node_Gemm_1_MatMul_quant": ["h.0.mlp.c_fc", "Conv1D"], "GPT2Gelu": ["h.0.mlp.act", "NewGELUActivation"],
        "view_2_QuantizeLinear": ["h.0.attn", "GPT2Attention"], "Orphan": ["", ""]}


def test_cpu_fallback_names_the_cpu_nodes_their_types_and_share():
    """Case Study 1 on a hand-made GPU session: 2 of 5 nodes on the CPU provider take 60 of 100 µs."""
    import pandas as pd

    from ngbench.flows.ort.flow import cpu_fallback

    cuda, cpu = "CUDAExecutionProvider", "CPUExecutionProvider"
    ops = pd.DataFrame({
        "iteration": [0] * 5 + [1] * 5,
        "op": ["MatMul", "DynamicQuantizeLinear", "MatMulInteger", "MemcpyToHost", "Add"] * 2,
        "provider": [cuda, cpu, cpu, cuda, cuda] * 2,
        "wall_us": [10.0, 20.0, 40.0, 5.0, 25.0] * 2,
    })
    facts = cpu_fallback(ops, cpu_nodes=2)
    assert facts["cpu_nodes"] == 2
    assert facts["cpu_node_types"] == {"DynamicQuantizeLinear": 1, "MatMulInteger": 1}
    assert facts["cpu_wall_share"] == pytest.approx(0.6)
    (warning,) = facts["warnings"]
    assert "2 nodes on the CPU provider (DynamicQuantizeLinear x1, MatMulInteger x1), 60% of the time" in warning


def test_cpu_fallback_under_the_threshold_does_not_warn():
    import pandas as pd

    from ngbench.flows.ort.flow import cpu_fallback

    ops = pd.DataFrame({"iteration": [0, 0], "op": ["Shape", "MatMul"],
                        "provider": ["CPUExecutionProvider", "CUDAExecutionProvider"], "wall_us": [1.0, 99.0]})
    facts = cpu_fallback(ops, cpu_nodes=1)
    assert facts["cpu_wall_share"] == pytest.approx(0.01) and "warnings" not in facts


def test_quantize_room_stops_in_one_line_naming_the_disk_and_tmpdir(tmp_path, monkeypatch):
    """A 7 GiB model on a disk with 2 GiB free: one line with both sizes and the way out, before any work."""
    import shutil
    from collections import namedtuple

    from ngbench.flows.ort import flow as ort_flow

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda where: usage(100 * 2**30, 98 * 2**30, 2 * 2**30))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(ort_flow.tempfile, "tempdir", None)
    with pytest.raises(UserError) as raised:
        ort_flow.check_quantize_room(7 * 2**30, tmp_path)
    message = str(raised.value)
    assert "\n" not in message
    assert "7.0 GiB model needs about 8.8 GiB free" in message and "has 2.0 GiB" in message
    assert "TMPDIR=/dev/shm" in message
    monkeypatch.setattr(shutil, "disk_usage", lambda where: usage(100 * 2**30, 80 * 2**30, 20 * 2**30))
    ort_flow.check_quantize_room(7 * 2**30, tmp_path)      # room enough: no error


def test_onnx_bytes_counts_the_external_data(tmp_path):
    from ngbench.flows.ort.flow import onnx_bytes

    (tmp_path / "model.onnx").write_bytes(b"x" * 10)
    (tmp_path / "model.onnx.data").write_bytes(b"x" * 1000)
    (tmp_path / "other.onnx").write_bytes(b"x" * 5)
    assert onnx_bytes(str(tmp_path / "model.onnx")) == 1010
