"""Roofline inputs: FLOPs and bytes moved per operator, from its input shapes, dtypes and non-tensor input
values; and the device peaks they are compared with (`ngbench.roofline.specs`).

One table (`FORMULAS`, op name -> small function) for the aten ops and ONNX op types of the zoo; element-wise
and activation ops are recognised through the taxonomy's own rules, so their list lives in one place. Output
shapes are not recorded by the profilers: each formula derives them (a convolution from its stride, padding
and dilation in `input_values`; an element-wise op by broadcasting). An op no formula covers, or whose
inputs do not determine the answer (a reduction over axes the profile does not name, ONNX Conv without its
attributes, a TensorList input), gets null: never a guess.

Conventions (docs/kernels.md): a multiply-add is 2 FLOPs; element-wise and activation ops count one FLOP per
output element (a transcendental counts as one); bytes are the compulsory traffic, each input read once and
each output written once. Copies that happen only when needed (contiguous, reshape, flatten, to, ONNX
Reshape...) count their bytes when the op ran device work and 0 when it ran none; on a CPU run, where that is
not visible, they are null.
"""

from __future__ import annotations

from collections.abc import Callable

from ngbench.roofline import compute as c
from ngbench.roofline import movement as m
from ngbench.roofline.call import ELEMENTWISE_RULES, UNKNOWN, Call, Work

VIEW_OPS = ("view _unsafe_view view_as permute transpose transpose_ t t_ numpy_T expand expand_as squeeze squeeze_ "
            "unsqueeze unsqueeze_ slice select narrow as_strided detach detach_ alias split split_with_sizes "
            "unsafe_split tensor_split chunk unsafe_chunk unbind unflatten movedim swapaxes moveaxis diagonal "
            "broadcast_to lift_fresh _reshape_alias resolve_conj resolve_neg empty empty_like empty_strided").split()

FORMULAS: dict[str, Callable[[Call], Work]] = {
    **{f"aten::{op}": c.matmul for op in ("mm", "bmm", "matmul")},
    "aten::addmm": c.addmm, "aten::baddbmm": c.addmm, "aten::_addmm_activation": c.addmm, "aten::linear": c.linear,
    **{f"aten::conv{n}d": c.conv_nd for n in (1, 2, 3)},
    **{f"aten::conv_transpose{n}d": c.conv_transpose for n in (1, 2, 3)},
    "aten::convolution": c.convolution, "aten::_convolution": c.convolution,
    **{f"aten::{op}": c.attention for op in ("scaled_dot_product_attention", "_scaled_dot_product_flash_attention",
                                           "_scaled_dot_product_efficient_attention",
                                           "_scaled_dot_product_cudnn_attention")},
    "aten::layer_norm": c.normalization("layer", 2), "aten::native_layer_norm": c.normalization("layer", 2),
    "aten::group_norm": c.normalization("group", 2), "aten::native_group_norm": c.normalization("group"),
    "aten::batch_norm": c.normalization("batch"), "aten::_native_batch_norm_legit_no_training": c.normalization("batch"),
    "aten::native_batch_norm": c.normalization("batch"), "aten::instance_norm": c.normalization("instance"),
    "aten::rms_norm": c.normalization("rms", 2), "aten::_fused_rms_norm": c.normalization("rms", 2),
    **{f"aten::{op}": c.softmax for op in ("softmax", "_softmax", "log_softmax", "_log_softmax", "_safe_softmax")},
    **{f"aten::{op}": c.reduction() for op in ("sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin",
                                            "prod", "all", "any", "nansum", "count_nonzero")},
    **{f"aten::{op}": c.reduction(1, 3) for op in ("var", "std", "var_mean", "std_mean", "logsumexp")},
    "aten::norm": c.reduction(2, 2), "aten::linalg_vector_norm": c.reduction(2, 2),
    "aten::cumsum": c.scan, "aten::cumprod": c.scan,
    **{f"aten::{op}": m.view for op in VIEW_OPS},
    "aten::clone": m.copy, "aten::roll": m.copy, "aten::flip": m.copy, "aten::repeat": m.repeat,
    "aten::contiguous": m.copy_if_launched, "aten::reshape": m.copy_if_launched,
    "aten::flatten": m.copy_if_launched, "aten::to": m.cast, "aten::_to_copy": m.cast, "aten::type_as": m.cast,
    "aten::copy_": m.copy_into, "aten::fill_": m.fill, "aten::zero_": m.fill,
    "aten::embedding": m.embedding, "aten::index_select": m.index_select, "aten::constant_pad_nd": m.constant_pad,
    "aten::pad": m.constant_pad,
    "aten::max_pool2d": c.pooling(1, 2, 3, 4), "aten::max_pool1d": c.pooling(1, 2, 3, 4),
    "aten::avg_pool2d": c.pooling(1, 2, 3), "aten::avg_pool1d": c.pooling(1, 2, 3),
    **{f"aten::{op}": c.adaptive_pooling for op in ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                                                  "adaptive_max_pool2d")},
    **{f"aten::upsample_{mode}": m.upsample for mode in ("nearest1d", "nearest2d", "nearest3d", "bilinear2d",
                                                        "bicubic2d", "linear1d", "trilinear3d")},
    # ONNX op types (ONNX Runtime): inputs are listed one by one; attributes are not in the profile
    "MatMul": c.matmul, "FusedMatMul": c.matmul, "Gemm": c.onnx_gemm, "FusedGemm": c.onnx_gemm,
    "LayerNormalization": c.normalization("layer"), "SkipLayerNormalization": c.normalization("layer"),
    "SimplifiedLayerNormalization": c.normalization("rms"), "SkipSimplifiedLayerNormalization": c.normalization("rms"),
    "RMSNormalization": c.normalization("rms"), "BatchNormalization": c.normalization("batch"),
    "InstanceNormalization": c.normalization("instance"),
    "Softmax": c.softmax, "LogSoftmax": c.softmax,
    "Transpose": m.copy, "Reshape": m.copy_if_launched, "Squeeze": m.copy_if_launched, "Unsqueeze": m.copy_if_launched,
    "Flatten": m.copy_if_launched, "Identity": m.copy_if_launched, "Concat": m.concat, "Split": m.copy,
    "Shape": m.view, "Size": m.view,
}


