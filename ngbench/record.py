"""The run record: what identifies a cell (`CellKey`), what a run found (`Summary`), and the one place that
writes and reads them (ops.parquet, kernels.parquet, iterations table and summary.json of a run directory).
"""

from __future__ import annotations

import json
import traceback
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ngbench.errors import UserError
from ngbench.schema import SCHEMA_VERSION

OPS_FILE = "ops.parquet"
KERNELS_FILE = "kernels.parquet"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class CellKey:
    """What identifies a cell of a sweep; these are also the run columns of ops.parquet (with run_id)."""

    model: str
    variant: str          # full | tiny | custom (model.overrides)
    task: str
    flow: str
    platform: str
    device: str
    precision: str
    quant: str
    batch_size: int

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @staticmethod
    def variant_of(model_cfg) -> str:
        overrides = dict(model_cfg.get("overrides") or {})
        if not overrides:
            return "full"
        return "tiny" if overrides == dict(model_cfg.get("tiny") or {}) else "custom"


@dataclass
class Summary:
    """summary.json of one run. `status` is ok or failed (then `error`, and `traceback` for a non-user error)."""

    status: str
    key: CellKey | None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    config: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    host: dict = field(default_factory=dict)
    model_facts: dict = field(default_factory=dict)
    flow_facts: dict = field(default_factory=dict)
    steps: dict = field(default_factory=dict)
    sampling: dict = field(default_factory=dict)   # the inferences measured (measure.timing.Sampling), warm-up
    clean: dict = field(default_factory=dict)
    profiled_ms: float | None = None
    reconstructed_ms: float | None = None
    iterations: list = field(default_factory=list)
    groups: dict = field(default_factory=dict)
    gemm_kinds_ms: dict = field(default_factory=dict)
    gemm_pct: float | None = None
    gemm_pct_device: float | None = None
    idle_ms: float | None = None
    reconciliation: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    energy: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)
    unmapped_ops: dict = field(default_factory=dict)
    kernel_classes: dict = field(default_factory=dict)
    unmapped_kernels: dict = field(default_factory=dict)
    roofline: dict = field(default_factory=dict)
    coverage: dict = field(default_factory=dict)
    profile_notes: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    error: str = ""
    user_error: bool = False
    traceback: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        data = asdict(self)
        key = data.pop("key") or {}
        return {"status": data.pop("status"), "run_id": data.pop("run_id"), **key, **data}

    @classmethod
    def from_json(cls, data: dict) -> Summary:
        names = {f.name for f in fields(cls)}
        key_names = CellKey.names()
        key = CellKey(**{k: data.get(k, "") for k in key_names}) if all(k in data for k in ("model", "flow")) else None
        return cls(key=key, **{k: v for k, v in data.items() if k in names and k != "key"})

    @classmethod
    def failed(cls, key: CellKey | None, config: dict, error: BaseException) -> Summary:
        """What a failed cell records, so a sweep goes on and the report can list it; a tool or internal
        failure keeps its traceback (chained causes included)."""
        user = isinstance(error, UserError) and error.__cause__ is None
        return cls(status="failed", key=key, config=config, error=f"{type(error).__name__}: {error}",
                   user_error=isinstance(error, UserError),
                   traceback="" if user else "".join(traceback.format_exception(error)))


def ops_table(ops, key: CellKey, run_id: str):
    """The classified op rows with the run columns in front, in ops.parquet's column order (FLOPs and bytes
    are estimated here when the caller has not done it yet)."""
    from ngbench.schema import OPS_COLUMNS, ROOFLINE_COLUMNS

    if any(c not in ops for c in ROOFLINE_COLUMNS):
        from ngbench.roofline import with_flops_bytes

        table = with_flops_bytes(ops, device_is_host=not str(key.device).startswith("cuda"))   # a new frame
    else:
        table = ops.copy()
    table["run_id"] = run_id
    for name, value in asdict(key).items():
        table[name] = value
    return table[OPS_COLUMNS]


def owned_kernels(kernels, ops):
    """Kernel rows with their operator's name and group (from the classified op rows) and their own
    `kernel_class` (ngbench.taxonomy.classify_kernels); a table that has them already is returned as is."""
    from ngbench.taxonomy import classify_kernels

    if "kernel_class" in kernels and "op_group" in kernels:
        return kernels
    owners = ops[["iteration", "seq", "op", "op_group"]].rename(columns={"seq": "op_seq"})
    table = kernels.drop(columns=[c for c in ("op", "op_group") if c in kernels]).merge(
        owners, on=["iteration", "op_seq"], how="left")
    return classify_kernels(table)


def kernels_table(kernels, ops, key: CellKey, run_id: str):
    """Kernel rows with their operator's name and group, their kernel class, and the run columns."""
    from ngbench.schema import KERNEL_TABLE_COLUMNS

    table = owned_kernels(kernels, ops).copy()
    table["run_id"] = run_id
    for name, value in asdict(key).items():
        table[name] = value
    return table[KERNEL_TABLE_COLUMNS]


def write_run(run_dir: str | Path, summary: Summary, ops=None, kernels=None) -> None:
    """Write a run's files whole: the tables first, summary.json last (its presence marks a finished run)."""
    from ngbench.output import write_json, write_table

    run_dir = Path(run_dir)
    if ops is not None:
        write_table(run_dir / OPS_FILE, ops, "ops")
    if kernels is not None:
        write_table(run_dir / KERNELS_FILE, kernels, "kernels")
    write_json(run_dir / SUMMARY_FILE, summary.to_json())


def read_summary(run_dir: str | Path) -> dict | None:
    """summary.json of a run directory as a dict (None when there is none); a broken file is a UserError."""
    import orjson

    path = Path(run_dir) / SUMMARY_FILE
    if not path.exists():
        return None
    try:
        text = path.read_bytes()
        try:   # orjson: a report reads hundreds of these, at a fraction of json's cost
            return orjson.loads(text)
        except orjson.JSONDecodeError:   # NaN or Infinity (json writes them; orjson reads no such thing), or broken
            return json.loads(text)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({exc}); delete it or rerun the cell") from exc
