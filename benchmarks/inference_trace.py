"""Synthetic Kineto traces of a GPU inference, shaped like ngbench's own profiled blocks of mask_rcnn on the H100.

What a timed block of `python -m ngbench model=mask_rcnn platform=cuda` holds per iteration (read from the
committed fig5-h100 results): ~6,260 top-level operators (many views without a kernel, ~1,400 `aten::item`
each with a device-to-host copy and a stream synchronise), ~4,200 device activities, ~15,000 operator
records. `write_block` writes one such block (`ProfilerStep#k` ranges, launches through `cudaLaunchKernel`
and the driver's `cuLaunchKernelEx`, kernels on one or two streams with cross-stream waits, copies, memsets,
ac2g flow arrows, thread/process metadata) in torch.profiler's layout; `write_annotation` writes the
annotation pass (one iteration, record_shapes + `ngbench::module` scopes) with the same operator sequence.
Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HOST_PID, MAIN_TID, GPU = 3310, 3310, 0
MAIN_STREAM, SIDE_STREAM = 7, 13
BASE_US = 5_760_380_000_000.0

# (top-level op, nested ops, what it does on the device, weight): mask_rcnn's operator mix per iteration
TEMPLATES = [
    ("aten::select", ["aten::as_strided"], "", 1547),
    ("aten::item", ["aten::_local_scalar_dense"], "item", 953),
    ("aten::sub", [], "kernel", 629),
    ("aten::add", [], "kernel", 543),
    ("aten::is_nonzero", ["aten::item", "aten::_local_scalar_dense"], "item", 400),
    ("aten::slice", ["aten::as_strided"], "", 266),
    ("aten::reshape", ["aten::view"], "", 249),
    ("aten::gt", [], "kernel", 201),
    ("aten::lt", [], "kernel", 200),
    ("aten::mul", [], "kernel", 197),
    ("aten::copy_", [], "copy", 105),
    ("aten::zeros", ["aten::empty", "aten::zero_", "aten::fill_"], "memset", 102),
    ("aten::upsample_bilinear2d", ["aten::empty"], "kernel", 101),
    ("aten::expand", ["aten::as_strided"], "", 100),
    ("aten::conv2d", ["aten::convolution", "aten::_convolution", "aten::cudnn_convolution", "aten::add_"], "conv", 81),
    ("aten::relu_", ["aten::clamp_min_"], "kernel", 59),
    ("aten::alias", [], "", 54),
    ("aten::rsqrt", [], "kernel", 53),
    ("aten::rsub", ["aten::sub"], "kernel", 47),
    ("aten::to", ["aten::_to_copy", "aten::empty_strided", "aten::copy_"], "copy", 40),
    ("aten::index", ["aten::nonzero", "aten::empty"], "index", 29),
    ("aten::cat", [], "kernel", 16),
    ("torchvision::roi_align", ["aten::empty", "aten::zeros"], "kernel", 8),
    ("torchvision::nms", ["aten::sort", "aten::empty"], "index", 4),
]
KERNELS = {"aten::sub": "elementwise_kernel_sub", "aten::add": "vectorized_elementwise_kernel_add",
           "aten::gt": "elementwise_kernel_gt", "aten::lt": "elementwise_kernel_lt",
           "aten::mul": "vectorized_elementwise_kernel_mul", "aten::upsample_bilinear2d": "upsample_bilinear2d_out_frame",
           "aten::relu_": "vectorized_elementwise_kernel_clamp_min", "aten::rsqrt": "vectorized_elementwise_kernel_rsqrt",
           "aten::rsub": "elementwise_kernel_rsub", "aten::cat": "CatArrayBatchedCopy",
           "torchvision::roi_align": "roi_align_forward_kernel"}
MODULES = ["transform [GeneralizedRCNNTransform]", "backbone.body.conv1 [Conv2d]", "backbone.body.layer1.0 [Bottleneck]",
           "backbone.fpn [FeaturePyramidNetwork]", "rpn.anchor_generator [AnchorGenerator]", "rpn [RegionProposalNetwork]",
           "roi_heads.box_roi_pool [MultiScaleRoIAlign]", "roi_heads [RoIHeads]", "roi_heads.mask_head [MaskRCNNHeads]"]


def operator_sequence(ops_per_iteration: int, seed: int) -> list[tuple]:
    """The iteration's top-level operators, the same in every iteration and in the annotation pass."""
    chooser = random.Random(seed)
    weights = [t[3] for t in TEMPLATES]
    return chooser.choices(TEMPLATES, weights=weights, k=ops_per_iteration)


