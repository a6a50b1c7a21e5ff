"""The facts a foreign trace carries about itself, for summary.json: devices, distributed rank, platform,
streams, threads, CUDA graphs, Triton and collective kernels, profiler settings, and every event that was
not attributed (outside the steps used, or of a kind ngbench does not read), so nothing is dropped silently.
"""

from __future__ import annotations

import numpy as np

from ngbench.trace.kineto import DEVICE_CATEGORIES, LAUNCH_CATEGORIES

PROFILER_SETTINGS = ("schemaVersion", "record_shapes", "with_stack", "with_modules", "profile_memory",
                     "with_flops", "trace_id", "displayTimeUnit")
VERSION_KEYS = ("cupti_version", "cuda_runtime_version", "cuda_driver_version", "hip_runtime_version",
                "roctracer_version", "rocprofiler_version", "pytorch_version")
LAUNCH_CALL = r"(?:Launch|Memcpy|Memset)"
DTYPE_PRECISION = {"float": "fp32", "c10::Half": "fp16", "c10::BFloat16": "bf16", "double": "fp64",
                   "c10::Float8_e4m3fn": "fp8", "c10::Float8_e5m2": "fp8"}


def device_names(metadata: dict) -> dict[str, str]:
    """GPU index -> name, from Kineto's deviceProperties."""
    return {str(d.get("id", i)): str(d.get("name", "")) for i, d in enumerate(metadata.get("deviceProperties") or [])
            if isinstance(d, dict)}


def launches_of(events):
    """Runtime/driver calls that put work on a device (kernel launches, copies, sets, graph launches)."""
    calls = events.loc[events["cat"].isin(LAUNCH_CATEGORIES), ["name"]]
    return calls[calls["name"].str.contains(LAUNCH_CALL)]


def platform_of(events, metadata: dict) -> str:
    """rocm (HIP calls, or an AMD GPU in deviceProperties), cuda (device activity), or cpu."""
    hip = events["cat"].str.startswith("hip_").any() or events["name"].str.startswith("hip").any()
    amd = any("gcnArchName" in d for d in metadata.get("deviceProperties") or [] if isinstance(d, dict))
    if hip or amd:
        return "rocm"
    return "cuda" if events["cat"].isin(DEVICE_CATEGORIES).any() else "cpu"


def device_label(events, platform: str) -> str:
    """`cuda:0` (`cuda:0,1` for several GPUs) for the GPUs that ran device activity, or `cpu`."""
    if platform == "cpu":
        return "cpu"
    pids = sorted({str(p) for p in events.loc[events["cat"].isin(DEVICE_CATEGORIES), "pid"]},
                  key=lambda p: (len(p), p))
    return "cuda:" + ",".join(pids)


def precision_of(ops) -> str:
    """The most common dtype of the GEMM operators' first input (record_shapes=True), as fp32/fp16/bf16; ''."""
    firsts = [list(d)[0] for d, gemm in zip(ops["input_dtypes"], ops["is_gemm"]) if gemm and len(d)]
    if not firsts:
        return ""
    values, counts = np.unique(firsts, return_counts=True)
    return DTYPE_PRECISION.get(str(values[int(np.argmax(counts))]), str(values[int(np.argmax(counts))]))


def devices_and_streams(trace, busy_us_by_device: dict) -> dict:
    """Per GPU: name, streams (activities and device µs per stream), busy µs over the steps used."""
    device = trace.events.loc[trace.events["cat"].isin(DEVICE_CATEGORIES), ["pid", "stream", "dur"]]
    names = device_names(trace.metadata)
    result = {}
    for pid, mine in device.groupby("pid"):
        streams = mine.groupby("stream")["dur"].agg(["size", "sum"])
        result[str(pid)] = {
            "name": names.get(str(pid), ""),
            "streams": {str(s): {"activities": int(r["size"]), "device_us": float(r["sum"])}
                        for s, r in streams.iterrows()},
            "busy_us_in_steps": float(busy_us_by_device.get(str(pid), 0.0))}
    return result


def threads(ops_rows, trace) -> dict:
    """Per host thread with operators in the steps used: its name and operator rows per phase."""
    names = trace.thread_names
    real = ops_rows[~ops_rows["op"].astype(str).str.startswith("[")]
    result = {}
    for tid, mine in real.groupby("tid"):
        label = next((v for k, v in names.items() if k.endswith(f"/{tid}")), "")
        result[str(tid)] = {"name": label, "op_rows": {str(p): int(n) for p, n in mine["phase"].value_counts().items()}}
    return result


