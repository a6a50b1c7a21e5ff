"""Taxonomy: a table of real operator names with the group each must land in."""

import pandas as pd
import pytest

from ngbench.taxonomy import classify, load_taxonomy

REAL_OPS = [
    ("aten::linear", "", "GEMM", "matmul"), ("aten::addmm", "", "GEMM", "matmul"),
    ("aten::conv2d", "", "GEMM", "conv"), ("aten::bmm", "", "GEMM", "matmul"),
    ("aten::scaled_dot_product_attention", "", "GEMM", "attention"),
    ("aten::_scaled_dot_product_flash_attention", "", "GEMM", "attention"),
    ("aten::layer_norm", "", "Normalization", "normalization"),
    ("aten::batch_norm", "", "Normalization", "normalization"),
    ("aten::gelu", "", "Activation", "activation"), ("aten::silu", "", "Activation", "activation"),
    ("aten::relu_", "", "Activation", "activation"),
    ("aten::softmax", "", "Logit", "softmax"), ("aten::_softmax", "", "Logit", "softmax"),
    ("torchvision::nms", "", "RoI", "roi"), ("torchvision::roi_align", "", "RoI", "roi"),
    ("aten::upsample_bilinear2d", "", "Interpolation", "interpolation"),
    ("aten::max_pool2d", "", "Pooling", "pooling"), ("aten::embedding", "", "Embedding", "embedding"),
    ("aten::view", "", "Memory", "memory"), ("aten::permute", "", "Memory", "memory"),
    ("aten::contiguous", "", "Memory", "memory"), ("aten::cat", "", "Memory", "memory"),
    ("aten::_to_copy", "", "Memory", "memory"), ("Memcpy HtoD (Pageable -> Device)", "", "Memory", "copy"),
    ("aten::add", "", "Elementwise", "elementwise"), ("aten::div", "", "Elementwise", "elementwise"),
    ("aten::neg", "", "Elementwise", "elementwise"), ("aten::mean", "", "Elementwise", "reduction"),
    ("aten::topk", "", "Other", "sort"), ("aten::_grouped_mm", "", "GEMM", "matmul"),
    ("aten::histc", "", "Other", "routing"), ("If", "", "Other", "control_flow"),
    ("aten::dequantize", "", "Quantization", "quantization"),
    ("bitsandbytes::int8_vectorwise_quant", "", "Quantization", "quantization"),
    ("bitsandbytes::int8_linear_matmul", "", "GEMM", "int8_matmul"),
    ("aten::_transform_bias_rescale_qkv", "", "Elementwise", "qkv_bias_rescale"),
]


@pytest.mark.parametrize("op,module_type,group,kind", REAL_OPS)
def test_real_op_names(op, module_type, group, kind):
    result = load_taxonomy().classify_one(op, module_type)
    assert (result.group, result.kind) == (group, kind)


def test_module_wins_for_norm_and_activation_modules():
    taxonomy = load_taxonomy()
    for module_type in ("LlamaRMSNorm", "FrozenBatchNorm2d", "DetrFrozenBatchNorm2d", "LayerNorm"):
        result = taxonomy.classify_one("aten::mul", module_type)
        assert (result.group, result.group_source) == ("Normalization", "module")
    for module_type in ("NewGELUActivation", "SiLU", "GELUActivation"):
        result = taxonomy.classify_one("aten::tanh" if module_type == "NewGELUActivation" else "aten::mul", module_type)
        assert (result.group, result.group_source) == ("Activation", "module")
    # a GEMM stays GEMM, and ops in ordinary modules keep their own group
    assert taxonomy.classify_one("aten::addmm", "NewGELUActivation").group == "GEMM"
    assert taxonomy.classify_one("aten::mul", "GPT2MLP").group == "Elementwise"
    assert taxonomy.classify_one("aten::mul", "GPT2MLP").group_source == "op"


def test_fused_kernels_take_the_most_specific_group():
    taxonomy = load_taxonomy()
    assert taxonomy.classify_one("k0", "", ("convolution", "native_batch_norm", "relu")).group == "GEMM"
    fused = taxonomy.classify_one("k1", "", ("add", "native_layer_norm"))
    assert (fused.group, fused.group_source) == ("Normalization", "fused")
    assert taxonomy.classify_one("k2", "", ("add", "mul", "tanh")).group == "Activation"
    assert taxonomy.classify_one("k3", "", ("view", "add")).group == "Elementwise"


def test_idle_unmapped_and_vectorised_classify():
    ops = pd.DataFrame({"op": ["[idle]", "mystery::op", "aten::add"], "module_type": ["", "", ""],
                        "fused_ops": [[], [], []]})
    out = classify(ops)
    assert list(out["op_group"]) == ["Idle", "Other", "Elementwise"]
    assert list(out["group_source"]) == ["idle", "unmapped", "op"]
    assert list(out["is_gemm"]) == [False, False, False]
    assert list(out["kind"]) == ["idle", "unmapped", "elementwise"]
    unknown_module = classify(ops.assign(module_type=[None, None, None]))
    assert list(unknown_module["op_group"]) == ["Idle", "Other", "Elementwise"]


