"""Formulas of the operators that compute: element-wise, matmul/linear/Gemm, convolution, attention,
normalization, softmax, reductions and scans, pooling. A multiply-add is 2 FLOPs; bytes are each input read once and
each output written once; output shapes are derived here from the inputs (and input values)."""

from __future__ import annotations

import math
from collections.abc import Callable

from ngbench.roofline.call import (
    FLOATING,
    FLOPS_PER_ELEMENT,
    NORM_FLOPS_PER_ELEMENT,
    SCALAR_TYPE_BYTES,
    SOFTMAX_FLOPS_PER_ELEMENT,
    UNKNOWN,
    Call,
    Tensor,
    Work,
    broadcast,
    per_dimension,
    result_itemsize,
)


def elementwise(call: Call) -> Work:
    tensors = call.tensors()
    if not tensors:
        return UNKNOWN
    shape = broadcast([t.shape for t in tensors])
    if shape is None:
        return UNKNOWN
    out = Tensor(shape, result_itemsize(call))
    return Work(FLOPS_PER_ELEMENT.get(call.op, 1) * out.numel, sum(t.nbytes for t in tensors) + out.nbytes)


def _matmul_work(a: tuple, b: tuple, itemsize: int, extra_bytes: int = 0, bias: bool = False) -> Work:
    """torch.matmul semantics: 1-D operands are promoted, batch dimensions broadcast."""
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if len(a2) < 2 or len(b2) < 2 or a2[-1] != b2[-2]:
        return UNKNOWN
    batch = broadcast([a2[:-2], b2[:-2]])
    if batch is None:
        return UNKNOWN
    m, k, n = a2[-2], a2[-1], b2[-1]
    out = math.prod(batch) * m * n
    flops = 2 * out * k + (out if bias else 0)
    return Work(flops, (math.prod(a) + math.prod(b) + out) * itemsize + extra_bytes)


def matmul(call: Call) -> Work:
    a, b = call.tensor(0), call.tensor(1)
    return _matmul_work(a.shape, b.shape, a.itemsize) if a and b else UNKNOWN


def addmm(call: Call) -> Work:
    """addmm / baddbmm (bias, a, b): the product plus the bias add."""
    bias, a, b = call.tensor(0), call.tensor(1), call.tensor(2)
    if not (bias and a and b):
        return UNKNOWN
    return _matmul_work(a.shape, b.shape, a.itemsize, bias.nbytes, bias=True)


def linear(call: Call) -> Work:
    """linear(x[..., k], w[n, k], bias[n]?)."""
    x, w, bias = call.tensor(0), call.tensor(1), call.tensor(2)
    if not (x and w) or len(w.shape) != 2:
        return UNKNOWN
    return _matmul_work(x.shape, (w.shape[1], w.shape[0]), x.itemsize, bias.nbytes if bias else 0,
                        bias=bias is not None)


