"""Formulas of the operators that only move data (FLOPs 0): views, copies, casts, fills, concatenation,
gathers, padding, interpolation. Copies that happen only when needed count their bytes when the operator ran
device work (0 when it ran none; null on a CPU run, where that is not visible)."""

from __future__ import annotations

import math

from ngbench.roofline.call import DTYPE_BYTES, SCALAR_TYPE_NAMES, UNKNOWN, Call, Work


def view(call: Call) -> Work:
    """A view: metadata only."""
    return Work(0, 0)


def copy(call: Call) -> Work:
    """A copy that always happens (clone, _to_copy, ONNX Transpose): read and write every element."""
    x = call.tensor(0)
    return Work(0, 2 * x.nbytes) if x else UNKNOWN


def copy_if_launched(call: Call) -> Work:
    """A copy that happens only when needed (contiguous, reshape, flatten, ONNX Reshape...): its bytes when
    the op ran device work, 0 when it ran none, null where that is not visible (a CPU run)."""
    if call.launched is None:
        return UNKNOWN
    return copy(call) if call.launched else Work(0, 0)


def cast(call: Call) -> Work:
    """to / _to_copy / type_as: read the input, write it in the target dtype (another tensor's, a ScalarType
    code, else unchanged). `to` and `type_as` return the input itself when nothing changes: on a GPU run the
    device work shows which happened; on a CPU run, the dtypes do (unless a copy flag may force one)."""
    x = call.tensor(0)
    if x is None:
        return UNKNOWN
    other = call.tensor(1)
    first, second = call.value(1), call.value(2)
    # _to_copy(x, dtype, layout, ...), to(x, dtype, ...), to(x, device, dtype, ...), to(x, other, ...)
    code = first if type(first) is int else second if call.op == "aten::to" and type(second) is int else None
    if other is not None:
        target = str(call.dtypes[1]).lower()
    elif code is not None:
        target = SCALAR_TYPE_NAMES.get(code)
    else:
        target = str(call.dtypes[0]).lower() if call.values else None
    itemsize = DTYPE_BYTES.get(target or "")
    if itemsize is None:
        return UNKNOWN
    if call.op != "aten::_to_copy":
        if call.launched is False or (call.launched is None and target == str(call.dtypes[0]).lower()
                                      and True not in map(call.value, range(3, len(call.values)))):
            return Work(0, 0)
        if call.launched is None and target == str(call.dtypes[0]).lower():
            return UNKNOWN
    return Work(0, x.nbytes + x.numel * itemsize)


def copy_into(call: Call) -> Work:
    """copy_(dst, src): read src, write dst."""
    dst, src = call.tensor(0), call.tensor(1)
    return Work(0, dst.nbytes + src.nbytes) if dst and src else UNKNOWN


def fill(call: Call) -> Work:
    """fill_ / zero_: write every element."""
    x = call.tensor(0)
    return Work(0, x.nbytes) if x else UNKNOWN


def concat(call: Call) -> Work:
    """ONNX Concat (each input listed): read them all, write their sum. (aten::cat takes a TensorList whose
    shapes the profile does not list: null.)"""
    tensors = call.tensors()
    return Work(0, 2 * sum(t.nbytes for t in tensors)) if tensors else UNKNOWN


def embedding(call: Call) -> Work:
    """embedding(weight[V, D], indices): read the indices and the rows they pick, write them."""
    weight, indices = call.tensor(0), call.tensor(1)
    if not (weight and indices) or len(weight.shape) != 2:
        return UNKNOWN
    rows = indices.numel * weight.shape[1] * weight.itemsize
    return Work(0, indices.nbytes + 2 * rows)


def index_select(call: Call) -> Work:
    """index_select(x, dim, index): read the index and the picked slices, write them."""
    x, index, dim = call.tensor(0), call.tensor(2), call.value(1)
    if not (x and index) or not isinstance(dim, int) or not -len(x.shape) <= dim < len(x.shape):
        return UNKNOWN
    picked = x.numel // x.shape[dim] * index.numel * x.itemsize if x.shape[dim] else 0
    return Work(0, index.nbytes + 2 * picked)


def constant_pad(call: Call) -> Work:
    """constant_pad_nd / pad (x, pad, ...): pad pairs from the last dimension backwards."""
    x, pad = call.tensor(0), call.value(1)
    if x is None or not isinstance(pad, list) or len(pad) % 2 or len(pad) // 2 > len(x.shape):
        return UNKNOWN
    shape = list(x.shape)
    for i in range(len(pad) // 2):
        shape[-1 - i] += pad[2 * i] + pad[2 * i + 1]
    return Work(0, x.nbytes + math.prod(shape) * x.itemsize)


def repeat(call: Call) -> Work:
    """repeat(x, repeats): the output tiles x `repeats` times (leading new dimensions included)."""
    x, repeats = call.tensor(0), call.value(1)
    if x is None or not isinstance(repeats, list) or len(repeats) < len(x.shape):
        return UNKNOWN
    return Work(0, x.nbytes + x.nbytes * math.prod(repeats))


def upsample(call: Call) -> Work:
    """upsample_*(x, output_size, ...): bytes in + out; FLOPs only for nearest (none: a gather)."""
    x, size = call.tensor(0), call.value(1)
    rank = len(size) if isinstance(size, list) else 0
    if x is None or not rank or rank > len(x.shape):
        return UNKNOWN
    out = math.prod(x.shape[:-rank]) * math.prod(size) * x.itemsize
    return Work(0 if "nearest" in call.op else None, x.nbytes + out)