def estimate(call: Call, rule_name: str | None = None) -> Work:
    """FLOPs and bytes of one operator call: its formula, else the element-wise formula when the taxonomy's
    element-wise or activation rule names it, else unknown."""
    formula = FORMULAS.get(call.op)
    if formula is None and rule_name in ELEMENTWISE_RULES:
        formula = c.elementwise
    if formula is None:
        return UNKNOWN
    try:
        return formula(call)
    except (TypeError, ValueError, IndexError, ZeroDivisionError, StopIteration):
        return UNKNOWN      # an input that does not fit the op's signature: unknown, not a guess


def with_flops_bytes(ops, device_is_host: bool):
    """Return `ops` with the columns flops and bytes (float, NaN where unknown), computed once per distinct
    (op, shapes, dtypes, values, launched) and mapped back."""
    import numpy as np

    from ngbench.schema import as_list
    from ngbench.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    ops = ops.copy()
    column = lambda name: ops[name] if name in ops else [None] * len(ops)  # noqa: E731
    converted: dict[tuple[str, int], tuple] = {}   # a trace's rows share one list per distinct value: once each

    def once(kind: str, value, convert) -> tuple:
        key = (kind, id(value))
        if key not in converted:
            converted[key] = (convert(value), value)   # the value is kept, so that its id is not reused
        return converted[key][0]

    def shape_key(shapes) -> tuple:
        return tuple(tuple(int(d) for d in as_list(s)) for s in as_list(shapes))

    def text_key(items) -> tuple:
        return tuple(str(d) for d in as_list(items))

    keys = [(op, once("shapes", shapes, shape_key), once("dtypes", dtypes, text_key), once("values", values, text_key),
             None if device_is_host else bool(len(as_list(kernels))))
            for op, shapes, dtypes, values, kernels in zip(ops["op"].tolist(), column("input_shapes"), column("input_dtypes"),
                                                           column("input_values"), column("kernels"))]
    memo = {}
    for key in set(keys):
        rule = taxonomy.match_op(key[0])
        memo[key] = estimate(Call(*key), rule.name if rule else None)
    ops["flops"] = np.array([memo[k].flops if memo[k].flops is not None else np.nan for k in keys], dtype=float)
    ops["bytes"] = np.array([memo[k].bytes if memo[k].bytes is not None else np.nan for k in keys], dtype=float)
    return ops
