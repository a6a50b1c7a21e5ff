"""Column names of the op-event table (what flows produce) and of ops.parquet (what reports read)."""

EVENT_COLUMNS = [
    "iteration", "seq", "op", "module", "module_type", "input_shapes", "dtype",
    "host_us", "device_us", "wall_us", "kernels", "fused_ops", "provider",
]
CLASS_COLUMNS = ["kind", "op_group", "group_source", "is_gemm"]
RUN_COLUMNS = [
    "run_id", "model", "task", "flow", "platform", "device", "precision", "quant", "batch_size",
]
OPS_COLUMNS = RUN_COLUMNS + EVENT_COLUMNS[:3] + CLASS_COLUMNS + EVENT_COLUMNS[3:]

IDLE_OP = "[idle]"          # pseudo-op: GPU idle while the host ran no operator
UNATTRIBUTED_OP = "[unattributed kernels]"  # device work launched outside any operator

GROUPS = [
    "GEMM", "Normalization", "Activation", "Memory", "Elementwise", "Logit", "RoI",
    "Interpolation", "Pooling", "Embedding", "Quantization", "Other", "Idle",
]


def empty_events():
    """An op-event table with the right columns and no rows."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="object") for c in EVENT_COLUMNS})


def normalise_events(ops):
    """Fill optional columns with their neutral values and order the columns; returns a new frame."""
    ops = ops.copy()
    defaults = {"module": "", "module_type": "", "input_shapes": "", "dtype": "", "provider": "",
                "host_us": 0.0, "device_us": 0.0, "wall_us": 0.0}
    for column, value in defaults.items():
        if column not in ops:
            ops[column] = value
        ops[column] = ops[column].fillna(value)
    for column in ("kernels", "fused_ops"):
        if column not in ops:
            ops[column] = [[] for _ in range(len(ops))]
        ops[column] = [list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else []
                       for v in ops[column]]
    for column in ("host_us", "device_us", "wall_us"):
        ops[column] = ops[column].astype(float)
    ops["iteration"] = ops["iteration"].astype(int)
    ops["seq"] = ops["seq"].astype(int)
    extra = [c for c in ops.columns if c not in EVENT_COLUMNS]
    return ops[EVENT_COLUMNS + extra]
