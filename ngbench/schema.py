"""Column names of the op-event table (what flows produce) and of ops.parquet (what reports read).

Every flow produces the same columns; one that a flow has no value for holds its neutral value
('' / [] / 0.0, or null for flops and bytes). ngbench.output writes them with fixed Arrow types.
"""

SCHEMA_VERSION = 3  # 3: the phase column (forward | backward | optimizer)

EVENT_COLUMNS = [
    "iteration", "seq", "op", "phase", "module", "module_type", "input_shapes", "input_dtypes",
    "host_us", "device_us", "wall_us", "wall_profiled_us", "kernels", "fused_ops", "provider", "node",
    "input_values",
]
CLASS_COLUMNS = ["kind", "op_group", "group_source", "is_gemm"]
ROOFLINE_COLUMNS = ["flops", "bytes"]   # per operator instance, from shapes (ngbench.roofline); null = unknown
RUN_COLUMNS = [
    "run_id", "model", "variant", "task", "flow", "platform", "device", "precision", "quant", "batch_size",
]
OPS_COLUMNS = RUN_COLUMNS + EVENT_COLUMNS[:3] + CLASS_COLUMNS + EVENT_COLUMNS[3:] + ROOFLINE_COLUMNS

IDLE_OP = "[idle]"          # pseudo-op: GPU idle while the host ran no operator
UNATTRIBUTED_OP = "[unattributed kernels]"  # device work launched outside any operator
GRAPH_REPLAY_OP = "[cuda graph replay]"     # kernels replayed from a CUDA graph that no operator could claim

GROUPS = [
    "GEMM", "Normalization", "Activation", "Memory", "Elementwise", "Logit", "RoI",
    "Interpolation", "Pooling", "Embedding", "Quantization", "Communication", "Other", "Idle",
]
# which part of a training step an operator ran in; an inference run is all forward
PHASES = ("forward", "backward", "optimizer")

_TEXT_DEFAULTS = {"phase": "forward", "module": "", "module_type": "", "provider": "", "node": ""}
_LIST_COLUMNS = ("input_shapes", "input_dtypes", "kernels", "fused_ops", "input_values")
_TIME_COLUMNS = ("host_us", "device_us", "wall_us", "wall_profiled_us")


def as_list(value) -> list:
    """A list cell as a Python list (numpy arrays and tuples included; anything else is [])."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    return []


def _as_lists(values) -> list[list]:
    """`as_list` of each cell; cells that are one object stay one object (a trace's rows share one list per
    distinct shape, and per-value work downstream, ngbench.roofline's, is then done once per value)."""
    converted: dict[int, tuple] = {}
    lists = []
    for value in values:
        found = converted.get(id(value))
        if found is None:
            found = converted[id(value)] = (as_list(value), value)   # the value is kept: its id is not reused
        lists.append(found[0])
    return lists


def normalise_events(ops):
    """Fill optional columns with their neutral values and order the columns; returns a new frame."""
    ops = ops.copy()
    for column, value in _TEXT_DEFAULTS.items():
        ops[column] = ops[column].fillna(value).astype(str) if column in ops else value
    for column in _LIST_COLUMNS:
        values = ops[column] if column in ops else [None] * len(ops)
        ops[column] = _as_lists(values)
    for column in _TIME_COLUMNS:
        if column not in ops:
            ops[column] = ops["wall_us"] if column == "wall_profiled_us" and "wall_us" in ops else 0.0
        ops[column] = ops[column].fillna(0.0).astype(float)
    ops["iteration"] = ops["iteration"].astype(int)
    ops["seq"] = ops["seq"].astype(int)
    return ops[EVENT_COLUMNS]

KERNEL_COLUMNS = ["iteration", "op_seq", "op", "op_group", "kernel", "kernel_class", "activity", "stream",
                  "device_index", "device_us", "start_us"]
KERNEL_TABLE_COLUMNS = RUN_COLUMNS + KERNEL_COLUMNS


def arrow_schema(kind: str):
    """The Arrow schema of ops.parquet ("ops") or kernels.parquet ("kernels"), with the schema version in its
    metadata."""
    import pyarrow as pa

    text, integer, real = pa.string(), pa.int64(), pa.float64()
    types = {
        "run_id": text, "model": text, "variant": text, "task": text, "flow": text, "platform": text,
        "device": text, "precision": text, "quant": text, "batch_size": integer,
        "iteration": integer, "seq": integer, "op": text, "kind": text, "op_group": text, "group_source": text,
        "is_gemm": pa.bool_(), "phase": text, "module": text, "module_type": text,
        "input_shapes": pa.list_(pa.list_(integer)), "input_dtypes": pa.list_(text),
        "host_us": real, "device_us": real, "wall_us": real, "wall_profiled_us": real,
        "kernels": pa.list_(text), "fused_ops": pa.list_(text), "provider": text, "node": text,
        "input_values": pa.list_(text), "flops": real, "bytes": real, "kernel_class": text,
        "op_seq": integer, "kernel": text, "activity": text, "stream": integer, "device_index": text,
        "start_us": real,
    }
    columns = OPS_COLUMNS if kind == "ops" else KERNEL_TABLE_COLUMNS
    return pa.schema([(c, types[c]) for c in columns], metadata={"ngbench_schema_version": str(SCHEMA_VERSION)})