class BlockWriter:
    """Writes events in torch.profiler's layout: one event per indented block of lines."""

    def __init__(self, handle, seed: int, streams: int):
        self.handle, self.first = handle, True
        self.gpu = streams > 0
        self.random = random.Random(seed)
        self.correlation, self.external = 1000, 0
        self.streams = streams
        self.stream_free = {MAIN_STREAM: 0.0, SIDE_STREAM: 0.0}

    def event(self, event: dict) -> None:
        head = {k: event[k] for k in ("ph", "cat", "name", "pid", "tid") if k in event}
        times = {k: event[k] for k in ("ts", "dur", "id", "bp") if k in event}
        lines = ["  {", "    " + json.dumps(head)[1:-1] + ("," if times or "args" in event else "")]
        if times:
            lines.append("    " + json.dumps(times)[1:-1] + ("," if "args" in event else ""))
        if "args" in event:
            lines += ['    "args": {', "      " + json.dumps(event["args"])[1:-1], "    }"]
        lines.append("  }")
        self.handle.write(("" if self.first else ",\n") + "\n".join(lines))
        self.first = False

    def host(self, name: str, ts: float, end: float, cat: str = "cpu_op", **args) -> None:
        self.external += 1
        self.event({"ph": "X", "cat": cat, "name": name, "pid": HOST_PID, "tid": MAIN_TID, "ts": round(ts, 3),
                    "dur": round(end - ts, 3), "args": {"External id": self.external, "Record function id": 0,
                                                        "Ev Idx": self.external, **args}})

    def launch(self, name: str, ts: float, activity: str, kind: str, dur: float, stream: int = MAIN_STREAM,
               call: str = "cudaLaunchKernel", cat: str = "cuda_runtime", after: float = 0.0) -> float:
        """A launch call at ts and its device activity; returns the call's end."""
        self.correlation += 1
        c = self.correlation
        call_end = ts + (2.0 if cat == "cuda_driver" else 3.2) + self.random.random()
        self.event({"ph": "X", "cat": cat, "name": call, "pid": HOST_PID, "tid": MAIN_TID, "ts": round(ts, 3),
                    "dur": round(call_end - ts, 3), "args": {"External id": self.external, "cbid": 211, "correlation": c}})
        start = max(ts + 4.0, self.stream_free[stream], after)
        dur = round(dur * (0.95 + 0.1 * self.random.random()), 3)
        self.stream_free[stream] = start + dur
        self.event({"ph": "X", "cat": activity, "name": name, "pid": GPU, "tid": stream, "ts": round(start, 3),
                    "dur": dur, "args": {"External id": self.external, "queued": 0, "device": 0, "context": 1,
                                         "stream": stream, "correlation": c, "registers per thread": 32,
                                         "grid": [128, 1, 1], "block": [256, 1, 1]}})
        self.event({"ph": "s", "id": c, "pid": HOST_PID, "tid": MAIN_TID, "ts": round(ts, 3), "cat": "ac2g",
                    "name": "ac2g"})
        self.event({"ph": "f", "id": c, "pid": GPU, "tid": stream, "ts": round(start, 3), "cat": "ac2g",
                    "name": "ac2g", "bp": "e"})
        return call_end

    def sync(self, ts: float, call: str = "cudaStreamSynchronize") -> float:
        """A blocking call at ts that returns once every stream is done; returns its end."""
        self.correlation += 1
        end = max(ts + 1.5, max(self.stream_free.values()) + 1.5 + self.random.random())
        self.event({"ph": "X", "cat": "cuda_runtime", "name": call, "pid": HOST_PID, "tid": MAIN_TID, "ts": round(ts, 3),
                    "dur": round(end - ts, 3), "args": {"External id": self.external, "cbid": 131,
                                                        "correlation": self.correlation}})
        return end


