"""flow=inductor: kernel-name parsing (known answers on real names), provenance comments, event
preparation, and one real compile of a tiny model on the CPU (one compile for the whole module)."""

import pandas as pd
import pytest
from conftest import profile_flow

from ngbench.config import QuantConfig
from ngbench.errors import UserError
from ngbench.flows.base import RunContext
from ngbench.flows.inductor.config import InductorConfig, InductorMode
from ngbench.flows.inductor.flow import InductorFlow
from ngbench.trace.inductor_code import (
    compiled_events,
    fused_ops_of,
    gemm_templates,
    kernel_origins_from_code,
    parse_kernel_name,
)

# Real kernel names: CPU ones gathered by compiling tiny modules with torch 2.14 on the CPU (conv/bn/relu,
# RMSNorm/SiLU/interpolate, tiny GPT-2, Linear/LayerNorm/GELU/softmax); CUDA ones from tiny GPT-2, Swin-T
# and an MLP (max-autotune) compiled on an H100 with torch 2.11 (marked H100), the others as Inductor names them.
REAL_NAMES = {
    "cpp_fused_gelu_native_layer_norm_0": ["gelu", "native_layer_norm"],
    "graph_0_cpp_fused__softmax_1": ["_softmax"],
    "cpp_fused__softmax_add_mul_1": ["_softmax", "add", "mul"],
    "cpp_fused_convolution_0": ["convolution"],
    "cpp_fused__adaptive_avg_pool2d__native_batch_norm_legit_no_training_relu_1":
        ["_adaptive_avg_pool2d", "_native_batch_norm_legit_no_training", "relu"],
    "cpp_fused__to_copy__unsafe_index_add_arange_clamp_mean_mul_pow_rsqrt_silu_sub_view_2":
        ["_to_copy", "_unsafe_index", "add", "arange", "clamp", "mean", "mul", "pow", "rsqrt", "silu", "sub", "view"],
    "cpp_fused_add_embedding_native_layer_norm_unsqueeze_0": ["add", "embedding", "native_layer_norm", "unsqueeze"],
    "cpp_fused_cat_split_transpose_view_1": ["cat", "split", "transpose", "view"],
    "cpp_fused_add_mul_pow_tanh_view_3": ["add", "mul", "pow", "tanh", "view"],
    "triton_poi_fused_add_0": ["add"],
    "triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_1": ["_to_copy", "add", "mean", "mul", "pow", "rsqrt"],
    "triton_per_fused__softmax_2": ["_softmax"],
    "triton_tem_fused_addmm_relu_3": ["addmm", "relu"],
    "triton_tem_fused_addmm_relu_t_0": ["addmm", "relu", "t"],                      # H100, max-autotune
    "triton_per_fused_add_arange_embedding_native_layer_norm_unsqueeze_0":         # H100, GPT-2
        ["add", "arange", "embedding", "native_layer_norm", "unsqueeze"],
    "triton_poi_fused_add_addmm_mul_pow_tanh_view_5": ["add", "addmm", "mul", "pow", "tanh", "view"],  # H100
    "triton_per_fused_clone_convolution_native_layer_norm_transpose_view_0":       # H100, Swin-T
        ["clone", "convolution", "native_layer_norm", "transpose", "view"],
    "triton_poi_fused_add_addmm_cat_clone_slice_transpose_view_5":                 # H100, Swin-T
        ["add", "addmm", "cat", "clone", "slice", "transpose", "view"],
    "triton_per_fused_native_layer_norm_0": ["native_layer_norm"],
    "triton_poi_fused_atan2_0": ["atan2"],
    "triton_poi_0": [],                 # descriptive names off: nothing to parse
    "aten::addmm": [],                  # extern call: not a generated kernel
}


@pytest.mark.parametrize("name,ops", list(REAL_NAMES.items()))
def test_parse_real_kernel_names(name, ops):
    assert parse_kernel_name(name) == [f"aten::{op}" for op in ops]


