"""TensorRT engine-inspector JSON + per-layer times -> the op-event table and fusion data (pure functions).

Inputs, in TensorRT's documented formats (TensorRT 8.6/10):
- layer information: `IEngineInspector.get_engine_information(LayerInformationFormat.JSON)` or
  `trtexec --exportLayerInfo=layers.json` (same JSON): {"Layers": [...], "Bindings": [...]}; with
  ProfilingVerbosity.DETAILED each layer is a dict ("Name", "LayerType", "Inputs", "Outputs",
  "TacticName", "Metadata"...), otherwise a bare name string;
- per-layer times: `trt.IProfiler.report_layer_time(layer_name, ms)` calls (one per layer per execution),
  or `trtexec --exportProfile=profile.json`: [{"count": N}, {"name", "timeMs", "averageMs", "medianMs",
  "percentage"}, ...] (averages only: ingested as one iteration);
- optionally `trtexec --exportTimes=times.json`: per-inference records with "latencyMs"/"computeMs".
A layer's source ONNX nodes come from its Metadata (`[ONNX Layer: <node>]`, separated by \\x1f) when
present, else from its name: `A + B`, `A || B`, `PWN(PWN(A), B)`, `{ForeignNode[first...last]}` (a range of
the ONNX graph order); `Reformatting CopyNode for ...`, `[trainStation]` and unnamed layers have none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ngbench.schema import IDLE_OP, normalise_events
from ngbench.trace.onnx_scopes import known_node

FOREIGN = re.compile(r"^\{ForeignNode\[(.*)\]\}$")
ONNX_LAYER = re.compile(r"\[ONNX Layer: ([^\]\x1f]+)\]")
NO_SOURCE = re.compile(r"^(Reformatting CopyNode for |reformatter \d|\(Unnamed Layer\*)|\[trainStation\d*\]")


@dataclass
class Layer:
    """One engine layer with its ONNX sources resolved."""

    name: str
    layer_type: str = ""
    sources: list[str] = field(default_factory=list)     # ONNX node names, graph order where known
    tactic: str = ""
    input_shapes: list = field(default_factory=list)
    input_dtypes: list = field(default_factory=list)


# ----------------------------------------------------------------------------- layer names
def _split_top(text: str, separator: str) -> list[str]:
    """Split on `separator` outside parentheses/brackets."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        char = text[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            start = i + len(separator)
            i = start
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_layer_name(name: str) -> tuple[list[str], tuple[str, str] | None]:
    """(explicit source node names, (first, last) of a ForeignNode range or None) of a layer name."""
    name = name.strip()
    if not name or NO_SOURCE.search(name):
        return [], None
    match = FOREIGN.match(name)
    if match:
        first, _, last = match.group(1).partition("...")
        return [], (first.strip(), (last or first).strip())
    pieces = [name]
    for separator in (" || ", " + "):
        pieces = [p for piece in pieces for p in _split_top(piece, separator)]
    sources: list[str] = []
    for piece in pieces:
        if piece.startswith("PWN(") and piece.endswith(")"):
            inner = _split_top(piece[4:-1], ", ")
            sources += [s for part in inner for s in parse_layer_name(part)[0]]
        elif FOREIGN.match(piece):
            continue
        else:
            sources.append(piece)
    return sources, None


def layer_sources(entry: dict | str, onnx_order: dict[str, int]) -> list[str]:
    """ONNX node names behind one inspector layer: Metadata first, else the parsed name."""
    if isinstance(entry, dict) and ONNX_LAYER.search(entry.get("Metadata") or ""):
        found = ONNX_LAYER.findall(entry["Metadata"])
    else:
        name = entry.get("Name", "") if isinstance(entry, dict) else entry
        found, span = parse_layer_name(name)
        if span and span[0] in onnx_order and span[1] in onnx_order:
            lo, hi = sorted((onnx_order[span[0]], onnx_order[span[1]]))
            found = [n for n, i in onnx_order.items() if lo <= i <= hi]
        elif span:                            # no graph order to expand the range: keep its ends
            found = list(span)
    resolved = [known_node(s, onnx_order, "_/ ") or s for s in found] if onnx_order else list(found)
    return list(dict.fromkeys(resolved))


def _tensor_shapes(tensors: list) -> tuple[list[list[int]], list[str]]:
    shapes = [[int(d) for d in t.get("Dimensions", [])] for t in tensors or [] if isinstance(t, dict)]
    dtypes = [str(t.get("Format/Datatype", "")) for t in tensors or [] if isinstance(t, dict)]
    return shapes, dtypes


def parse_layers(info: dict | list, onnx_order: dict[str, int] | None = None) -> list[Layer]:
    """Engine-inspector JSON (dict with "Layers", or the list) -> Layer objects in engine order."""
    entries = info.get("Layers", []) if isinstance(info, dict) else info
    order = onnx_order or {}
    layers = []
    for entry in entries:
        if isinstance(entry, str):
            layers.append(Layer(entry, sources=layer_sources(entry, order)))
            continue
        shapes, dtypes = _tensor_shapes(entry.get("Inputs"))
        layers.append(Layer(entry.get("Name", ""), entry.get("LayerType", ""), layer_sources(entry, order),
                            entry.get("TacticName", "") or "", shapes, dtypes))
    return layers


