"""Load a sweep (or a single run) directory into tidy tables; failed cells are listed, not dropped silently."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ngbench.errors import UserError

CELL_KEYS = ["model", "flow", "platform", "device", "precision", "quant", "batch_size"]
VIEWS = ("wall", "device", "host")


@dataclass
class Sweep:
    ops: object          # pandas.DataFrame: every ok cell's ops.parquet rows
    cells: object        # pandas.DataFrame: one row per ok cell (summary fields flattened)
    failed: list[dict]   # {dir, model, flow, ..., error} of failed cells


def load_sweep(root: str | Path) -> Sweep:
    """Read every summary.json under `root` and the ops.parquet beside each ok one."""
    import pandas as pd

    root = Path(root)
    if not root.exists():
        raise UserError(f"{root} does not exist; give a sweep or run directory (outputs/sweeps/...)")
    summaries = sorted(root.rglob("summary.json"))
    if not summaries:
        raise UserError(f"{root} holds no summary.json: not an ngbench run or sweep directory")
    frames, cells, failed = [], [], []
    for path in summaries:
        with open(path) as handle:
            summary = json.load(handle)
        if summary.get("status") != "ok" or not (path.parent / "ops.parquet").exists():
            failed.append({"dir": str(path.parent), **{k: summary.get(k) for k in CELL_KEYS},
                           "error": summary.get("error", "no ops.parquet")})
            continue
        frames.append(pd.read_parquet(path.parent / "ops.parquet"))
        cells.append(_cell_row(summary, path.parent))
    ops = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Sweep(ops=ops, cells=pd.DataFrame(cells), failed=failed)


def _cell_row(summary: dict, run_dir: Path) -> dict:
    clean = summary.get("clean", {})
    energy = summary.get("energy", {}) or {}
    recon = summary.get("reconciliation", {})
    return {
        **{k: summary.get(k) for k in CELL_KEYS + ["run_id", "task"]},
        "dir": str(run_dir),
        "clean_ms": clean.get("median_ms"),
        "profiled_ms": summary.get("profiled_ms"),
        "profiled_over_clean": recon.get("profiled_over_clean"),
        "wall_over_profiled": recon.get("wall_over_profiled"),
        "device_busy_share": recon.get("device_busy_share"),
        "gemm_pct": summary.get("gemm_pct"),
        "gemm_pct_device": summary.get("gemm_pct_device"),
        "energy_j": energy.get("joules_per_inference"),
        "peak_memory_bytes": (summary.get("memory") or {}).get("peak_bytes"),
        "param_count": (summary.get("model_facts") or {}).get("param_count"),
        "seq_len": (summary.get("model_facts") or {}).get("seq_len"),
        "gpu": (summary.get("environment") or {}).get("gpu", ""),
        "cpu": (summary.get("environment") or {}).get("cpu", ""),
    }


def breakdown(ops, view: str = "wall"):
    """Per cell and group: ms per inference and % of the cell's total, in one view (wall|device|host)."""
    if view not in VIEWS:
        raise UserError(f"view={view!r} is not valid; valid: {', '.join(VIEWS)}")
    column = f"{view}_us"
    keys = [k for k in ["run_id"] + CELL_KEYS if k in ops.columns]
    iterations = ops.groupby(keys)["iteration"].nunique().rename("iterations")
    table = ops.groupby(keys + ["op_group"])[column].sum().rename("us").reset_index()
    table = table.merge(iterations.reset_index(), on=keys)
    table["ms"] = table["us"] / table["iterations"] / 1000.0
    table["pct"] = 100.0 * table["us"] / table.groupby(keys)["us"].transform("sum")
    table["view"] = view
    return table.drop(columns=["us", "iterations"])
