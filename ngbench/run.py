"""run(cfg): one benchmark run, from config to ops.parquet + summary.json.

validate -> resolve platform -> flow check -> build model + inputs -> prepare flow -> warm up ->
clean timing (+ energy, memory) -> profiled pass -> classify -> write -> print the breakdown.
"""

from __future__ import annotations

import logging
import statistics
import time
import traceback
import uuid
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ngbench.errors import UserError
from ngbench.output import print_breakdown, read_summary, write_json, write_parquet
from ngbench.schema import OPS_COLUMNS, RUN_COLUMNS
from ngbench.validate import check_combination, check_memory, flow_options, validate

log = logging.getLogger("ngbench")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def run(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Run one benchmark cell into `run_dir`; returns its summary. Raises UserError on bad input."""
    run_dir = Path(run_dir)
    previous = read_summary(run_dir)
    if cfg.get("resume") and previous and previous.get("status") == "ok":
        log.info("resume: %s already holds an ok run; skipped", run_dir)
        return previous
    validate(cfg)
    from hydra.utils import get_class

    from ngbench.flows.base import RunContext
    from ngbench.platform import resolve_device

    device = resolve_device(cfg.platform)
    quant = OmegaConf.to_container(cfg.quant, resolve=True) if cfg.get("quant") else None
    ctx = RunContext(device=device, precision=cfg.precision, batch_size=int(cfg.batch_size), quant=quant,
                     model_name=cfg.model.name, run_dir=str(run_dir), seed=int(cfg.seed),
                     save_trace=bool(cfg.get("save_trace")), profile_warmup=int(cfg.get("profile_warmup", 3)),
                     model_cfg=OmegaConf.to_container(cfg.model, resolve=True))
    flow_class = get_class(cfg.flow._target_)
    check_combination(cfg, flow_class, ctx)
    check_memory(cfg, device)
    return _measure(cfg, ctx, flow_class, run_dir)


def _measure(cfg: DictConfig, ctx, flow_class, run_dir: Path) -> dict:
    import torch

    from ngbench.measure.energy import EnergyTracker
    from ngbench.measure.memory import MemoryTracker
    from ngbench.measure.timing import latency_stats, synchronizer, time_inferences
    from ngbench.models import build_bundle
    from ngbench.platform import describe, model_devices

    torch.manual_seed(ctx.seed)
    if cfg.platform.get("threads"):
        torch.set_num_threads(int(cfg.platform.threads))
    steps = {}
    began = time.perf_counter()
    log.info("building %s on %s (%s)", cfg.model.name, ctx.device, ctx.precision)
    bundle = build_bundle(cfg, ctx.device, getattr(torch, DTYPES[ctx.precision]))
    steps["build_s"] = time.perf_counter() - began
    flow = flow_class(name=cfg.flow.name, **flow_options(cfg))
    began = time.perf_counter()
    log.info("preparing flow=%s", cfg.flow.name)
    flow.prepare(bundle, ctx)
    steps["prepare_s"] = time.perf_counter() - began
    sync = synchronizer(ctx.device)
    for _ in range(int(cfg.warmup)):
        flow.infer()
    sync()
    log.info("clean timing: %d inferences", cfg.iters)
    devices = model_devices(cfg.platform, ctx.device)
    with MemoryTracker(devices) as memory, EnergyTracker(devices) as energy:
        clean = time_inferences(flow.infer, int(cfg.iters), ctx.device)
    log.info("profiling: %d inferences", cfg.profile_iters)
    profile = flow.profile(int(cfg.profile_iters), ctx)
    summary = _summarise(cfg, ctx, bundle, flow, profile, latency_stats(clean), energy, memory, steps)
    summary["environment"] = describe(ctx.device)
    ops = _ops_table(profile.ops, summary)
    write_parquet(run_dir / "ops.parquet", ops)
    write_json(run_dir / "summary.json", summary)
    print_breakdown(summary)
    return summary


def _summarise(cfg, ctx, bundle, flow, profile, clean, energy, memory, steps) -> dict:
    from ngbench.schema import normalise_events
    from ngbench.summary import gemm_kinds, group_totals, reconciliation, warnings_for
    from ngbench.taxonomy import classify, unmapped_ops

    ops = classify(normalise_events(profile.ops))
    profile.ops = ops
    iterations = len(profile.iteration_us)
    recon = reconciliation(ops, profile.iteration_us, profile.busy_us, clean["median_ms"])
    groups = group_totals(ops, iterations)
    gemm = groups.get("GEMM", {})
    clean_seconds = clean["mean_ms"] * clean["iters"] / 1000.0
    per_inference_j = energy.joules / int(cfg.iters) if energy.joules is not None else None
    power_w = energy.joules / clean_seconds if energy.joules is not None and clean_seconds > 0 else None
    return {
        "status": "ok",
        **_run_columns(cfg, ctx, bundle),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "model_facts": {"param_count": bundle.param_count, **bundle.facts, "placement": bundle.placement},
        "flow_facts": flow.facts(),
        "steps": steps,
        "clean": clean,
        "profiled_ms": statistics.median(profile.iteration_us) / 1000.0,
        "profiled_iterations_ms": [u / 1000.0 for u in profile.iteration_us],
        "groups": groups,
        "gemm_kinds_ms": gemm_kinds(ops, iterations),
        "gemm_pct": gemm.get("wall_pct", 0.0),
        "gemm_pct_device": gemm.get("device_pct", 0.0),
        "idle_ms": groups.get("Idle", {}).get("wall_ms", 0.0),
        "reconciliation": recon,
        "energy": {"joules_per_inference": per_inference_j, "avg_power_w": power_w, "note": energy.note},
        "memory": {"peak_bytes": memory.peak_bytes, "kind": memory.kind,
                   **({"by_device": memory.by_device} if len(memory.by_device) > 1 else {})},
        "unmapped_ops": unmapped_ops(ops),
        "profile_notes": profile.notes,
        "warnings": warnings_for(recon, profile.notes.get("annotation_unmatched_ops", 0)),
    }


def _run_columns(cfg, ctx, bundle) -> dict:
    return {
        "run_id": uuid.uuid4().hex[:12],
        "model": cfg.model.name,
        "task": bundle.task or cfg.model.get("task", ""),
        "flow": cfg.flow.name,
        "platform": cfg.platform.name,
        "device": ctx.device,
        "precision": ctx.precision,
        "quant": ctx.quant["name"] if ctx.quant else "",
        "batch_size": ctx.batch_size,
    }


def _ops_table(ops, summary: dict):
    table = ops.copy()
    for column in RUN_COLUMNS:
        table[column] = summary[column]
    table["fused_ops"] = table["fused_ops"].apply(lambda v: [str(x) for x in v])
    table["kernels"] = table["kernels"].apply(lambda v: [str(x) for x in v])
    extra = [c for c in table.columns if c not in OPS_COLUMNS]
    return table[OPS_COLUMNS + extra]


def failure_summary(cfg: DictConfig, error: BaseException) -> dict:
    """What a failed cell records, so a sweep goes on and the report can list it."""
    return {
        "status": "failed",
        "error": f"{type(error).__name__}: {error}",
        "user_error": isinstance(error, UserError),
        "traceback": "" if isinstance(error, UserError) else traceback.format_exc(),
        "model": cfg.model.name, "flow": cfg.flow.name, "platform": cfg.platform.name,
        "precision": cfg.precision, "batch_size": cfg.get("batch_size"),
        "quant": cfg.quant.name if cfg.get("quant") else "",
        "config": OmegaConf.to_container(cfg, resolve=False),
    }