def test_parse_uses_sorted_order_to_split():
    vocabulary = {"index", "put", "index_put", "add"}
    assert parse_kernel_name("triton_poi_fused_add_index_put_0", vocabulary) == ["aten::add", "aten::index_put"]
    assert parse_kernel_name("triton_poi_fused_unknown_op_0", vocabulary) == ["aten::unknown_op"]


WRAPPER_CODE = '''
# kernel path: /tmp/torchinductor_user/ab/cabc.py
# Topologically Sorted Source Nodes: [hidden_states, to, pow_1, variance, add, rsqrt], Original ATen: [aten._to_copy, aten.pow, aten.mean, aten.add, aten.rsqrt, aten.mul]
# Source node to ATen node mapping:
#   add => add
# Graph fragment:
#   %arg0_1 : Tensor "f16[1, 8, 32][256, 32, 1]cuda:0" = PlaceHolder[target=arg0_1]
triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_0 = async_compile.triton('triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_0', \'\'\'
import triton
\'\'\', device_str='cuda')

triton_poi_fused_gelu_1 = async_compile.triton('triton_poi_fused_gelu_1', \'\'\'
\'\'\', device_str='cuda')

# kernel path: /tmp/torchinductor_user/cd/ccd.py
# Topologically Sorted Source Nodes: [input_1, input_2], Original ATen: [aten.t, aten.addmm, aten.relu]
triton_tem_fused_addmm_relu_t_2 = async_compile.triton('triton_tem_fused_addmm_relu_t_2', \'\'\'
@triton_heuristics.template(
num_stages=2,
)
@triton.jit
def triton_tem_fused_addmm_relu_t_2(arg_A, arg_B, out_ptr0):
    pass
\'\'\', device_str='cuda')

def call(args):
        # Topologically Sorted Source Nodes: [linear], Original ATen: [aten.t, aten.addmm]
        extern_kernels.addmm(arg1_1, arg2_1, reinterpret_tensor(arg0_1, (16, 32), (1, 16), 0), out=buf0)
'''


def test_origins_from_generated_code():
    origins = kernel_origins_from_code(WRAPPER_CODE)
    assert origins == {"triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_0":
                       ["aten::_to_copy", "aten::pow", "aten::mean", "aten::add", "aten::rsqrt", "aten::mul"],
                       "triton_tem_fused_addmm_relu_t_2": ["aten::t", "aten::addmm", "aten::relu"]}
    assert gemm_templates(WRAPPER_CODE) == {"triton_tem_fused_addmm_relu_t_2"}


def test_gemm_origins_of_pointwise_kernels_are_dropped():
    # real CUDA names (GPT-2, H100): an addmm's bias add fused into the next kernel, SDPA's mask kernel
    origins, templates = {}, {"triton_tem_fused_addmm_relu_t_0"}
    assert fused_ops_of("triton_per_fused_add_addmm_native_layer_norm_view_6", origins, templates) == \
        ["aten::add", "aten::native_layer_norm", "aten::view"]
    assert "aten::_scaled_dot_product_efficient_attention" not in fused_ops_of(
        "triton_poi_fused__scaled_dot_product_efficient_attention_add_arange_expand_le_scalar_tensor_split_"
        "transpose_unsqueeze_view_where_3", origins, templates)
    assert fused_ops_of("triton_tem_fused_addmm_relu_t_0", origins, templates) == \
        ["aten::addmm", "aten::relu", "aten::t"]
    assert fused_ops_of("cpp_fused_convolution_0", origins, templates) == ["aten::convolution"]  # only GEMM: kept
    assert fused_ops_of("aten::addmm", origins, templates) == []