# ----------------------------------------------------------------------------- times
def profile_from_trtexec(profile: list) -> tuple[dict[str, float], int]:
    """trtexec --exportProfile JSON -> ({layer name: average ms}, iteration count)."""
    count = next((int(e["count"]) for e in profile if "count" in e), 1)
    times = {e["name"]: float(e.get("averageMs", e.get("timeMs", 0.0) / max(count, 1)))
             for e in profile if "name" in e}
    return times, count


def latency_from_trtexec_times(times: list) -> float:
    """Median per-inference latency in µs of a trtexec --exportTimes JSON (latencyMs, else computeMs)."""
    values = sorted(float(t.get("latencyMs", t.get("computeMs", 0.0))) for t in times)
    if not values:
        return 0.0
    mid = len(values) // 2
    return 1000.0 * (values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2)


# ----------------------------------------------------------------------------- op-event table
def _module_of(sources: list[str], scopes: dict[str, list[str]]) -> tuple[str, str]:
    """Common module path of the sources, and their module class when they all share one."""
    found = [scopes[s] for s in sources if s in scopes and scopes[s][0]]
    if not found:
        return "", ""
    paths = [f[0].split(".") for f in found]
    common = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    types = {f[1] for f in found}
    path = ".".join(common)
    return path, (types.pop() if len(types) == 1 and all(f[0] == path for f in found) else "")


def layer_events(layers: list[Layer], iterations: list[dict[str, float]], onnx_ops: dict[str, str],
                 scopes: dict[str, list[str]] | None = None, latency_us: list[float] | None = None):
    """Op-event table: one row per layer per iteration (+ `[idle]`), with (ops, iteration_us, busy_us).

    `iterations` holds per iteration {layer name: milliseconds}. A layer's time is its host, device and
    wall time; `latency_us[k]` (enqueue-to-sync wall time) minus Σ layer times is the `[idle]` row. When
    no latency is known, or it is below Σ layer times (the profiler's per-layer synchronisation stretched
    the run), the iteration latency is Σ layer times and idle is 0, so Σ wall_us == iteration_us always.
    """
    import pandas as pd

    scopes = scopes or {}
    by_name = {layer.name: layer for layer in layers}
    rows, iteration_us, busy_us = [], [], []
    for k, times in enumerate(iterations):
        names = [layer.name for layer in layers if layer.name in times]
        names += [n for n in times if n not in by_name]
        for seq, name in enumerate(names):
            layer = by_name.get(name, Layer(name))
            module, module_type = _module_of(layer.sources, scopes)
            us = 1000.0 * times[name]
            rows.append({"iteration": k, "seq": seq, "op": name, "module": module, "module_type": module_type,
                         "input_shapes": layer.input_shapes, "input_dtypes": layer.input_dtypes, "host_us": us,
                         "device_us": us, "wall_us": us, "kernels": [layer.tactic] if layer.tactic else [],
                         "fused_ops": [onnx_ops.get(s, "") for s in layer.sources if onnx_ops.get(s)],
                         "provider": "", "node": " + ".join(layer.sources)})
        busy = 1000.0 * sum(times.values())
        total = latency_us[k] if latency_us and latency_us[k] >= busy else busy
        rows.append({"iteration": k, "seq": len(names), "op": IDLE_OP, "wall_us": total - busy})
        iteration_us.append(total)
        busy_us.append(busy)
    return normalise_events(pd.DataFrame(rows)), iteration_us, busy_us


def layer_result(ops, iteration_us: list[float], busy_us: list[float]):
    """A ProfileResult of layer rows. TensorRT's IProfiler times each layer on the device and gives no host
    timeline, so there is nothing to rebuild: the wall view is the profiled one, and no kernel rows exist
    (a layer is one or more kernels TensorRT does not name)."""
    import pandas as pd

    from ngbench.trace.attribution import KERNEL_COLUMNS
    from ngbench.trace.result import ITERATION_COLUMNS, ProfileResult, stalled

    ops = ops.assign(wall_profiled_us=ops["wall_us"])
    iterations = pd.DataFrame({"iteration": range(len(iteration_us)), "block": 0, "profiled_us": iteration_us,
                               "rebuilt_us": iteration_us, "busy_us": busy_us, "busy_profiled_us": busy_us,
                               "record_cost_us": 0.0, "waits": 0}, columns=ITERATION_COLUMNS)
    iterations["stalled"] = stalled(iterations["profiled_us"])
    kept = set(iterations.loc[~iterations["stalled"], "iteration"])
    return ProfileResult(ops[ops["iteration"].isin(kept)].reset_index(drop=True),
                         pd.DataFrame(columns=["iteration"] + KERNEL_COLUMNS), iterations)