def cuda_graphs(events, captured: int, ops) -> dict:
    """CUDA-graph launches and the kernels they replayed (a graph's kernels all carry its launch's correlation
    id). Where the trace holds a graph's capture, its replays are split back to the operators that captured
    it (ngbench.trace.cuda_graphs); what could not be is the `[cuda graph replay]` rows' device time."""
    from ngbench.schema import GRAPH_REPLAY_OP
    from ngbench.trace.cuda_graphs import GRAPH_LAUNCH

    calls = events.loc[events["cat"].isin(LAUNCH_CATEGORIES) & events["name"].str.match(GRAPH_LAUNCH), "correlation"]
    device = events.loc[events["cat"].isin(DEVICE_CATEGORIES), ["correlation", "dur"]]
    replayed = device[device["correlation"].isin(set(calls))]
    device_us, replayed_us = float(device["dur"].sum()), float(replayed["dur"].sum())
    steps = max(int(ops["iteration"].nunique()), 1)
    return {"launches": int(len(calls)), "captured_graphs": int(captured), "replayed_kernels": int(len(replayed)),
            "replayed_device_us": replayed_us, "device_share": replayed_us / device_us if device_us else 0.0,
            "unsplit_ms_per_step": float(ops.loc[ops["op"] == GRAPH_REPLAY_OP, "device_us"].sum()) / steps / 1000.0}


def kernel_kinds(events) -> dict:
    """Counts of device kernels Inductor generated (Triton) and of collective (NCCL/RCCL) kernels."""
    kernels = events.loc[events["cat"] == "kernel", "name"]
    return {"triton_kernels": int(kernels.str.match(r"^triton_").sum()),
            "collective_kernels": int(kernels.str.match(r"^(nccl|rccl)").sum())}


def outside_steps(events, windows, attributed_device: int) -> dict:
    """What the steps used did not cover: host operators outside every step range, device activity launched
    outside them (warm-up leftovers, steps not selected, work of threads that never launch in a step)."""
    ops = events.loc[events["cat"] == "cpu_op", ["ts"]]
    bounds = np.array(sorted((w.lo, w.hi) for w in windows)) if windows else np.zeros((0, 2))
    starts = ops["ts"].to_numpy()
    k = np.searchsorted(bounds[:, 0], starts, side="right") - 1 if len(bounds) else np.full(len(starts), -1)
    inside = (k >= 0) & (starts <= bounds[np.clip(k, 0, None), 1]) if len(bounds) else np.zeros(len(starts), bool)
    device = events.loc[events["cat"].isin(DEVICE_CATEGORIES), ["dur"]]
    covered = set().union(*(set(w.device.index) for w in windows)) if windows else set()  # rows of `events`
    outside_device = device[~device.index.isin(covered)]
    return {"cpu_op_events": int((~inside).sum()), "device_activities": int(len(outside_device)),
            "device_us": float(outside_device["dur"].sum()), "device_activities_in_steps": int(attributed_device)}


def profiler_settings(trace) -> dict:
    """What the trace says about how it was recorded, and whether shapes and stacks are really in it."""
    events, metadata = trace.events, trace.metadata
    settings = {k: metadata[k] for k in PROFILER_SETTINGS if k in metadata}
    ops = events.loc[events["cat"] == "cpu_op", ["input_dims", "scope"]]
    ignored = trace.ignored_events
    settings["has_input_shapes"] = bool(ops["input_dims"].notna().any())
    settings["has_python_stack"] = bool(ignored.get("python_function", 0)
                                        or (events["cat"] == "python_function").any())
    settings["has_module_scopes"] = bool((events["cat"] == "python_function").any()
                                         or (ops["scope"] != "").any())
    return settings


def environment(events, metadata: dict) -> dict:
    """summary.environment of a trace: GPU names, host name, library versions the trace records."""
    names = device_names(metadata)
    used = sorted({str(p) for p in events.loc[events["cat"].isin(DEVICE_CATEGORIES), "pid"]})
    gpu = ", ".join(sorted({names[p] for p in used if p in names})) or ", ".join(sorted(set(names.values())))
    return {"gpu": gpu, "gpus": names, "host_name": metadata.get("host_name", ""),
            **{k: metadata[k] for k in VERSION_KEYS if k in metadata}}
