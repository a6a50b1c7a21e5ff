"""flow=ort: ONNX export cache and ORT CPU profiling end to end (needs onnxruntime; its parsers: test_ort_parsing.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import profile_flow

from ngbench.config import QuantConfig
from ngbench.errors import UserError
from ngbench.flows.base import RunContext
from ngbench.schema import EVENT_COLUMNS, IDLE_OP

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


def _host_us(call) -> float:
    began = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - began) / 1000.0


# ----------------------------------------------------------------------------- export
@pytest.mark.slow
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


@pytest.mark.slow
def test_dynamic_batch_export_serves_every_batch_size_from_one_entry(tmp_path):
    """flow.dynamic_batch: the inputs' first dimension is the symbol `batch`, the cache key leaves it out, so a
    batch-2 bundle reuses the batch-1 export, and ONNX Runtime runs it at batch 3; a fixed-shape export of the
    same model is another entry, with its batch size in the graph."""
    import onnx
    import onnxruntime as ort

    from ngbench.flows.onnx.export import BATCH_AXIS, export_onnx
    from ngbench.models.base import ModelBundle

    args = dict(model_name="gpt2_tiny", model_cfg={}, precision="fp32", opset=18, cache_dir=str(tmp_path))
    one = _gpt2_bundle()
    two = ModelBundle(model=one.model, kwargs={"input_ids": torch.randint(0, 100, (2, 8))}, input_names=["input_ids"],
                      output_names=["logits"])
    first = export_onnx(one, dynamic_batch=True, **args)
    second = export_onnx(two, dynamic_batch=True, **args)
    assert not first.cache_hit and second.cache_hit and second.path == first.path
    assert first.exporter == "dynamo"   # not the TorchScript fallback: the dynamic shapes suit torch.export
    dims = onnx.load(first.path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == [BATCH_AXIS, 8]
    logits = ort.InferenceSession(first.path).run(None, {"input_ids": np.zeros((3, 8), dtype=np.int64)})[0]
    assert logits.shape == (3, 8, 100)
    fixed = export_onnx(two, **args)
    assert fixed.path != first.path
    dims = onnx.load(fixed.path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == [2, 8]


def test_contiguous_initializers_copies_strided_views_to_the_same_values(tmp_path):
    import ml_dtypes
    import onnx
    import onnx_ir as ir
    from onnx import numpy_helper

    from ngbench.flows.onnx.export import contiguous_initializers

    weight = np.arange(12, dtype=np.float32).reshape(3, 4)
    half = np.arange(6, dtype=ml_dtypes.bfloat16).reshape(2, 3)          # a dtype torch.from_numpy refuses
    given = {"w": weight.T, "b": half.T, "kept": weight}
    values = [ir.Value(name=name, shape=ir.Shape(array.shape), type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                       const_value=ir.Tensor(array, name=name)) for name, array in given.items()]
    out = ir.Value(name="y")
    graph = ir.Graph([], [out], nodes=[ir.Node("", "Identity", [values[0]], outputs=[out])], initializers=values,
                     opset_imports={"": 18})
    model = ir.Model(graph, ir_version=10)
    kept = model.graph.initializers["kept"].const_value

    assert contiguous_initializers(model) == 2                 # the two views, not the C-ordered one
    assert model.graph.initializers["kept"].const_value is kept
    for name in ("w", "b"):
        tensor = model.graph.initializers[name].const_value
        assert tensor.raw.flags.c_contiguous and tensor.name == name
    assert model.graph.initializers["b"].const_value.dtype == ir.DataType.BFLOAT16
    ir.save(model, str(tmp_path / "m.onnx"))
    saved = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "m.onnx")).graph.initializer}
    assert np.array_equal(saved["w"], weight.T)
    assert np.array_equal(saved["b"].astype(np.float32), half.T.astype(np.float32))
    assert contiguous_initializers(model) == 0                 # nothing left to copy


@pytest.mark.slow
def test_export_then_release_leaves_no_reference_to_the_torch_weights(tmp_path):
    """The exported graph wrapped the model's parameters and stayed reachable through onnxscript's rewrite
    rules, so the weights outlived `release_weights` (on CUDA, ONNX Runtime then ran out of memory)."""
    import gc

    from ngbench.flows.onnx.export import export_onnx
    from ngbench.flows.onnx.flow import release_weights

    bundle = _sequential_bundle()
    storages = {param.untyped_storage().data_ptr() for param in bundle.model.parameters()}

    def alive() -> int:
        def storage(obj):
            try:
                return obj.untyped_storage().data_ptr()
            except (RuntimeError, NotImplementedError):   # fake and meta tensors have no data
                return None
        return sum(1 for obj in gc.get_objects()
                   if type(obj) in (torch.Tensor, torch.nn.Parameter) and storage(obj) in storages)

    assert alive() == len(storages)
    export_onnx(bundle, model_name="seq", model_cfg={}, precision="fp32", opset=18, cache_dir=str(tmp_path))
    gc.collect()
    # the exported graph no longer wraps the parameters (release_initializers) ...
    assert not any(type(holder).__name__ == "TorchTensor"
                   for param in bundle.model.parameters() for holder in gc.get_referrers(param))
    release_weights(bundle)
    assert alive() == 0                     # ... and their storage is gone, whoever else holds it


def test_release_weights_keeps_an_input_that_shares_a_buffer():
    from ngbench.flows.onnx.flow import release_weights
    from ngbench.models.base import ModelBundle

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.full((3,), 2.0))
            self.register_buffer("offset", torch.arange(3.0))

        def forward(self, x):
            return x * self.scale + self.offset

    model = Scaled()
    bundle = ModelBundle(model=model, args=(model.offset,))          # the input is the model's own buffer
    release_weights(bundle)
    assert bundle.args[0].tolist() == [0.0, 1.0, 2.0]
    assert all(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()])


@pytest.mark.slow
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
@pytest.mark.slow
def test_ort_cpu_sequential(tmp_path, cache_dir):
    ctx = _ctx(tmp_path, "seq")
    flow = _flow(ctx, cache_dir)
    flow.prepare(_sequential_bundle())
    out = flow.infer()
    assert out[0].shape == (4, 8)
    result = profile_flow(flow, 3)
    ops = _check_table(result)
    assert len(result.iterations) == 3
    # by hand: Linear -> Gemm, LayerNorm -> LayerNormalization, GELU (erf form: x * 0.5 * (1 + erf(x / sqrt 2)))
    # -> Div, Erf, Add, Mul, Mul, Linear -> Gemm, Softmax -> Softmax: nine nodes, then the idle row
    first = ops[ops["iteration"] == ops["iteration"].min()]   # an iteration may be left out as stalled
    assert first["op"].tolist() == ["Gemm", "LayerNormalization", "Div", "Erf", "Add", "Mul", "Mul", "Gemm", "Softmax",
                                    IDLE_OP]
    assert first["module_type"].tolist()[:9] == ["Linear", "LayerNorm"] + ["GELU"] * 5 + ["Linear", "Softmax"]
    facts = flow.facts()
    assert facts["nodes_by_provider"] == {"CPUExecutionProvider": 9}
    assert {"export_s", "session_build_s", "ort_version", "providers"} <= set(facts)
    # ORT's profile is in microseconds: a profiled iteration is a few times a clean one timed on this process's
    # clock (ORT's profiler writes an event per node), not 1000x off either way
    clean_us = float(np.median([_host_us(flow.infer) for _ in range(50)]))
    assert 0.5 < result.kept["profiled_us"].median() / clean_us < 50, (result.kept["profiled_us"].tolist(), clean_us)
    # and the nodes are most of each run (the rest is ORT's own work between them, the [idle] row)
    nodes_us = ops[ops["op"] != IDLE_OP].groupby("iteration")["host_us"].sum()
    assert (nodes_us / result.kept.set_index("iteration")["profiled_us"]).min() > 0.2


@pytest.mark.slow
def test_arena_shrinkage_passes_the_run_option_to_both_sessions(tmp_path, cache_dir):
    ctx = _ctx(tmp_path, "seq")
    plain = _flow(ctx, cache_dir)
    plain.prepare(_sequential_bundle())
    assert plain.clean.run_options is None and plain.facts()["arena_shrinkage"] is False
    flow = _flow(ctx, cache_dir, arena_shrinkage=True)
    flow.prepare(_sequential_bundle())
    options = flow.clean.run_options
    assert options.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
    assert np.array_equal(flow.infer()[0], plain.infer()[0])     # the same model, the same outputs
    result = profile_flow(flow, 2)                               # the profiled session runs with it too
    ops = _check_table(result)
    assert set(ops["op"]) == {"Gemm", "LayerNormalization", "Div", "Erf", "Add", "Mul", "Softmax", IDLE_OP}
    assert flow.facts()["arena_shrinkage"] is True


def _embedding_bundle():
    """An embedding (a Gather, which reads its weight at run time on every provider) and a Linear."""
    from ngbench.models.base import ModelBundle

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 4)).eval()
    return ModelBundle(model=model, args=(torch.randint(0, 10, (2, 3)),), input_names=["ids"], output_names=["y"])


def test_shared_weights_are_read_in_place_by_every_session(tmp_path, cache_dir):
    """flow.share_weights: the weights handed to two sessions are one memory. Zeroing the embedding's shared
    value after both sessions are built makes both output the Linear's bias alone, for every token."""
    from ngbench.flows.ort.flow import OrtSession, shared_weights

    flow = _flow(_ctx(tmp_path, "emb"), cache_dir)
    flow.prepare(_embedding_bundle())
    assert "shared_weights" not in flow.facts()          # the CPU provider: each session loads its own
    plain = flow.infer()[0]
    flow.shared = shared_weights(flow.model_path, "cpu")
    assert {tuple(v.shape()) for v in flow.shared.values()} == {(10, 8), (8, 4)}   # the 1-D bias is not shared
    first, second = OrtSession(flow.model_path, flow), OrtSession(flow.model_path, flow)
    assert np.array_equal(first.run()[0], plain) and np.array_equal(second.run()[0], plain)
    embedding = next(v for v in flow.shared.values() if v.shape() == [10, 8])
    embedding.update_inplace(np.zeros((10, 8), np.float32))
    for session in (first, second):
        out = session.run()[0]
        assert np.allclose(out, out[0, 0]) and not np.allclose(plain, plain[0, 0])   # every row: the bias


def test_shared_weights_without_dlpack_say_what_to_do(tmp_path, cache_dir, monkeypatch):
    """An onnxruntime without OrtValue.from_dlpack: one line naming the option that turns sharing off."""
    from onnxruntime.capi import _pybind_state

    from ngbench.errors import UserError
    from ngbench.flows.ort.flow import shared_weights

    flow = _flow(_ctx(tmp_path, "emb"), cache_dir)
    flow.prepare(_embedding_bundle())
    monkeypatch.delattr(_pybind_state.OrtValue, "from_dlpack")
    with pytest.raises(UserError, match=r"flow.share_weights needs OrtValue.from_dlpack.*flow.share_weights=false"):
        shared_weights(flow.model_path, "cpu")


@pytest.mark.slow
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


@pytest.mark.slow
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