def onnx_gemm(call: Call) -> Work:
    """ONNX Gemm / FusedGemm (A, B, C?): transA/transB are attributes the profile does not give; every
    transposition under which A and B fit is tried, and the result is null unless they all agree."""
    a, b, c = call.tensor(0), call.tensor(1), call.tensor(2)
    if not (a and b) or len(a.shape) != 2 or len(b.shape) != 2:
        return UNKNOWN
    fits = set()
    for trans_a in (0, 1):
        for trans_b in (0, 1):
            m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
            k_b, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
            if k == k_b:
                fits.add((m * n, k))
    if len(fits) != 1:
        return UNKNOWN
    out, k = fits.pop()
    return Work(2 * out * k + (out if c else 0), a.nbytes + b.nbytes + (c.nbytes if c else 0) + out * a.itemsize)


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _convolution(call: Call, stride_at: int, padding_at: int, dilation_at: int, groups_at: int,
                 transposed: bool, output_padding_at: int | None = None) -> Work:
    x, w, bias = call.tensor(0), call.tensor(1), call.tensor(2)
    if not (x and w) or len(x.shape) != len(w.shape) or len(x.shape) < 3:
        return UNKNOWN
    rank = len(x.shape) - 2
    stride, dilation = per_dimension(call.value(stride_at), rank), per_dimension(call.value(dilation_at), rank)
    padding = call.value(padding_at)
    padding = [0] * rank if padding == "valid" else padding
    groups = call.value(groups_at)
    if stride is None or dilation is None or not isinstance(groups, int) or groups < 1:
        return UNKNOWN
    kernel = w.shape[2:]
    if padding == "same":
        spatial = x.shape[2:]
    elif (padding := per_dimension(padding, rank)) is None:
        return UNKNOWN
    elif transposed:
        extra = per_dimension(call.value(output_padding_at), rank) if output_padding_at is not None else [0] * rank
        if extra is None:
            return UNKNOWN
        spatial = tuple((i - 1) * s - 2 * p + d * (k - 1) + e + 1
                        for i, k, s, p, d, e in zip(x.shape[2:], kernel, stride, padding, dilation, extra, strict=True))
    else:
        spatial = tuple(_conv_out(i, k, s, p, d)
                        for i, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation, strict=True))
    batch, channels = x.shape[0], x.shape[1]
    out_channels = w.shape[1] * groups if transposed else w.shape[0]
    out = Tensor((batch, out_channels) + tuple(spatial), x.itemsize)
    if min(out.shape) <= 0:
        return UNKNOWN
    # each output (input, for a transposed conv) element takes C_in/groups x prod(kernel) multiply-adds
    macs = (x.numel * out_channels // groups if transposed else out.numel * channels // groups) * math.prod(kernel)
    flops = 2 * macs + (out.numel if bias else 0)
    return Work(flops, x.nbytes + w.nbytes + (bias.nbytes if bias else 0) + out.nbytes)


def conv_nd(call: Call) -> Work:
    """conv1d/2d/3d(input, weight, bias, stride, padding, dilation, groups)."""
    return _convolution(call, 3, 4, 5, 6, transposed=False)


def convolution(call: Call) -> Work:
    """convolution / _convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
    groups, ...)."""
    return _convolution(call, 3, 4, 5, 8, transposed=bool(call.value(6)), output_padding_at=7)


def conv_transpose(call: Call) -> Work:
    """conv_transpose1d/2d/3d(input, weight, bias, stride, padding, output_padding, groups, dilation)."""
    return _convolution(call, 3, 4, 7, 6, transposed=True, output_padding_at=5)


CAUSAL_FLAG_AT = {"aten::scaled_dot_product_attention": 5, "aten::_scaled_dot_product_flash_attention": 4,
                  "aten::_scaled_dot_product_efficient_attention": 6, "aten::_scaled_dot_product_cudnn_attention": 6}


def attention(call: Call) -> Work:
    """scaled_dot_product_attention(q[..., L, E], k[..., S, E], v[..., S, Ev], mask?, ...): Q K^T and P V per
    query head (grouped-query K/V heads are shared); a causal mask halves the work."""
    q, k, v, mask = call.tensor(0), call.tensor(1), call.tensor(2), call.tensor(3)
    if not (q and k and v) or min(len(q.shape), len(k.shape), len(v.shape)) < 2 or k.shape[-1] != q.shape[-1]:
        return UNKNOWN
    heads = math.prod(q.shape[:-2])
    length, source, depth, value_depth = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    flops = 2 * heads * length * source * (depth + value_depth)
    causal = call.value(CAUSAL_FLAG_AT.get(call.op, -1)) is True
    out = heads * length * value_depth * q.itemsize
    return Work(flops / 2 if causal else flops, q.nbytes + k.nbytes + v.nbytes + (mask.nbytes if mask else 0) + out)


def normalization(kind: str, params_from: int = 1) -> Callable[[Call], Work]:
    """A normalization whose output has the input's shape; inputs from `params_from` on (weight, bias, running
    statistics, ONNX skip/bias) are read once."""
    def formula(call: Call) -> Work:
        x = call.tensor(0)
        if x is None:
            return UNKNOWN
        params = [t for t in (call.tensor(i) for i in range(params_from, len(call.dtypes))) if t is not None]
        same_shape = sum(1 for t in params if t.shape == x.shape)          # ONNX Skip*Normalization's skip
        flops = (NORM_FLOPS_PER_ELEMENT[kind] + same_shape) * x.numel
        return Work(flops, 2 * x.nbytes + sum(t.nbytes for t in params))
    return formula


def softmax(call: Call) -> Work:
    """softmax / _softmax / log_softmax (x, dim, dtype or half_to_float)."""
    x = call.tensor(0)
    if x is None:
        return UNKNOWN
    flag = call.value(2)
    itemsize = 4 if flag is True else SCALAR_TYPE_BYTES.get(flag, x.itemsize) if isinstance(flag, int) else x.itemsize
    return Work(SOFTMAX_FLOPS_PER_ELEMENT * x.numel, x.nbytes + x.numel * itemsize)


INDEX_RESULT = ("aten::argmax", "aten::argmin")
BOOL_REDUCTION = ("aten::all", "aten::any")
INTEGER_SUM = ("aten::sum", "aten::prod", "aten::nansum", "aten::count_nonzero")


def reduction(dim_at: int = 1, flops_per_element: int = 1) -> Callable[[Call], Work]:
    """A reduction over the dimensions in input `dim_at` (absent, None or [] = all of them); argmax/argmin
    write int64, any/all bool, a sum of integers int64, others the input's dtype."""
    def formula(call: Call) -> Work:
        x = call.tensor(0)
        if x is None or not call.values:
            return UNKNOWN              # values not recorded: the reduced dimensions are unknown
        dims = call.value(dim_at)
        if dims is None or dims == []:
            dims = list(range(len(x.shape)))
        if type(dims) is int:
            dims = [dims]
        rank = max(len(x.shape), 1)
        if not isinstance(dims, list) or any(not -rank <= d < rank for d in dims):
            return UNKNOWN
        reduced = {d % rank for d in dims}
        out = math.prod(s for i, s in enumerate(x.shape) if i not in reduced)
        integer = str(call.dtypes[0]).lower() not in FLOATING
        itemsize = 8 if call.op in INDEX_RESULT or (call.op in INTEGER_SUM and integer) else \
            1 if call.op in BOOL_REDUCTION else x.itemsize
        return Work(flops_per_element * x.numel, x.nbytes + out * itemsize)
    return formula


def scan(call: Call) -> Work:
    """cumsum / cumprod: one operation per element, output as large as the input."""
    x = call.tensor(0)
    return Work(x.numel, 2 * x.nbytes) if x else UNKNOWN


def pooling(kernel_at: int, stride_at: int, padding_at: int, dilation_at: int | None = None) -> Callable[[Call], Work]:
    """max_pool / avg_pool (x, kernel_size, stride, padding[, dilation]): one operation per window element."""
    def formula(call: Call) -> Work:
        x = call.tensor(0)
        if x is None or len(x.shape) < 3:
            return UNKNOWN
        rank = len(x.shape) - 2 if len(x.shape) > 3 else 1
        kernel = per_dimension(call.value(kernel_at), rank)
        stride = per_dimension(call.value(stride_at) or kernel, rank)
        padding = per_dimension(call.value(padding_at), rank)
        dilation = per_dimension(call.value(dilation_at), rank) if dilation_at is not None else [1] * rank
        if None in (kernel, stride, padding, dilation):
            return UNKNOWN
        spatial = [_conv_out(i, k, s, p, d) for i, k, s, p, d in
                   zip(x.shape[-rank:], kernel, stride, padding, dilation, strict=True)]
        out = math.prod(x.shape[:-rank]) * math.prod(spatial)
        return Work(out * math.prod(kernel), x.nbytes + out * x.itemsize)
    return formula


def adaptive_pooling(call: Call) -> Work:
    """adaptive_avg/max_pool (x, output_size): every input element is read and combined once."""
    x, size = call.tensor(0), call.value(1)
    rank = len(size) if isinstance(size, list) else 0
    if x is None or not rank or rank > len(x.shape):
        return UNKNOWN
    out = math.prod(x.shape[:-rank]) * math.prod(size)
    return Work(x.numel, x.nbytes + out * x.itemsize)
