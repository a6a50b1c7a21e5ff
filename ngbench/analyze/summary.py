"""summary.json of an analysed trace: the run record's fields, filled from the trace's own facts in place of a
config (flow=trace; no clean timing and no calibration: the wall view is the profiled one)."""

from __future__ import annotations

from pathlib import Path

from ngbench.analyze import facts

FLOW = "trace"


def model_name(path: Path) -> str:
    """The trace file's name without .json / .json.gz (what the report shows as the model)."""
    name = path.name
    for suffix in (".gz", ".json"):
        name = name.removesuffix(suffix)
    return name


def reconciliation(iterations) -> dict:
    """The busy shares and stall counts of the steps used (no clean timing to compare with)."""
    kept = iterations[~iterations["stalled"]]
    window = float(kept["profiled_us"].sum())
    busy = float(kept["busy_profiled_us"].sum())
    return {"wall_view": "profiled", "device_busy_share": busy / window if window else float("nan"),
            "device_busy_share_profiled": busy / window if window else float("nan"),
            "stalled_iterations": int(iterations["stalled"].sum()), "profiled_iterations": int(len(iterations))}


def warnings_for(platform: str, recon: dict, graphs: dict, covered: dict, path: Path) -> list[str]:
    from ngbench.analyze.pipeline import PROFILED_VIEW_NOTE
    from ngbench.summary import coverage_warnings

    notes = [PROFILED_VIEW_NOTE]
    if platform == "cpu":
        notes.append(f"{path}: no device activity (no kernel, gpu_memcpy or gpu_memset events): a CPU trace, "
                     "broken down by host time (the host is the device)")
    if recon["stalled_iterations"]:
        notes.append(f"{recon['stalled_iterations']} of {recon['profiled_iterations']} steps were far slower than "
                     "the others (stalled) and are left out of every figure")
    if graphs["launches"] and not graphs["captured_graphs"]:
        notes.append(f"{graphs['launches']} CUDA-graph launches replayed {graphs['replayed_kernels']} kernels "
                     f"({100 * graphs['device_share']:.1f}% of device time) and the trace holds no capture of the "
                     "graphs: their kernels stay on `[cuda graph replay]` rows (group Other), not on the operators "
                     "recorded into the graphs")
    return notes + coverage_warnings(covered)


def build_summary(path: Path, trace, windows, profile, rows, ops, kernels, step_facts: dict, timings: dict,
                  captured_graphs: int, model: str | None = None, batch_size: int = 0):
    """The Summary of one analysed trace (see ngbench.record.Summary); `kernels`: ngbench.record.owned_kernels."""
    from ngbench.record import CellKey, Summary
    from ngbench.summary import coverage, gemm_kinds, group_totals, kernel_class_totals
    from ngbench.taxonomy import unmapped_kernels, unmapped_ops

    events, metadata = trace.events, trace.metadata
    platform = facts.platform_of(events, metadata)
    key = CellKey(model=model or model_name(path), variant="", task="", flow=FLOW, platform=platform,
                  device=facts.device_label(events, platform), precision=facts.precision_of(ops), quant="",
                  batch_size=int(batch_size))
    kept = profile.kept
    recon = reconciliation(profile.iterations)
    groups = group_totals(ops, device_is_host=platform == "cpu")
    graphs = facts.cuda_graphs(events, captured_graphs, ops)
    covered = coverage(ops)
    distributed = metadata.get("distributedInfo") or {}
    trace_facts = {
        "trace": str(path), "bytes": int(path.stat().st_size), "steps": step_facts,
        "distributed": distributed, "rank": distributed.get("rank"),
        "profiler": facts.profiler_settings(trace),
        "devices": facts.devices_and_streams(trace, profile.busy_us_by_device),
        "threads": facts.threads(rows, trace), "cuda_graphs": graphs, **facts.kernel_kinds(events),
        "phases_ms": {str(p): float(v) / max(len(kept), 1) / 1000.0
                      for p, v in ops.groupby("phase")["wall_us"].sum().items()},
        "outside_steps": facts.outside_steps(events, windows, len(kernels)),
        "ignored_events": trace.ignored_events}
    median_ms = float(kept["profiled_us"].median()) / 1000.0 if len(kept) else float("nan")
    return Summary(
        status="ok", key=key, config={"trace": str(path), "steps": step_facts["used"]},
        environment=facts.environment(events, metadata), flow_facts=trace_facts, steps=timings,
        profiled_ms=median_ms, reconstructed_ms=median_ms, iterations=profile.iterations.to_dict("records"),
        groups=groups, gemm_kinds_ms=gemm_kinds(ops), gemm_pct=groups.get("GEMM", {}).get("wall_pct", 0.0),
        gemm_pct_device=groups.get("GEMM", {}).get("device_pct", 0.0),
        idle_ms=groups.get("Idle", {}).get("wall_ms", 0.0), reconciliation=recon,
        calibration={"mode": "none", "costs_us": {}, "note": "no calibration for a trace recorded elsewhere"},
        unmapped_ops=unmapped_ops(ops), coverage=covered,
        kernel_classes=kernel_class_totals(kernels, max(len(kept), 1)), unmapped_kernels=unmapped_kernels(kernels),
        warnings=warnings_for(platform, recon, graphs, covered, path))