# ----------------------------------------------------------------------------- fusion data
def trt_fusion_table(layers: list[Layer], onnx_nodes: dict[str, str], is_gemm=None):
    """Where every source ONNX node landed in the engine; the input of the fusion-rate analysis.

    `onnx_nodes`: node name -> ONNX op type, in graph order. Returns a DataFrame, one row per ONNX node:
    node, op_type, is_gemm (the node itself), layer ('' when no layer names it: folded into a constant,
    eliminated, or hidden in an unparsed Myelin block), layer_type, n_sources (ONNX nodes in that layer),
    layer_has_gemm (a Conv/MatMul/Gemm among the layer's sources), status: 'fused' (layer has several
    sources), 'alone' (the layer is this node only) or 'absent'. Fusion rate of non-GEMM ops =
    share of rows with is_gemm False and status 'fused'; the paper's "BN fused with GEMM" = rows
    with op_type BatchNormalization, status 'fused' and layer_has_gemm True. A node named by several
    layers (TensorRT duplicates cheap nodes) is reported at its first layer.
    """
    import pandas as pd

    if is_gemm is None:
        from ngbench.taxonomy import load_taxonomy

        is_gemm = load_taxonomy().is_gemm_op
    placed: dict[str, Layer] = {}
    for layer in layers:
        for source in layer.sources:
            placed.setdefault(source, layer)
    rows = []
    for node, op_type in onnx_nodes.items():
        layer = placed.get(node)
        sources = layer.sources if layer else []
        rows.append({"node": node, "op_type": op_type, "is_gemm": bool(is_gemm(op_type)),
                     "layer": layer.name if layer else "", "layer_type": layer.layer_type if layer else "",
                     "n_sources": len(sources),
                     "layer_has_gemm": any(is_gemm(onnx_nodes.get(s, "")) for s in sources),
                     "status": "absent" if not layer else ("fused" if len(sources) > 1 else "alone")})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- trtexec files
def guess_op_type(node: str) -> str:
    """ONNX op type from a TorchScript-style node name: `/encoder/layer.0/MatMul_1` -> `MatMul`."""
    last = node.rsplit("/", 1)[-1]
    return re.sub(r"_\d+$", "", last)


def read_trtexec(profile_path: str | Path, layers_path: str | Path, onnx_path: str | Path | None = None,
                 times_path: str | Path | None = None, onnx_nodes: dict[str, str] | None = None):
    """Op-event table from trtexec's --exportProfile/--exportLayerInfo (+ --exportTimes) files.

    `onnx_path` (the ONNX file the engine was built from) maps sources to op types and, for ngbench
    exports, to module scopes (scopes.json beside it); `onnx_nodes` ({node name: op type}, graph order)
    can stand in for it. Returns (ops, iteration_us, busy_us, layers).
    """
    onnx_ops, scopes = dict(onnx_nodes or {}), {}
    if onnx_path:
        import onnx

        proto = onnx.load(str(onnx_path), load_external_data=False)
        onnx_ops = {n.name: n.op_type for n in proto.graph.node if n.name}
        scopes_file = Path(onnx_path).with_name("scopes.json")
        if scopes_file.exists():
            scopes = json.loads(scopes_file.read_text()).get("scopes", {})
    order = {name: i for i, name in enumerate(onnx_ops)}
    layers = parse_layers(json.loads(Path(layers_path).read_text()), order)
    if not onnx_ops:                           # no graph given: guess op types from node names
        onnx_ops = {s: guess_op_type(s) for layer in layers for s in layer.sources}
    times, _ = profile_from_trtexec(json.loads(Path(profile_path).read_text()))
    latency = [latency_from_trtexec_times(json.loads(Path(times_path).read_text()))] if times_path else None
    ops, iteration_us, busy_us = layer_events(layers, [times], onnx_ops, scopes, latency)
    return ops, iteration_us, busy_us, layers


def main(argv: list[str] | None = None) -> int:
    """`python -m ngbench.trace.trt_profile --profile P --layers L [--onnx M] [--times T] --out ops.parquet`."""
    import argparse
    import os

    from ngbench.taxonomy import classify

    parser = argparse.ArgumentParser(description="Turn trtexec --exportProfile/--exportLayerInfo files into "
                                                 "ngbench's classified op table (Parquet).")
    parser.add_argument("--profile", required=True, help="trtexec --exportProfile JSON")
    parser.add_argument("--layers", required=True, help="trtexec --exportLayerInfo JSON "
                                                        "(build with --profilingVerbosity=detailed)")
    parser.add_argument("--onnx", help="the ONNX file the engine was built from (op types, module scopes)")
    parser.add_argument("--times", help="trtexec --exportTimes JSON (iteration latency -> idle row)")
    parser.add_argument("--out", required=True, help="output Parquet file")
    args = parser.parse_args(argv)
    ops, iteration_us, _, _ = read_trtexec(args.profile, args.layers, args.onnx, args.times)
    table = classify(ops)
    tmp = f"{args.out}.tmp"
    table.to_parquet(tmp)
    os.replace(tmp, args.out)
    totals = table.groupby("op_group")["wall_us"].sum().sort_values(ascending=False)
    print(f"{len(table)} rows, latency {iteration_us[0]:.1f} us -> {args.out}")
    for group, us in totals.items():
        print(f"  {group:<14} {us:10.1f} us  {100 * us / iteration_us[0]:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
