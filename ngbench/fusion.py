"""Fusion analysis (paper Table V): how many of the eager run's non-GEMM operators a fused flow fuses, with
what, and what non-GEMM time remains. Pure functions over classified op tables (ops.parquet rows).

Matching (docs/fusion.md): every op name is reduced to a canonical key (`op_key`). From one profiled
iteration, the eager run gives E[k], the number of non-GEMM operator instances with key k. In the fused
run, a row is a *fused kernel* when its `fused_ops` hold at least two distinct keys; it is *with a GEMM*
when the row is GEMM or one of its source ops is. G[k] / N[k] count the fused kernels with / without a
GEMM that list k. Then fused_with_gemm[k] = min(E[k], G[k]) and
fused_with_non_gemm[k] = min(E[k] - fused_with_gemm[k], N[k]) (GEMM fusion is credited first).
fusion rate = Σ_k fused[k] / Σ_k E[k].
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from ngbench.schema import as_list

NON_OPERATOR_GROUPS = ("Idle",)
PSEUDO_OPS = re.compile(r"^\[.*\]$")   # [idle], [unattributed kernels]

# Names that differ between eager aten, Inductor's original aten (pre-decomposition AOT graph), ONNX op
# types and TensorRT source nodes but mean the same operator. Keys are lower-case, namespace, overload
# and leading/trailing underscores stripped.
ALIASES = {
    "native_layer_norm": "layer_norm", "layernormalization": "layer_norm", "skiplayernormalization": "layer_norm",
    "native_batch_norm": "batch_norm", "native_batch_norm_legit_no_training": "batch_norm",
    "native_batch_norm_legit": "batch_norm", "cudnn_batch_norm": "batch_norm", "batchnormalization": "batch_norm",
    "native_group_norm": "group_norm", "groupnormalization": "group_norm",
    "instancenormalization": "instance_norm", "simplifiedlayernormalization": "rms_norm", "fused_rms_norm": "rms_norm",
    "safe_softmax": "softmax", "masked_softmax": "softmax", "logsoftmax": "log_softmax",
    "unsafe_view": "view", "reshape": "view", "reshape_alias": "view", "flatten": "view",
    "to_copy": "to", "cast": "to", "contiguous": "clone",
    "concat": "cat", "reducemean": "mean", "reducesum": "sum", "reducemax": "amax", "reducemin": "amin",
    "permute": "transpose", "t": "transpose", "numpy_t": "transpose",
    "native_dropout": "dropout", "leakyrelu": "leaky_relu",
    "convolution": "conv", "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "conv_transpose2d": "conv",
    "upsample_bilinear2d": "upsample", "upsample_nearest2d": "upsample", "upsample_bicubic2d": "upsample",
    "resize": "upsample", "interpolate": "upsample",
    "true_divide": "div", "rsub": "sub",
}
NAMESPACE = re.compile(r"^(aten|prims|torchvision|quantized|com\.microsoft|ai\.onnx)(::|\.)")
ONNX_NUMBERED = re.compile(r"^[A-Z][A-Za-z0-9]*_\d+$")      # TensorRT/ONNX node names: Relu_2
ONNX_NODE_NAME = re.compile(r"^(?:.*/)?(?:node_)?(?P<op>[A-Za-z][A-Za-z0-9]*?)(?:_\d+)?$")


def source_op_type(name: str) -> str:
    """The op type inside an ONNX/TensorRT node name (`/bn1/BatchNormalization_3` -> `BatchNormalization`);
    other names unchanged."""
    text = str(name).strip()
    if "/" in text or text.startswith("node_") or ONNX_NUMBERED.match(text):
        match = ONNX_NODE_NAME.match(text)
        return match["op"] if match else text.rsplit("/", 1)[-1]
    return text


@lru_cache(maxsize=65536)  # a sweep repeats a few hundred names over hundreds of thousands of rows
def op_key(name: str) -> str:
    """Canonical key of an operator name: `aten::native_layer_norm`, `aten.add_.Tensor`,
    `LayerNormalization`, `/encoder/layer.0/Add_1` -> `layer_norm`, `add`, `layer_norm`, `add`."""
    text = NAMESPACE.sub("", source_op_type(name))
    text = text.split(".", 1)[0].lower().strip("_")
    return ALIASES.get(text, text)


def _operators(ops):
    """Rows that are operators (no idle or unattributed pseudo rows)."""
    pseudo = [op for op in ops["op"].unique() if PSEUDO_OPS.match(str(op))]   # the pattern on distinct names only
    keep = ~ops["op"].isin(pseudo)
    if "op_group" in ops:
        keep &= ~ops["op_group"].isin(NON_OPERATOR_GROUPS)
    return ops[keep]


def _one_iteration(ops):
    if "iteration" not in ops or ops.empty:
        return ops
    return ops[ops["iteration"] == ops["iteration"].min()]


@lru_cache(maxsize=65536)
def _is_gemm_name(name: str) -> bool:
    from ngbench.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    return taxonomy.is_gemm_op(str(name)) or taxonomy.is_gemm_op(source_op_type(name))


def fused_kernel_rows(fused) -> list[tuple[object, frozenset[str], bool]]:
    """(row, distinct source-op keys, with_gemm) of every row of one iteration that fuses ≥ 2 operators."""
    kernels = []
    rows = _operators(_one_iteration(fused))
    for row in rows[[len(as_list(v)) >= 2 for v in rows["fused_ops"]]].itertuples(index=False):
        sources = as_list(row.fused_ops)
        keys = frozenset(op_key(s) for s in sources)
        if len(keys) < 2:
            continue
        with_gemm = bool(getattr(row, "is_gemm", False)) or any(_is_gemm_name(s) for s in sources)
        kernels.append((row, keys, with_gemm))
    return kernels


def fused_kernels(fused) -> list[tuple[frozenset[str], bool]]:
    """(distinct source-op keys, with_gemm) of every row of one iteration that fuses ≥ 2 operators."""
    return [(keys, with_gemm) for _, keys, with_gemm in fused_kernel_rows(fused)]


def fusion_by_op(eager, fused):
    """Per eager (group, key): non-GEMM instances and how many were fused with a GEMM / non-GEMM only.

    Columns: group, key, ops, fused_with_gemm, fused_with_non_gemm, fused, unfused. When one key occurs
    in several eager groups (module-wins rule), its fused counts are shared in proportion to the groups'
    instance counts.
    """
    import pandas as pd

    rows = _operators(_one_iteration(eager))
    rows = rows[~rows["is_gemm"].astype(bool)]
    counts = Counter(zip(rows["op_group"], [op_key(op) for op in rows["op"]], strict=True))
    per_key = Counter()
    for (_, key), n in counts.items():
        per_key[key] += n
    with_gemm, without_gemm = Counter(), Counter()
    for keys, gemm in fused_kernels(fused):
        for key in keys:
            (with_gemm if gemm else without_gemm)[key] += 1
    table = []
    for (group, key), n in sorted(counts.items()):
        total = per_key[key]
        by_gemm = min(total, with_gemm[key])
        by_other = min(total - by_gemm, without_gemm[key])
        share = n / total
        table.append({"op_group": group, "key": key, "ops": n, "fused_with_gemm": by_gemm * share,
                      "fused_with_non_gemm": by_other * share})
    frame = pd.DataFrame(table, columns=["op_group", "key", "ops", "fused_with_gemm", "fused_with_non_gemm"])
    frame["fused"] = frame["fused_with_gemm"] + frame["fused_with_non_gemm"]
    frame["unfused"] = frame["ops"] - frame["fused"]
    return frame


def _rates(frame) -> dict:
    ops = float(frame["ops"].sum())
    gemm, other = float(frame["fused_with_gemm"].sum()), float(frame["fused_with_non_gemm"].sum())
    share = (lambda x: x / ops) if ops else (lambda x: 0.0)
    return {"non_gemm_ops": ops, "fused_with_gemm": gemm, "fused_with_non_gemm": other,
            "fusion_rate": share(gemm + other), "fusion_rate_with_gemm": share(gemm),
            "fusion_rate_with_non_gemm": share(other)}


def fusion_by_group(eager, fused, by_op=None):
    """fusion_by_op summed per eager group, with the rates (shares of the group's instances); `by_op` is
    fusion_by_op(eager, fused) when the caller has it already."""
    import pandas as pd

    by_op = fusion_by_op(eager, fused) if by_op is None else by_op
    rows = [{"op_group": group, **_rates(part)} for group, part in by_op.groupby("op_group", sort=True)]
    return pd.DataFrame(rows)


def non_gemm_time(ops, time_column: str = "wall_us") -> dict:
    """Mean per-iteration total and non-GEMM time (ms) and the non-GEMM share of the total.

    Total is every row (idle included: it is the iteration latency); non-GEMM is every operator row that
    is not GEMM (a GEMM kernel with a fused epilogue counts as GEMM: its time cannot be split).
    """
    iterations = max(ops["iteration"].nunique(), 1) if "iteration" in ops else 1
    total = float(ops[time_column].sum()) / iterations / 1000.0
    operators = _operators(ops)
    non_gemm = float(operators.loc[~operators["is_gemm"].astype(bool), time_column].sum()) / iterations / 1000.0
    return {"total_ms": total, "non_gemm_ms": non_gemm, "non_gemm_pct": 100.0 * non_gemm / total if total else 0.0}


def non_gemm_share_by_iteration(ops, time_column: str = "wall_us"):
    """Per iteration, non_gemm_time's non-GEMM share (%) of that iteration: a pandas Series by iteration."""
    operators = _operators(ops)
    non_gemm = operators.loc[~operators["is_gemm"].astype(bool)].groupby("iteration")[time_column].sum()
    total = ops.groupby("iteration")[time_column].sum()
    return 100.0 * non_gemm.reindex(total.index, fill_value=0.0) / total.where(total != 0)


def fusion_summary(eager, fused, time_column: str = "wall_us", by_op=None) -> dict:
    """One Table V row: fusion rates and non-GEMM time before (eager) and after (fused run); `by_op` is
    fusion_by_op(eager, fused) when the caller has it already."""
    before, after = non_gemm_time(eager, time_column), non_gemm_time(fused, time_column)
    summary = _rates(fusion_by_op(eager, fused) if by_op is None else by_op)
    summary.update({
        "non_gemm_before_ms": before["non_gemm_ms"], "non_gemm_before_pct": before["non_gemm_pct"],
        "total_before_ms": before["total_ms"], "non_gemm_after_ms": after["non_gemm_ms"],
        "non_gemm_after_pct": after["non_gemm_pct"], "total_after_ms": after["total_ms"],
        "non_gemm_speedup": before["non_gemm_ms"] / after["non_gemm_ms"] if after["non_gemm_ms"] else float("nan"),
    })
    return summary
