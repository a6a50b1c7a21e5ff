"""Fusion analysis (paper Table V): how many of the eager run's non-GEMM operators a fused flow fuses, with
what, and what non-GEMM time remains. Pure functions over classified op tables (ops.parquet rows).

Matching (docs/fusion.md): every op name is reduced to a canonical key (`op_key`). From one profiled
iteration, the eager run gives E[k], the number of non-GEMM operator instances with key k. In the fused
run, a row is a *fused kernel* when its `fused_ops` hold at least two distinct keys; it is *with a GEMM*
when the row is GEMM or one of its source ops is. G[k] / N[k] count the fused kernels with / without a
GEMM that list k. Then fused_with_gemm[k] = min(E[k], G[k]) and
fused_with_non_gemm[k] = min(E[k] - fused_with_gemm[k], N[k]) (GEMM fusion is credited first).
fusion rate = Σ_k fused[k] / Σ_k E[k].

The analysis runs on many comparisons at once (`fusion_table`: one op table holding every run, the pairs of
runs to compare), vectorised; the one-pair functions (fusion_by_op, fusion_summary, ...) are that with a
single pair. An op table may be aggregated (ngbench.report.query.FUSION_SQL): a `rows` column then says how
many op rows each of its rows stands for (its times are their sums), and counts add those up.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ngbench.schema import as_list

NON_OPERATOR_GROUPS = ("Idle",)
ROW_COUNT = "rows"   # in an aggregated op table: how many op rows a row stands for
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


@lru_cache(maxsize=65536)
def _is_gemm_name(name: str) -> bool:
    from ngbench.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    return taxonomy.is_gemm_op(str(name)) or taxonomy.is_gemm_op(source_op_type(name))


RATE_COLUMNS = ["non_gemm_ops", "fused_with_gemm", "fused_with_non_gemm", "fusion_rate", "fusion_rate_with_gemm",
                "fusion_rate_with_non_gemm"]
BY_OP_COLUMNS = ["op_group", "key", "ops", "fused_with_gemm", "fused_with_non_gemm", "fused", "unfused"]
_EAGER, _FUSED = "eager", "fused"   # the run_ids of the one-pair functions' two tables


def _operator_mask(ops):
    """Which rows are operators (no idle or unattributed pseudo rows), as a numpy bool array."""
    pseudo = [op for op in ops["op"].unique() if PSEUDO_OPS.match(str(op))]   # the pattern on distinct names only
    keep = ~ops["op"].isin(pseudo)
    if "op_group" in ops:
        keep &= ~ops["op_group"].isin(NON_OPERATOR_GROUPS)
    return keep.to_numpy()


def _first_iteration_mask(ops):
    """Which rows belong to their run's first profiled iteration."""
    import numpy as np

    if "iteration" not in ops:
        return np.ones(len(ops), dtype=bool)
    return (ops["iteration"] == ops.groupby("run_id", sort=False)["iteration"].transform("min")).to_numpy()


def _row_counts(ops):
    import numpy as np

    return ops[ROW_COUNT].to_numpy(dtype=np.int64) if ROW_COUNT in ops else np.ones(len(ops), dtype=np.int64)


def _is_gemm(ops):
    return ops["is_gemm"].fillna(False).astype(bool).to_numpy()


def eager_counts(ops):
    """E: per run, group and key, the non-GEMM operator instances of the run's first iteration."""
    import pandas as pd

    chosen = _first_iteration_mask(ops) & _operator_mask(ops) & ~_is_gemm(ops)
    rows = ops.loc[chosen, ["run_id", "op_group", "op"]]
    keys = {op: op_key(op) for op in rows["op"].unique()}
    frame = pd.DataFrame({"run_id": rows["run_id"].to_numpy(), "op_group": rows["op_group"].to_numpy(),
                          "key": [keys[op] for op in rows["op"]], "ops": _row_counts(ops)[chosen]})
    return frame.groupby(["run_id", "op_group", "key"], sort=True, as_index=False)["ops"].sum()


def fused_counts(ops):
    """G and N: per run and key, the fused kernels of the run's first iteration that list the key, with a GEMM
    (`with_gemm`) and without (`without_gemm`). A fused kernel lists at least two distinct keys."""
    import pandas as pd

    chosen = _first_iteration_mask(ops) & _operator_mask(ops)
    gemm_rows, counts = _is_gemm(ops)[chosen], _row_counts(ops)[chosen]
    kernels, records = {}, []
    for run, fused_ops, gemm, count in zip(ops["run_id"].to_numpy()[chosen], ops["fused_ops"].to_numpy()[chosen],
                                           gemm_rows, counts, strict=True):
        sources = tuple(as_list(fused_ops))
        if len(sources) < 2:
            continue
        if sources not in kernels:   # a sweep repeats a few fused kernels many times
            kernels[sources] = (frozenset(op_key(s) for s in sources), any(_is_gemm_name(s) for s in sources))
        keys, gemm_source = kernels[sources]
        if len(keys) >= 2:
            with_gemm = bool(gemm) or gemm_source
            records += [(run, key, count if with_gemm else 0, 0 if with_gemm else count) for key in keys]
    frame = pd.DataFrame(records, columns=["run_id", "key", "with_gemm", "without_gemm"])
    return frame.groupby(["run_id", "key"], sort=True, as_index=False)[["with_gemm", "without_gemm"]].sum()