def test_unmapped_ops_are_counted_by_name():
    from ngbench.taxonomy import unmapped_ops

    ops = pd.DataFrame({"op": ["mystery::op", "aten::add", "mystery::op", "odd"], "module_type": [""] * 4})
    assert unmapped_ops(classify(ops)) == {"mystery::op": 2, "odd": 1}


def test_each_rule_kind_gives_its_kind_and_source():
    taxonomy = load_taxonomy()
    gemm = taxonomy.classify_one("aten::addmm", "NewGELUActivation")       # an op rule's GEMM beats the module
    assert (gemm.kind, gemm.group, gemm.group_source) == ("matmul", "GEMM", "op")
    norm = taxonomy.classify_one("aten::mul", "LlamaRMSNorm")               # a module rule
    one_source = taxonomy.classify_one("triton_poi_fused_mul_0", "LlamaRMSNorm", ("mul",))
    assert (one_source.group, one_source.group_source) == ("Normalization", "module")   # one source: the module wins
    assert (norm.kind, norm.group, norm.group_source) == ("normalization_module", "Normalization", "module")


@pytest.mark.parametrize("kernel", [
    "cpp_fused__scaled_dot_product_flash_attention_for_cpu_clone_index_0",
    "triton_poi_fused__scaled_dot_product_efficient_attention_clone_3",
    "graph_0_cpp_fused__scaled_dot_product_flash_attention_for_cpu__to_copy_add_1",
])
def test_generated_kernel_named_after_attention_is_classified_by_its_sources(kernel):
    # Inductor names the layout copy it makes for an SDPA input after the SDPA node; the kernel itself
    # only copies, so its group comes from its fused ops, not from the attention in its name
    result = load_taxonomy().classify_one(kernel, "SwinTransformer", ("aten::clone", "aten::permute"))
    assert (result.group, result.group_source) == ("Memory", "fused")


@pytest.mark.parametrize("op,container", [("aten::_transformer_encoder_layer_fwd", True),
                                          ("aten::_native_multi_head_attention", True),
                                          ("MatMul8bitLt", True), ("aten::linear", False),
                                          ("aten::scaled_dot_product_attention", False)])
def test_fused_fast_paths_are_opened_as_containers(op, container):
    """PyTorch's encoder fast path is one C++ op around real aten calls: its children are the operators."""
    assert load_taxonomy().is_container(op) is container


def test_a_taxonomy_file_read_afresh_gives_each_rule_its_group_and_kind(tmp_path):
    """load_taxonomy(path) builds the rules anew (the packaged table is cached once per process): a rule's kind
    defaults to its name, containers get no group, and fused ops none of which is known are unmapped Other."""
    from importlib import resources

    path = tmp_path / "taxonomy.yaml"
    path.write_text(resources.files("ngbench").joinpath("taxonomy.yaml").read_text())
    taxonomy = load_taxonomy(str(path))
    norm = taxonomy.match_op("aten::layer_norm")
    assert (norm.name, norm.group, norm.kind) == ("normalization", "Normalization", "normalization")
    assert (taxonomy.match_op("aten::conv2d").group, taxonomy.match_op("aten::conv2d").kind) == ("GEMM", "conv")
    assert taxonomy.match_module("LlamaRMSNorm").group == "Normalization"
    assert {rule.group for rule in taxonomy.containers} == {""}
    assert taxonomy.classify_one("k", "", ("mystery::a", "mystery::b")) == \
        taxonomy.classify_one("mystery::c", "", ())
    unknown = taxonomy.classify_one("k", "", ("mystery::a", "mystery::b"))
    assert (unknown.kind, unknown.group, unknown.group_source) == ("unmapped", "Other", "unmapped")
    fused = taxonomy.classify_one("k", "", ("add", "gelu"))
    assert (fused.kind, fused.group, fused.group_source) == ("activation", "Activation", "fused")
    assert taxonomy.own_kernel_classes("GEMM") == ("gemm", "conv", "attention")
    assert taxonomy.own_kernel_classes("Idle") == ()


def test_classify_reads_the_module_type_column_and_a_missing_fused_list():
    ops = pd.DataFrame({"op": ["aten::mul", "aten::mul"], "module_type": ["LlamaRMSNorm", None],
                        "fused_ops": [None, ["aten::add", "aten::gelu"]]})
    out = classify(ops)
    assert list(out["op_group"]) == ["Normalization", "Activation"]
    assert list(out["group_source"]) == ["module", "fused"]