def _device_work(w: BlockWriter, name: str, effect: str, t: float) -> float:
    """The launches (and blocking calls) of one operator's innermost record, from host time t; returns the time
    the host is done with them."""
    pick = w.random.random
    if not w.gpu:  # a CPU run: the operator computes on the host
        return t + (30.0 if effect == "conv" else 1.0) + 3 * pick()
    if effect == "kernel":
        side = w.streams > 1 and pick() < 0.1
        long = name in ("aten::upsample_bilinear2d", "torchvision::roi_align", "aten::cat")
        return w.launch(KERNELS[name], t, "kernel", "kernel", 20.0 if long else 1.2 + 2 * pick(),
                        stream=SIDE_STREAM if side else MAIN_STREAM,
                        after=w.stream_free[MAIN_STREAM] if side else 0.0)
    if effect == "conv":
        t = w.launch("sm90_xmma_fprop_implicit_gemm_f16f32_tilesize128x128", t, "kernel", "kernel", 30.0 + 20 * pick(),
                     call="cuLaunchKernelEx", cat="cuda_driver")
        return w.launch("vectorized_elementwise_kernel_add", t + 1.0, "kernel", "kernel", 2.0)
    if effect == "item":
        t = w.launch("Memcpy DtoH (Device -> Pageable)", t, "gpu_memcpy", "copy", 1.2, call="cudaMemcpyAsync")
        return w.sync(t + 0.5)
    if effect == "copy":
        end = w.launch("Memcpy HtoD (Pageable -> Device)", t, "gpu_memcpy", "copy", 1.5, call="cudaMemcpyAsync")
        return max(end, w.stream_free[MAIN_STREAM] + 0.4) if pick() < 0.5 else end  # half of them wait for it
    if effect == "memset":
        return w.launch("Memset (Device)", t, "gpu_memset", "memset", 1.0, call="cudaMemsetAsync")
    if effect == "index":
        t = w.launch("nonzero_count_kernel", t, "kernel", "kernel", 3.0)
        t = w.launch("Memcpy DtoH (Device -> Pageable)", t + 0.5, "gpu_memcpy", "copy", 1.2, call="cudaMemcpyAsync")
        t = w.sync(t + 0.5)
        return w.launch("index_elementwise_kernel", t + 1.0, "kernel", "kernel", 2.5)
    return t + 1.0 + 3 * pick()


SHAPE_ARGS = {"Input Dims": [[1, 256, 56, 56], [256, 256, 3, 3], [256]], "Input type": ["c10::Half", "c10::Half", "c10::Half"],
              "Concrete Inputs": ["", "", "", "[1, 1]", "[1, 1]"]}


def write_operator(w: BlockWriter, template: tuple, t: float, shapes: bool) -> float:
    """One top-level operator from host time t, its nested records opened in a chain (the device work in the
    innermost); returns its end."""
    name, children, effect, _ = template
    names = [name] + children
    starts = [t + k * (0.6 + 0.4 * w.random.random()) for k in range(len(names))]
    done = _device_work(w, name, effect, starts[-1] + 1.0)
    ends = []
    for _ in names:
        done += 0.5 + 0.8 * w.random.random()
        ends.append(done)
    ends.reverse()
    args = SHAPE_ARGS if shapes else {}
    for record, start, end in zip(names, starts, ends):
        w.host(record, start, end, **args)
    return ends[0]


def write_iteration(w: BlockWriter, step: int, ops: list[tuple], t: float, scopes: bool) -> float:
    """One `ProfilerStep#step` from host time t; with `scopes` (the annotation pass) shapes and module ranges."""
    start = t
    t += 20.0
    scope_start, scope_index = t, 0
    for k, template in enumerate(ops):
        t = write_operator(w, template, t, shapes=scopes) + 3.0 + 4.0 * w.random.random()
        if scopes and (k % 50 == 49 or k == len(ops) - 1):
            module = MODULES[scope_index % len(MODULES)]
            w.host(f"ngbench::module {module}", scope_start - 0.2, t - 0.2, cat="user_annotation")
            scope_start, scope_index = t, scope_index + 1
    t = (w.sync(t + 2.0, call="cudaDeviceSynchronize") if w.gpu else t) + 5.0
    w.host(f"ProfilerStep#{step}", start, t, cat="user_annotation")
    return t + 30.0


