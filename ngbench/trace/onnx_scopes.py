"""nn.Module scopes of ONNX nodes: read from the exporter's node metadata, and carried over to the nodes of
graphs that ONNX Runtime or TensorRT rewrote (fusions, quantization) by name and by tensor flow.
Pure functions over node names, metadata and (name, inputs, outputs) triples.
"""

from __future__ import annotations

import ast


def _strip_root(path: str) -> str:
    """Module path without the export wrapper's `model.` prefix."""
    return path[len("model."):] if path.startswith("model.") else ("" if path == "model" else path)


def scope_from_metadata(name: str, meta: dict) -> list[str]:
    """[module path, module class] of a node, from dynamo metadata or a TorchScript-style node name."""
    if "pkg.torch.onnx.name_scopes" in meta:
        try:
            names = ast.literal_eval(meta["pkg.torch.onnx.name_scopes"])
            classes = ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
        except (ValueError, SyntaxError):
            return ["", ""]
        if len(names) >= 2:
            module_type = classes[-2].rsplit(".", 1)[-1] if len(classes) >= 2 else ""
            path = _strip_root(names[-2])
            return [path, module_type if path else ""]
        return ["", ""]
    if name.startswith("/"):                           # TorchScript: /model/transformer/h.0/attn/MatMul
        parts = name.strip("/").split("/")[:-1]
        return [_strip_root(".".join(parts)), ""]
    return ["", ""]


def graph_scopes(proto) -> dict[str, list[str]]:
    """node name -> [module path, module class] for every node of an ONNX ModelProto's main graph."""
    return {n.name: scope_from_metadata(n.name, {p.key: p.value for p in n.metadata_props})
            for n in proto.graph.node if n.name}


def resolve_scopes(graph_nodes, known: dict[str, list[str]], producers: dict[str, str]) -> dict[str, list[str]]:
    """Scopes for the nodes of a rewritten graph (ORT-optimized or quantized: new nodes, new names).

    `graph_nodes` are (name, inputs, outputs) triples in graph order; `known` the exported graph's
    scopes; `producers` maps each exported tensor name to the node that produced it. A new node takes the
    scope of, in this order: the exported node whose name it extends (quantization renames `n` to
    `n_MatMul_quant`); the exported node that produced one of its outputs (fusions keep the last fused
    node's output); the first resolved node consuming its outputs (a DynamicQuantizeLinear belongs to
    the MatMul it feeds); the producer of one of its inputs.
    """
    resolved: dict[str, list[str]] = {}
    pending = []
    for name, inputs, outputs in graph_nodes:
        source = known_node(name, known)
        source = source or next((producers[t] for t in outputs if t in producers), None)
        if source in known:
            resolved[name] = known[source]
        else:
            pending.append((name, inputs, outputs))
    consumers: dict[str, list[str]] = {}
    for name, inputs, _ in graph_nodes:
        for tensor in inputs:
            consumers.setdefault(tensor, []).append(name)
    for name, inputs, outputs in pending:
        users = [u for t in outputs for u in consumers.get(t, []) if u in resolved]
        if users:
            resolved[name] = resolved[users[0]]
            continue
        source = next((producers[t] for t in inputs if t in producers), None)
        resolved[name] = known.get(source, ["", ""]) if source else ["", ""]
    return resolved


def known_node(name: str, known, boundaries: str = "_/") -> str | None:
    """`name` if it is a known node, else the longest known node name it extends at one of the `boundaries`
    characters (ORT's `node_Gemm_1_MatMul_quant`, TensorRT's `/x/MatMul_myl0_3`); None when there is none."""
    if name in known:
        return name
    cuts = [i for i, char in enumerate(name) if char in boundaries]
    return next((name[:cut] for cut in reversed(cuts) if name[:cut] in known), None)


def producers_of(proto) -> dict[str, str]:
    """Tensor name -> name of the node producing it."""
    return {out: n.name for n in proto.graph.node for out in n.output}