def _events(rows):
    columns = ["name", "cat", "ts", "dur", "correlation"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["end"] = frame["ts"] + frame["dur"]
    frame["pid"], frame["tid"] = "1", "7"
    frame["external_id"], frame["input_dims"], frame["input_types"] = -1, None, None
    frame.loc[frame["cat"].isin(["kernel"]), "tid"] = "stream 7"
    frame["stream"] = frame["cat"].map({"kernel": 7}).fillna(-1).astype(int)
    return frame[["name", "cat", "ts", "dur", "end", "pid", "tid", "stream", "correlation", "external_id",
                  "input_dims", "input_types"]]


def test_cuda_like_trace_gives_one_row_per_kernel():
    from ngbench.trace import kineto
    from ngbench.trace.reconstruct import Costs
    from ngbench.trace.result import attribute_windows

    events = _events([
        ("ProfilerStep#0", "user_annotation", 0, 100, -1),
        ("TorchDynamo Cache Lookup", "cpu_op", 1, 3, -1),
        ("Torch-Compiled Region: 0/0", "cpu_op", 5, 90, -1),
        ("## Call CompiledFxGraph fabc ##", "cpu_op", 10, 80, -1),
        ("triton_poi_fused_add_0", "cpu_op", 20, 10, -1),
        ("cuLaunchKernelEx", "cuda_driver", 22, 6, 1),
        ("cudaLaunchKernel", "cuda_runtime", 35, 2, 2),      # a launch no op encloses
        ("aten::mm", "cpu_op", 60, 20, -1),
        ("cudaLaunchKernel", "cuda_runtime", 62, 2, 3),
        ("triton_poi_fused_add_0", "kernel", 40, 10, 1),
        ("triton_per_fused__softmax_1", "kernel", 55, 15, 2),
        ("sm90_xmma_gemm_f32f32", "kernel", 75, 15, 3),
    ])
    result = attribute_windows(kineto.windows(events, compiled_events(events)), Costs({}))
    ops = result.ops
    assert ops["op"].tolist() == ["triton_poi_fused_add_0", "triton_per_fused__softmax_1", "aten::mm", "[idle]"]
    assert ops["kernels"].tolist()[:3] == [["triton_poi_fused_add_0"], ["triton_per_fused__softmax_1"],
                                          ["sm90_xmma_gemm_f32f32"]]
    assert ops["wall_us"].sum() == pytest.approx(result.iterations["rebuilt_us"].iloc[0])


def test_unsupported_combinations():
    ctx = RunContext(device="cpu", precision="fp32", batch_size=1, quant=None, model_name="m", run_dir=".")
    assert InductorConfig(mode=InductorMode["max-autotune"]).check(ctx) is None
    ctx.quant = QuantConfig(name="int8")
    assert "+quant" in InductorConfig().check(ctx)


# ------------------------------------------------------------------ one real compile on the CPU


def _tiny_model():
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)
            self.fc1, self.norm, self.act, self.fc2 = nn.Linear(8, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 8)

        def forward(self, x):
            h = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
            return torch.softmax(self.fc2(self.act(self.norm(self.fc1(h)))), dim=-1)

    return Tiny().eval()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    import torch

    from ngbench.models.base import ModelBundle
    from ngbench.taxonomy import classify

    torch.manual_seed(0)
    bundle = ModelBundle(model=_tiny_model(), args=(torch.randn(2, 3, 8, 8),))
    ctx = RunContext(device="cpu", precision="fp32", batch_size=2, quant=None, model_name="tiny",
                     run_dir=str(tmp_path_factory.mktemp("run")))
    flow = InductorFlow(ctx, InductorConfig(name="inductor"))
    flow.prepare(bundle)
    result = profile_flow(flow, 2)
    return flow, result, classify(result.ops)


@pytest.mark.slow
def test_kernels_are_rows_with_fused_ops(compiled):
    _, _, ops = compiled
    kernels = ops[ops["op"].str.startswith("cpp_fused_")]
    assert len(kernels) >= 2 * 2
    assert all(len(f) > 0 for f in kernels["fused_ops"])
    assert any(len(f) > 1 for f in kernels["fused_ops"])
    assert not ops["op"].str.startswith("graph_").any()
    assert (kernels["module_type"] == "Tiny").all()
    assert set(kernels["group_source"]) == {"fused"}


