"""What each run did and where its time went, from the cells' summary.json: the run's steps in seconds (build,
prepare with its export / quantize / compile / session build, calibration, timed and profiled blocks,
attribution), whether the flow's caches were hit, peak memory, and for a GPU session of ONNX Runtime the nodes
it left on the CPU provider (the paper's Case Study 1)."""

from __future__ import annotations

from ngbench.report import format as fmt
from ngbench.report.load import KEY_COLUMNS
from ngbench.report.parts import Report, Table

STEPS = ("build_s", "prepare_s", "calibration_s", "timing_and_profiling_s", "attribution_s")
# Parts of prepare_s that flows record in flow_facts (seconds; absent when the flow has no such step)
PREPARE_PARTS = ("export_s", "quantize_s", "compile_s", "session_build_s", "engine_build_s")
CACHE_FACTS = ("export_cache_hit", "quantize_cache_hit")
CACHED_BY = {"export_s": "export_cache_hit", "quantize_s": "quantize_cache_hit"}
HEADINGS = {"timing_and_profiling_s": "clean + profiled blocks"}


def _row(key: dict, summary: dict) -> dict:
    steps = summary.get("steps") or {}
    facts = summary.get("flow_facts") or {}
    memory = summary.get("memory") or {}
    row = {**key, **{name: steps.get(name) for name in STEPS}}
    row["total_s"] = sum(float(steps.get(name) or 0.0) for name in STEPS)
    row.update({name: facts.get(name) for name in PREPARE_PARTS + CACHE_FACTS})
    row["peak_memory_bytes"] = memory.get("peak_bytes")
    row["peak_host_bytes"] = memory.get("setup_host_peak_bytes")
    row["cpu_nodes"], row["memcpy_nodes"] = facts.get("cpu_nodes"), facts.get("memcpy_nodes")
    row["cpu_wall_share"] = facts.get("cpu_wall_share")
    types = facts.get("cpu_node_types") or {}
    row["cpu_node_types"] = ", ".join(f"{op} x{n}" for op, n in sorted(types.items(), key=lambda kv: (-kv[1], kv[0])))
    return row


def frame_of(report: Report):
    import pandas as pd

    rows = [_row({**{k: getattr(cell, k) for k in KEY_COLUMNS}, "seq_len": getattr(cell, "seq_len", None)},
                 report.sweep.summaries[cell.dir])
            for cell in report.cells.itertuples()]
    return pd.DataFrame(rows)


def _gib(value) -> str:
    return fmt.MISSING if value is None or value != value else f"{float(value) / 2**30:.2f}"


def _cache(value) -> str:
    return fmt.MISSING if value is None or value != value else ("hit" if value else "miss")


def section(report: Report) -> list:
    frame = frame_of(report)
    if frame.empty:
        return []
    display = fmt.keys_shown(frame)
    for name in STEPS + ("total_s",) + PREPARE_PARTS:
        if frame[name].notna().any():
            text = frame[name].map(lambda v: fmt.number(v, 1))
            hit = CACHED_BY.get(name)
            if hit:   # a cache hit skipped the step: its 0.0 is no time measured
                text = text.where(frame[hit].ne(True), "cached")
            display[HEADINGS.get(name, name.removesuffix("_s").replace("_", " ")) + " s"] = text
    for name in CACHE_FACTS:
        if frame[name].notna().any():
            display[name.removesuffix("_hit").replace("_", " ")] = frame[name].map(_cache)
    display["peak memory GiB"] = frame["peak_memory_bytes"].map(_gib)
    if frame["peak_host_bytes"].notna().any():
        display["setup peak host GiB"] = frame["peak_host_bytes"].map(_gib)
    parts = [Table("steps", "Where each run's time went (seconds) and its peak memory", frame, display,
                   "prepare holds the flow's export, quantization, compilation or session build, each also shown "
                   "on its own where the flow records it; a cache hit skips that step. Peak memory is the device's "
                   "(the host's on the CPU) over the clean blocks; setup peak host is the process's peak resident set "
                   "before the blocks (model build, export, quantization, session build).")]
    fallback = frame[frame["cpu_nodes"].notna()]
    if len(fallback):
        shown = fmt.keys_shown(fallback)
        shown["nodes on CPU"] = fallback["cpu_nodes"].map(lambda v: fmt.number(v, 0))
        shown["CPU share of time %"] = fallback["cpu_wall_share"].map(lambda v: fmt.number(100 * v, 1))
        shown["Memcpy nodes"] = fallback["memcpy_nodes"].map(lambda v: fmt.number(v, 0))
        shown["op types on CPU"] = fallback["cpu_node_types"]
        parts.append(Table("cpu_fallback", "ONNX Runtime on a GPU: nodes left on the CPU provider", fallback,
                           shown, "The paper's Case Study 1: nodes the GPU provider has no kernel for run on the "
                           "CPU, with Memcpy nodes moving their tensors between the devices."))
    return parts
