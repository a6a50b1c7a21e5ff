"""run(cfg): one benchmark run, from config to ops.parquet + kernels.parquet + summary.json.

validate -> resolve platform -> flow check -> build model + inputs -> prepare flow -> warm up -> calibrate
the profiler's cost (cached per host) -> clean and profiled blocks, alternating (+ energy, memory) ->
attribute (raw and rebuilt timelines) -> classify -> write -> print the breakdown.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from ngbench.output import print_breakdown, remove_stale_temporaries
from ngbench.record import CellKey, Summary, kernels_table, ops_table, read_summary, write_run
from ngbench.validate import check_combination, check_memory, flow_config, validate

if TYPE_CHECKING:
    from ngbench.flows.base import RunContext
    from ngbench.flows.config import FlowConfig

log = logging.getLogger("ngbench")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def run(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Run one benchmark cell into `run_dir`; returns its summary. Raises UserError on bad input."""
    run_dir = Path(run_dir)
    previous = read_summary(run_dir)
    if cfg.resume and previous and previous.get("status") == "ok":
        log.info("resume: %s already holds an ok run; skipped", run_dir)
        return previous
    if run_dir.exists():
        remove_stale_temporaries(run_dir)
    ctx, flow_cfg = checked_context(cfg, run_dir)
    return _measure(cfg, ctx, flow_cfg, run_dir)


def checked_context(cfg: DictConfig, run_dir: str | Path) -> tuple[RunContext, FlowConfig]:
    """Everything that can fail before anything is built, in one pass: validate(cfg), the device, the flow's
    own combination rules, the memory check. Returns the RunContext and the flow's typed config."""
    from ngbench.flows.base import RunContext
    from ngbench.platform import resolve_device

    validate(cfg)
    device = resolve_device(cfg.platform)
    quant = OmegaConf.to_object(cfg.quant) if cfg.quant else None
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
    ctx = RunContext(device=device, precision=str(cfg.precision), batch_size=cfg.batch_size, quant=quant,
                     model_name=cfg.model.name, run_dir=str(run_dir), seed=cfg.seed, save_trace=cfg.save_trace,
                     profile_warmup=cfg.profile_warmup, model_cfg=model_cfg)
    flow_cfg = flow_config(cfg)
    check_combination(cfg, flow_cfg, ctx)
    check_memory(cfg, device)
    return ctx, flow_cfg