@pytest.mark.slow
def test_extern_gemms_are_gemm(compiled):
    _, _, ops = compiled
    externs = ops[ops["op"].isin(["aten::addmm", "aten::mm", "aten::convolution"])]
    assert len(externs) >= 2 * 3
    assert externs["is_gemm"].all()
    assert all(len(f) == 0 for f in externs["fused_ops"])


@pytest.mark.slow
def test_wall_sums_to_iteration_latency(compiled):
    _, result, ops = compiled
    sums = ops.groupby("iteration")["wall_us"].sum().tolist()
    assert sums == pytest.approx(result.iterations["rebuilt_us"].tolist(), rel=1e-6)
    assert not ops["op"].str.match(r"^(Torch-Compiled Region|## Call CompiledFxGraph|TorchDynamo)").any()


@pytest.mark.slow
def test_compile_time_recorded(compiled):
    flow, _, _ = compiled
    facts = flow.facts()
    assert facts["compile_s"] > 0 and facts["compiled_graphs"] >= 1 and facts["generated_kernels"] >= 2
    assert facts["mode"] == "default"


@pytest.mark.slow
def test_compile_failure_is_one_line_user_error(tmp_path):
    import torch
    from torch import nn

    from ngbench.models.base import ModelBundle

    class Breaks(nn.Module):
        def forward(self, x):
            torch._dynamo.graph_break()
            return x + 1

    ctx = RunContext(device="cpu", precision="fp32", batch_size=1, quant=None, model_name="breaks",
                     run_dir=str(tmp_path))
    flow = InductorFlow(ctx, InductorConfig(name="inductor", fullgraph=True))
    with pytest.raises(UserError, match=r"^flow=inductor: torch.compile failed for breaks: \S") as info:
        flow.prepare(ModelBundle(model=Breaks(), args=(torch.ones(2),)))
    assert "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("second_batch", [1, 2])   # 1: Dynamo must recompile; 2: the same graph again (cache hit)
def test_each_cell_compiles_even_after_dynamos_recompile_limit(tmp_path, second_batch):
    """In a sweep, every cell's model runs through the same forward code: once Dynamo's recompile_limit is hit
    it runs eager without an error. A second cell in the same process (limit 1 here) must still compile
    and say so, and a cell that generates no code says it ran eager."""
    import torch

    from ngbench.models.base import ModelBundle

    def cell(batch: int) -> InductorFlow:
        ctx = RunContext(device="cpu", precision="fp32", batch_size=batch, quant=None, model_name="tiny",
                         run_dir=str(tmp_path))
        flow = InductorFlow(ctx, InductorConfig(name="inductor"))
        flow.prepare(ModelBundle(model=_tiny_model(), args=(torch.randn(batch, 3, 8, 8),)))
        return flow

    with torch._dynamo.config.patch(recompile_limit=1):
        first, second = cell(2), cell(second_batch)
    for flow in (first, second):
        assert flow.facts()["compiled_graphs"] >= 1 and flow.facts()["generated_kernels"] >= 2
        assert flow.warnings() == []


def test_a_cell_that_compiled_nothing_warns_that_it_ran_eager(monkeypatch, tmp_path):
    """When torch.compile leaves no generated code behind (Dynamo skipped the frame), the cell's warnings say
    that the model ran eager."""
    import torch

    from ngbench.models.base import ModelBundle

    monkeypatch.setattr(torch, "compile", lambda model, **_: model)   # what a skipped frame amounts to
    ctx = RunContext(device="cpu", precision="fp32", batch_size=1, quant=None, model_name="tiny", run_dir=str(tmp_path))
    flow = InductorFlow(ctx, InductorConfig(name="inductor"))
    flow.prepare(ModelBundle(model=_tiny_model(), args=(torch.randn(1, 3, 8, 8),)))
    assert flow.facts()["compiled_graphs"] == 0
    assert flow.warnings() == ["flow=inductor: torch.compile generated no code for tiny; the model ran eager "
                               "(Dynamo skipped it; TORCH_LOGS=recompiles says why)"]