def write_trace(path: Path, steps: list[int], ops: list[tuple], seed: int, streams: int = 1,
                scopes: bool = False) -> None:
    """A trace of `steps` iterations of `ops`, in torch.profiler's file layout (`streams` 0: a CPU run)."""
    with open(path, "w") as handle:
        handle.write('{\n  "schemaVersion": 1,\n  "deviceProperties": [\n    {"id": 0, "name": "NVIDIA H100 80GB HBM3", '
                     '"totalGlobalMem": 85029158912, "computeMajor": 9, "computeMinor": 0}\n  ],\n'
                     f'  "record_shapes": {int(scopes)},\n  "baseTimeNanoseconds": 1764190000000000000,\n'
                     '  "traceEvents": [\n')
        w = BlockWriter(handle, seed, streams)
        w.event({"ph": "M", "name": "process_name", "pid": HOST_PID, "tid": 0, "args": {"name": "python3"}})
        w.event({"ph": "M", "name": "thread_name", "pid": HOST_PID, "tid": MAIN_TID, "args": {"name": "thread 3310 (python3)"}})
        if streams:
            w.event({"ph": "M", "name": "process_name", "pid": GPU, "tid": 0, "args": {"name": "python3"}})
        t = BASE_US + seed * 1e6
        for step in steps:
            w.stream_free = {s: max(v, t) for s, v in w.stream_free.items()}
            t = write_iteration(w, step, ops, t, scopes)
        handle.write('\n  ],\n  "traceName": "synthetic-inference"\n}\n')


def write_blocks(folder: Path, ops_per_iteration: int = 6264, blocks: int = 6, iters_per_block: int = 2,
                 streams: int = 1, seed: int = 0) -> tuple[list[Path], Path]:
    """`blocks` timed traces (ProfilerStep#1.. after the schedule's one warm-up step) and the annotation trace
    (ProfilerStep#0, shapes and module scopes) of one synthetic model; returns (timed paths, annotation path)."""
    folder.mkdir(parents=True, exist_ok=True)
    ops = operator_sequence(ops_per_iteration, seed)
    paths = []
    for block in range(blocks):
        path = folder / f"block{block}.json"
        write_trace(path, list(range(1, 1 + iters_per_block)), ops, seed=seed * 100 + block + 1, streams=streams)
        paths.append(path)
    annotation = folder / "annotation.json"
    write_trace(annotation, [0], ops, seed=seed * 100 + 99, streams=streams, scopes=True)
    return paths, annotation


CALIBRATED_COSTS_US = {"op": 1.5416, "runtime": 2.126, "driver": 0.7673}  # the H100's, from fig5-h100 mask_rcnn
CALIBRATED_SLOWDOWN = 0.0899


def profile_result(paths: list[Path], annotation: Path, costs=None, device: str = "cuda", flow: str = "torch",
                   keep_trace: Path | None = None):
    """What `KinetoProfiler.result(costs)` gives for timed block traces already written (`paths`) and the
    annotation pass's trace: the run path's post-processing without a model (the annotation pass's profiled
    inference is replaced by copying `annotation`). `flow` torch: containers dropped (TorchFlow); inductor:
    compiled events, CUDA-graph replays split against the graphs captured in the first trace."""
    import shutil

    import ngbench.trace.torch_profiler as torch_profiler
    from ngbench.trace.reconstruct import Costs

    costs = costs if costs is not None else Costs(CALIBRATED_COSTS_US, CALIBRATED_SLOWDOWN)
    options = _flow_options(flow, paths)
    real_steps = torch_profiler.profiled_steps
    torch_profiler.profiled_steps = lambda *args, **kwargs: shutil.copyfile(annotation, args[4])
    try:
        with torch_profiler.KinetoProfiler(None, None, device, keep_trace=str(keep_trace) if keep_trace else None,
                                           **options) as profiler:
            profiler.traces = [str(p) for p in paths]
            return profiler.result(costs)
    finally:
        torch_profiler.profiled_steps = real_steps


def _flow_options(flow: str, paths: list[Path]) -> dict:
    from ngbench.taxonomy import load_taxonomy
    from ngbench.trace.kineto import drop_containers, load_trace

    if flow == "torch":
        taxonomy = load_taxonomy()
        return {"ops_filter": lambda events: drop_containers(events, taxonomy.is_container)}
    from ngbench.trace.cuda_graphs import captured_graphs, split_graph_window
    from ngbench.trace.inductor_code import compiled_events, label_kernels

    graphs = captured_graphs(load_trace(paths[0]))
    return {"ops_filter": lambda events: compiled_events(events, graphs),
            "window_filter": lambda window: split_graph_window(window, graphs),
            "post": lambda rows, events: label_kernels(rows, {}, set(), [], "Model")}