def match(pairs, eager, fused):
    """Per pair (`pairs`: a `pair` number, the `eager` and `fused` run_ids) and eager (group, key): the
    instances E, and how many were fused with a GEMM and with non-GEMM operators only, from eager_counts and
    fused_counts. When one key occurs in several eager groups (module-wins rule), its fused counts are shared
    in proportion to the groups' instance counts. Sorted by pair, group, key."""
    import numpy as np

    table = pairs[["pair", "eager", "fused"]].merge(eager, left_on="eager", right_on="run_id").drop(columns="run_id")
    table = table.merge(fused.rename(columns={"run_id": "fused"}), on=["fused", "key"], how="left")
    given = table[["with_gemm", "without_gemm"]].fillna(0).to_numpy(dtype=np.int64)
    ops = table["ops"].to_numpy(dtype=np.int64)
    total = table.groupby(["pair", "key"])["ops"].transform("sum").to_numpy(dtype=np.int64)
    by_gemm = np.minimum(total, given[:, 0])
    by_other = np.minimum(total - by_gemm, given[:, 1])
    share = ops / total
    table = table.assign(fused_with_gemm=by_gemm * share, fused_with_non_gemm=by_other * share)
    table["fused"] = table["fused_with_gemm"] + table["fused_with_non_gemm"]
    table["unfused"] = table["ops"] - table["fused"]
    return table.sort_values(["pair", "op_group", "key"], kind="stable").reset_index(drop=True)[["pair", *BY_OP_COLUMNS]]


def rates(by_op, keys: list[str]):
    """The matched counts summed per `keys`, with the fusion rates (shares of the instances; 0 without any)."""
    import numpy as np

    sums = by_op.groupby(keys, sort=True)[["ops", "fused_with_gemm", "fused_with_non_gemm"]].sum()
    ops = sums["ops"].astype(float)
    safe = np.where(ops != 0, ops, np.nan)
    gemm, other = sums["fused_with_gemm"].astype(float), sums["fused_with_non_gemm"].astype(float)
    frame = sums.assign(non_gemm_ops=ops, fused_with_gemm=gemm, fused_with_non_gemm=other,
                        fusion_rate=np.nan_to_num((gemm + other) / safe), fusion_rate_with_gemm=np.nan_to_num(gemm / safe),
                        fusion_rate_with_non_gemm=np.nan_to_num(other / safe))
    return frame[RATE_COLUMNS].reset_index()


def _per_iteration(ops, time_column: str):
    """Per run and iteration (the index): the `total` time and the `non_gemm` time."""
    import numpy as np
    import pandas as pd

    time = ops[time_column].to_numpy(dtype=float)
    non_gemm = np.where(_operator_mask(ops) & ~_is_gemm(ops), time, 0.0)
    iteration = ops["iteration"].to_numpy() if "iteration" in ops else np.zeros(len(ops), dtype=np.int64)
    return pd.DataFrame({"run_id": ops["run_id"].to_numpy(), "iteration": iteration, "total": time,
                         "non_gemm": non_gemm}).groupby(["run_id", "iteration"], sort=True).sum()


def non_gemm_times(ops, time_column: str = "wall_us"):
    """Per run: the mean per-iteration total and non-GEMM time (ms), the non-GEMM share of the total, and the
    95% t-interval of the per-iteration shares.

    Total is every row (idle included: it is the iteration latency); non-GEMM is every operator row that
    is not GEMM (a GEMM kernel with a fused epilogue counts as GEMM: its time cannot be split). An iteration
    with no time has no share.
    """
    import numpy as np
    import pandas as pd

    from ngbench.summary import t_half_width

    per_iteration = _per_iteration(ops, time_column)
    runs = per_iteration.groupby(level="run_id", sort=True)
    iterations = runs.size()
    frame = pd.DataFrame({"total_ms": runs["total"].sum() / iterations / 1000.0,
                          "non_gemm_ms": runs["non_gemm"].sum() / iterations / 1000.0})
    frame["non_gemm_pct"] = np.where(frame["total_ms"] != 0, 100.0 * frame["non_gemm_ms"] / frame["total_ms"].where(
        frame["total_ms"] != 0), 0.0)
    total = per_iteration["total"]
    shares = (100.0 * per_iteration["non_gemm"] / total.where(total != 0)).dropna().groupby(level="run_id")
    spread = pd.DataFrame({"mean": shares.mean(), "std": shares.std(ddof=1), "n": shares.size()}).reindex(frame.index)
    half = t_half_width(spread["std"].to_numpy(), spread["n"].fillna(0).to_numpy())
    frame["non_gemm_pct_ci95_lo"] = spread["mean"] - half
    frame["non_gemm_pct_ci95_hi"] = spread["mean"] + half
    return frame