def split(total: int, parts: int) -> list[int]:
    """`total` spread over `parts` blocks, at least one each."""
    return [max(1, total // parts + (1 if i < total % parts else 0)) for i in range(parts)]


def _measure(cfg: DictConfig, ctx, flow_cfg, run_dir: Path) -> dict:
    import torch
    from hydra.utils import get_class

    from ngbench.measure.bandwidth import bandwidth_for
    from ngbench.measure.calibration import costs_for, probe_scale
    from ngbench.measure.memory import peak_rss_bytes
    from ngbench.measure.timing import host_state, pin_cpus
    from ngbench.models import build_bundle
    from ngbench.platform import describe, model_devices

    torch.manual_seed(ctx.seed)
    if cfg.platform.threads:
        torch.set_num_threads(cfg.platform.threads)
    pinned = pin_cpus(cfg.pin_cpus)
    if pinned and not cfg.platform.threads:
        # one intra-op thread per pinned CPU: torch's default (every core) spun 16 threads on 2 pinned CPUs and
        # made a maskformer iteration on the H100 host take 5.1 s instead of 0.13 s (docs/measurement.md)
        torch.set_num_threads(len(pinned))
    steps = {}
    began = time.perf_counter()
    log.info("building %s on %s (%s)", cfg.model.name, ctx.device, ctx.precision)
    bundle = build_bundle(cfg, ctx.device, getattr(torch, DTYPES[ctx.precision]))
    facts = {"param_count": bundle.param_count, **bundle.facts, "placement": bundle.placement}
    task = bundle.task or str(cfg.model.get("task") or "")
    steps["build_s"] = time.perf_counter() - began
    flow = get_class(flow_cfg._target_)(ctx, flow_cfg)
    began = time.perf_counter()
    log.info("preparing flow=%s", flow.name)
    flow.prepare(bundle)
    del bundle
    steps["prepare_s"] = time.perf_counter() - began
    sampling = _plan(cfg, ctx, flow)
    began = time.perf_counter()
    provider = getattr(flow, "provider", None)
    costs, calibration = costs_for(str(cfg.calibration.mode), cfg.calibration.dir, ctx.device, flow.record_kinds,
                                   provider)
    bandwidth = bandwidth_for(str(cfg.calibration.mode), cfg.calibration.dir, ctx.device)
    steps["calibration_s"] = time.perf_counter() - began
    devices = model_devices(cfg.platform, ctx.device)
    host_before = host_state()
    setup_peak = peak_rss_bytes()   # build, export, quantize, compile, session build: before any block resets it
    with flow.profiler() as profiler:
        began = time.perf_counter()
        clean_blocks, energy, memory, probes = _blocks(cfg, sampling, ctx, flow, profiler, devices)
        memory["setup_host_peak_bytes"] = setup_peak
        steps["timing_and_profiling_s"] = time.perf_counter() - began
        began = time.perf_counter()
        if cfg.calibration.scale_by_probe:     # each block's prices times its probe over the calibration's
            scale = probe_scale(calibration.get("host_probe_us"),
                                {block: probe.get("host_probe_us") for block, probe in enumerate(probes)})
            costs = dataclasses.replace(costs, block_scale=scale)
        calibration["scaled_by_probe"] = bool(costs.block_scale)
        profile = profiler.result(costs)
        steps["attribution_s"] = time.perf_counter() - began
    key = CellKey(model=cfg.model.name, variant=CellKey.variant_of(cfg.model), task=task, flow=flow.name,
                  platform=cfg.platform.name, device=ctx.device, precision=ctx.precision,
                  quant=ctx.quant.name if ctx.quant else "", batch_size=ctx.batch_size)
    host = {"before": host_before, "after": host_state(), **({"pinned_cpus": pinned} if pinned else {})}
    environment = {**describe(ctx.device), "bandwidth": bandwidth}
    summary, ops, kernels = _summarise(cfg, ctx, key, facts, flow, profile, clean_blocks, energy, memory, steps,
                                       calibration, host, environment, sampling, probes)
    if ctx.trace_path and profile.saved_trace_ops is not None:  # ngbench's groups on the trace's events
        from ngbench.trace.saved_trace import mark_saved_trace

        mark_saved_trace(ctx.trace_path, profile.saved_trace_ops, ops)
    write_run(run_dir, summary, ops_table(ops, key, summary.run_id), kernels_table(kernels, ops, key, summary.run_id))
    print_breakdown(summary.to_json())
    return summary.to_json()


def _plan(cfg: DictConfig, ctx, flow) -> dict:
    """Warm up, then the sampling the run measures: the config's, or fewer inferences where the warm-up shows
    that the config's would take longer than `max_time_s` (measure.timing.plan_sampling). The profilers read
    `ctx.profile_warmup`, so a capped plan's is set there before they are made."""
    from ngbench.measure.timing import Sampling, plan_sampling, warm_up

    warmup_s = warm_up(flow.infer, flow.synchronize, cfg.warmup, cfg.max_time_s)
    wanted = Sampling(iters=cfg.iters, profile_iters=cfg.profile_iters, blocks=cfg.blocks,
                      profile_warmup=cfg.profile_warmup)
    planned = plan_sampling(wanted, warmup_s[-1] if warmup_s else None, cfg.max_time_s)
    ctx.profile_warmup = planned.profile_warmup
    if planned.capped:
        log.info("an inference took %.2f s in warm-up: measuring %d clean and %d profiled inferences in %d blocks "
                 "(max_time_s=%g)", warmup_s[-1], planned.iters, planned.profile_iters, planned.blocks,
                 cfg.max_time_s)
    return {**planned.to_json(), "warmup": len(warmup_s), "warmup_s": [round(s, 4) for s in warmup_s],
            "max_time_s": cfg.max_time_s}


def _blocks(cfg: DictConfig, sampling: dict, ctx, flow, profiler, devices):
    """Clean and profiled blocks, alternating, so host drift cancels out of their ratio. Energy and memory
    are read over the clean blocks only; the host's speed (host_probe) between each clean block and its
    profiled one, outside both."""
    from ngbench.measure.energy import EnergyTracker
    from ngbench.measure.timing import gc_paused, host_probe, time_block

    blocks = sampling["blocks"]
    clean_iters, profiled_iters = split(sampling["iters"], blocks), split(sampling["profile_iters"], blocks)
    min_time_s = cfg.min_time_s / blocks
    use_events = flow.clean_timer == "events" and ctx.is_cuda
    clean_blocks, block_joules, block_seconds, peaks, by_device, probes = [], [], [], [], {}, []
    for block in range(blocks):
        log.info("block %d of %d: %d+ clean inferences, then %d profiled", block + 1, blocks,
                 clean_iters[block], profiled_iters[block])
        # the profiled block's garbage is collected before the memory and energy windows open, not inside them
        with gc_paused(), flow.memory_probe(devices) as memory, EnergyTracker(devices) as energy:
            clean_blocks.append(time_block(flow.infer, flow.synchronize, use_events, clean_iters[block], min_time_s))
        block_joules.append(energy.joules)
        block_seconds.append(energy.seconds)
        peaks.append(memory.peak_bytes)
        for device, peak in memory.by_device.items():
            by_device[device] = max(by_device.get(device, 0), peak)
        probes.append(host_probe())
        profiler.block(profiled_iters[block])
    joules = None if None in block_joules else sum(block_joules)
    inferences = sum(len(b) for b in clean_blocks)
    energy = {"joules_per_inference": joules / inferences if joules is not None else None,
              "avg_power_w": joules / sum(block_seconds) if joules is not None and sum(block_seconds) > 0 else None,
              "seconds": sum(block_seconds), "power_limit_w": energy.power_limit_w,
              "note": energy.note}
    memory = {"peak_bytes": max((p for p in peaks if p is not None), default=None), "kind": memory.kind,
              **({"by_device": by_device} if len(by_device) > 1 else {})}
    return clean_blocks, energy, memory, probes


def _summarise(cfg, ctx, key: CellKey, facts: dict, flow, profile, clean_blocks, energy, memory, steps,
               calibration, host, environment, sampling, probes=None) -> tuple[Summary, object, object]:
    import numpy as np

    from ngbench.measure.timing import latency_stats
    from ngbench.record import owned_kernels
    from ngbench.roofline import with_flops_bytes
    from ngbench.schema import normalise_events
    from ngbench.summary import (
        coverage_warnings,
        gemm_kinds,
        group_totals,
        inside_operators,
        reconciliation,
        warnings_for,
    )
    from ngbench.taxonomy import classify, unmapped_ops

    ops = with_flops_bytes(classify(normalise_events(profile.ops)), device_is_host=not ctx.is_cuda)
    kernels = owned_kernels(profile.kernels, ops)
    inside = inside_operators(ops, kernels, key.device, key.precision, key.quant, environment)
    kept = profile.kept
    recon = reconciliation(profile.iterations, clean_blocks, probes)
    groups = group_totals(ops, device_is_host=not ctx.is_cuda)
    notes = dict(profile.notes)
    if profile.busy_us_by_device:
        window = float(kept["rebuilt_us"].sum())
        notes["device_busy_share_by_device"] = {f"gpu{pid}": busy / window
                                                for pid, busy in sorted(profile.busy_us_by_device.items())}
    clean = latency_stats(np.concatenate(clean_blocks))
    summary = Summary(
        status="ok", key=key, config=OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), host=host,
        model_facts=facts,
        flow_facts=flow.facts(), steps=steps, clean=clean,
        profiled_ms=float(kept["profiled_us"].median()) / 1000.0,
        reconstructed_ms=float(kept["rebuilt_us"].median()) / 1000.0,
        iterations=profile.iterations.to_dict("records"), groups=groups, gemm_kinds_ms=gemm_kinds(ops),
        gemm_pct=groups.get("GEMM", {}).get("wall_pct", 0.0),
        gemm_pct_device=groups.get("GEMM", {}).get("device_pct", 0.0),
        idle_ms=groups.get("Idle", {}).get("wall_ms", 0.0), reconciliation=recon, calibration=calibration,
        energy=energy, memory=memory, unmapped_ops=unmapped_ops(ops), profile_notes=notes,
        **inside, environment=environment, sampling=sampling,
        warnings=(sampling_warnings(sampling) + ci_warnings(clean)
                  + warnings_for(recon, notes.get("annotation_unmatched_ops", 0))
                  + coverage_warnings(inside["coverage"]) + flow.warnings() + power_warnings(energy)))
    return summary, ops, kernels


def sampling_warnings(sampling: dict) -> list[str]:
    if not sampling["capped"]:
        return []
    return [f"measured {sampling['iters']} clean and {sampling['profile_iters']} profiled inferences in "
            f"{sampling['blocks']} blocks, fewer than configured: an inference took {sampling['warmup_s'][-1]:.2f} s "
            f"in warm-up and max_time_s={sampling['max_time_s']:g} (the CIs are wider)"]


def ci_warnings(clean: dict) -> list[str]:
    """A clean median whose interval cannot reach 95% (fewer than 6 inferences: it is their range) says how sure it is."""
    coverage = clean.get("ci95_coverage", 1.0)
    if coverage >= 0.95:
        return []
    return [f"the clean median's interval is the range of only {clean['iters']} inferences: it holds the median "
            f"with {100 * coverage:.1f}% confidence, not 95%"]


def power_warnings(energy: dict) -> list[str]:
    from ngbench.measure.energy import implausible_power

    warning = implausible_power(energy.get("avg_power_w"), energy.get("power_limit_w"))
    return [warning] if warning else []


def failure_summary(cfg: DictConfig, error: BaseException) -> dict:
    """What a failed cell records, so a sweep goes on and the report can list it."""
    key = CellKey(model=str(cfg.model.get("name", "")), variant=CellKey.variant_of(cfg.model),
                  task=str(cfg.model.get("task") or ""), flow=str(cfg.flow.get("name", "")),
                  platform=str(cfg.platform.get("name", "")), device="", precision=str(cfg.precision),
                  quant=cfg.quant.name if cfg.quant else "", batch_size=cfg.batch_size)
    return Summary.failed(key, OmegaConf.to_container(cfg, resolve=False, enum_to_str=True), error).to_json()