def fusion_table(ops, pairs, time_column: str = "wall_us"):
    """Table V for every pair at once: one row per row of `pairs` (its columns first; `eager` and `fused`, the
    run_ids compared, left out) with the fusion rates, the non-GEMM time and share before (eager) and after
    (fused) with their CIs, and the non-GEMM speedup; and the rates per pair and eager group (`pair` then
    says which row of `pairs`). `ops` holds the op rows of every run named in `pairs`."""
    import numpy as np

    pairs = pairs.reset_index(drop=True).assign(pair=lambda frame: np.arange(len(frame)))
    by_op = match(pairs, eager_counts(ops), fused_counts(ops))
    times = non_gemm_times(ops, time_column)
    table = pairs.merge(rates(by_op, ["pair"]), on="pair", how="left")
    table[RATE_COLUMNS] = table[RATE_COLUMNS].fillna(0.0)
    for when, runs in (("before", "eager"), ("after", "fused")):
        chosen = times.reindex(table[runs])
        for name in chosen.columns:   # non_gemm_ms -> non_gemm_before_ms, total_ms -> total_before_ms, ...
            table[name.replace("_", f"_{when}_", 1) if name.startswith("total") else
                  name.replace("non_gemm_", f"non_gemm_{when}_", 1)] = chosen[name].to_numpy()
    after = table["non_gemm_after_ms"].to_numpy()
    table["non_gemm_speedup"] = np.where(after != 0, table["non_gemm_before_ms"] / np.where(after != 0, after, 1.0),
                                         np.nan)
    order = [c for c in pairs.columns if c not in ("eager", "fused", "pair")] + SUMMARY_COLUMNS
    return table[order], rates(by_op, ["pair", "op_group"])


SUMMARY_COLUMNS = RATE_COLUMNS + ["non_gemm_before_ms", "non_gemm_before_pct", "total_before_ms", "non_gemm_after_ms",
                                  "non_gemm_after_pct", "total_after_ms", "non_gemm_speedup",
                                  "non_gemm_before_pct_ci95_lo", "non_gemm_before_pct_ci95_hi",
                                  "non_gemm_after_pct_ci95_lo", "non_gemm_after_pct_ci95_hi"]


# ------------------------------------------------------------------ one pair (one eager table, one fused table)

def _one_pair(eager, fused):
    import pandas as pd

    ops = pd.concat([eager.assign(run_id=_EAGER), fused.assign(run_id=_FUSED)], ignore_index=True)
    return ops, pd.DataFrame({"eager": [_EAGER], "fused": [_FUSED]})


def fusion_by_op(eager, fused):
    """Per eager (group, key): non-GEMM instances and how many were fused with a GEMM / non-GEMM only
    (columns BY_OP_COLUMNS; see match)."""
    ops, pairs = _one_pair(eager, fused)
    by_op = match(pairs.assign(pair=0), eager_counts(ops), fused_counts(ops))
    return by_op.drop(columns="pair")


def fusion_by_group(eager, fused, by_op=None):
    """fusion_by_op summed per eager group, with the rates (shares of the group's instances); `by_op` is
    fusion_by_op(eager, fused) when the caller has it already."""
    return rates(fusion_by_op(eager, fused) if by_op is None else by_op, ["op_group"])


def non_gemm_time(ops, time_column: str = "wall_us") -> dict:
    """non_gemm_times of one run (`ops` as one run): total_ms, non_gemm_ms, non_gemm_pct."""
    row = non_gemm_times(ops.assign(run_id=_EAGER), time_column).iloc[0]
    return {name: float(row[name]) for name in ("total_ms", "non_gemm_ms", "non_gemm_pct")}


def non_gemm_share_by_iteration(ops, time_column: str = "wall_us"):
    """Per iteration of one run, the non-GEMM share (%) of that iteration: a pandas Series by iteration."""
    per_iteration = _per_iteration(ops.assign(run_id=_EAGER), time_column).droplevel("run_id")
    total = per_iteration["total"]
    return 100.0 * per_iteration["non_gemm"] / total.where(total != 0)


def fusion_summary(eager, fused, time_column: str = "wall_us") -> dict:
    """One Table V row (SUMMARY_COLUMNS): fusion rates, non-GEMM time before (eager) and after (fused run)."""
    ops, pairs = _one_pair(eager, fused)
    return {name: float(value) for name, value in fusion_table(ops, pairs, time_column)[0].iloc[0].items()}
