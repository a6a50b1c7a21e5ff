"""ModelBundle -> ONNX file, cached on disk, with each ONNX node's nn.Module scope kept beside it.

Shared by the `ort` and `trt` flows (ngbench.flows.onnx.flow.OnnxFlow). The exporter is torch's dynamo exporter (`torch.onnx.export(...,
dynamo=True)`, needs onnxscript): it writes each node's module path and class into the node's
`metadata_props` (`pkg.torch.onnx.name_scopes`, `pkg.torch.onnx.class_hierarchy`), which we read into
`scopes.json` (ngbench.trace.onnx_scopes reads them). The TorchScript exporter (`dynamo=False`) is the fallback; its node names carry the scope
(`/transformer/h.0/attn/MatMul`) but not the class. A cache entry is one directory
`<cache_dir>/<model>-<precision>-op<opset>-<hash>/` holding `model.onnx` (+ external data for >2 GB
models) and `scopes.json`; it is written under a temporary name and renamed whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ngbench.errors import UserError, first_line, require
from ngbench.trace.onnx_scopes import graph_scopes, scope_from_metadata

MODEL_FILE = "model.onnx"
SCOPES_FILE = "scopes.json"
DYNAMO_MIN_OPSET = 18       # the dynamo exporter's lowest native opset; lower ones are converted after


@dataclass
class ExportedModel:
    """An ONNX file on disk plus what the flows need to read its profile back."""

    path: str
    input_names: list[str]
    output_names: list[str]
    scopes: dict[str, list[str]] = field(default_factory=dict)   # node name -> [module path, module class]
    op_types: dict[str, str] = field(default_factory=dict)       # node name -> ONNX op type
    exporter: str = ""
    opset: int = 0                                                # the opset the file really has
    export_s: float = 0.0
    cache_hit: bool = False


# ----------------------------------------------------------------------------- inputs and outputs
def _flat_tensors(value: Any) -> list:
    """The tensors inside a model output (ModelOutput/dict/tuple/list), in order; caches etc. dropped."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flat_tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flat_tensors(v)]
    return []


def flat_inputs(bundle) -> tuple[list, list[str]]:
    """The bundle's input tensors (args then kwargs) and their names (bundle.input_names when they fit)."""
    import torch

    tensors = [a for a in bundle.args if isinstance(a, torch.Tensor)]
    tensors += [v for v in bundle.kwargs.values() if isinstance(v, torch.Tensor)]
    names = list(bundle.input_names)
    if len(names) != len(tensors):
        names = [k for k, v in bundle.kwargs.items() if isinstance(v, torch.Tensor)]
        names = [f"input_{i}" for i in range(len(tensors) - len(names))] + names
    return tensors, names


def _wrapper(bundle):
    """An nn.Module taking the input tensors positionally and returning a flat tuple of output tensors."""
    import torch

    arg_is_tensor = [isinstance(a, torch.Tensor) for a in bundle.args]
    kw_tensor_keys = [k for k, v in bundle.kwargs.items() if isinstance(v, torch.Tensor)]

    class FlatIO(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            it = iter(tensors)
            args = [next(it) if is_t else a for a, is_t in zip(bundle.args, arg_is_tensor, strict=True)]
            kwargs = dict(bundle.kwargs)
            kwargs.update({k: next(it) for k in kw_tensor_keys})
            return tuple(_flat_tensors(self.model(*args, **kwargs)))

    return FlatIO(bundle.model).eval()


def _output_names(bundle, count: int) -> list[str]:
    names = list(bundle.output_names)[:count]
    return names + [f"output_{i}" for i in range(len(names), count)]


# ----------------------------------------------------------------------------- cache key
def cache_key(model_name: str, model_cfg: dict, tensors: list, precision: str, opset: int,
              dynamic_batch: bool = False) -> str:
    """Directory name of the cache entry: readable prefix + hash of everything the export depends on. With
    `dynamic_batch` the inputs' first dimension is not part of it: one export serves every batch size."""
    import torch

    shapes = [list(t.shape)[1:] if dynamic_batch and t.dim() else list(t.shape) for t in tensors]
    described = {
        "model": model_name, "model_cfg": model_cfg, "precision": precision, "opset": opset,
        "inputs": [[shape, str(t.dtype)] for shape, t in zip(shapes, tensors, strict=True)], "torch": torch.__version__,
    }
    if dynamic_batch:   # the key of a static export stays what it was: its cached files stay valid
        described["dynamic_batch"] = True
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name)
    return f"{safe}-{precision}-op{opset}-{digest[:16]}"


# ----------------------------------------------------------------------------- export
BATCH_AXIS = "batch"   # the name of the inputs' symbolic first dimension in a dynamic_batch export


def _export_to(wrapper, tensors, path: Path, names: tuple[list[str], list[str]], opset: int,
               dynamic_batch: bool = False):
    """Run the exporter (dynamo, else TorchScript) into `path`; returns (exporter name, scopes). With
    `dynamic_batch`, every input's first dimension is one symbol, BATCH_AXIS (as the seed artifact's optimum
    export has it: its batch and sequence axes are symbolic)."""
    import torch

    input_names, output_names = names
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx"):   # their INFO lines would flood the run log
        logging.getLogger(noisy).setLevel(logging.WARNING)
    dynamic_shapes = dynamic_axes = None
    if dynamic_batch:
        batch = torch.export.Dim(BATCH_AXIS)
        # the wrapper's forward takes the tensors as one *args: a tuple of them, in the one positional argument
        dynamic_shapes = (tuple({0: batch} if t.dim() else None for t in tensors),)
        dynamic_axes = {name: {0: BATCH_AXIS} for name, t in zip(input_names, tensors, strict=True) if t.dim()}
    try:
        program = torch.onnx.export(wrapper, tuple(tensors), None, dynamo=True, verbose=False,
                                    opset_version=max(opset, DYNAMO_MIN_OPSET), input_names=input_names,
                                    output_names=output_names, optimize=True, dynamic_shapes=dynamic_shapes)
        # read the scopes before any opset conversion: converters drop metadata_props, not node names
        scopes = {n.name: scope_from_metadata(n.name, dict(n.metadata_props))
                  for n in program.model.graph.all_nodes() if n.name}
        if opset < DYNAMO_MIN_OPSET:
            from onnxscript import version_converter

            version_converter.convert_version(program.model, opset, fallback=True)
        contiguous_initializers(program.model)
        try:
            program.save(str(path))
        finally:
            release_initializers(program.model)
        return "dynamo", scopes
    except Exception as dynamo_exc:  # noqa: BLE001 - every exporter failure becomes one user-facing line
        try:
            torch.onnx.export(wrapper, tuple(tensors), str(path), dynamo=False, opset_version=opset,
                              input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes)
        except Exception:  # noqa: BLE001
            raise dynamo_exc  # noqa: B904 - keep the dynamo error and its __cause__ (the root cause)
    import onnx

    return "torchscript", graph_scopes(onnx.load(str(path), load_external_data=False))


def contiguous_initializers(model) -> int:
    """Give every initializer held as a strided numpy view a C-ordered copy; returns how many were copied.

    The exporter's optimizer folds each Linear weight's Transpose into a transposed numpy *view*, and onnx_ir's
    `Tensor.tofile` writes such a view element by element: a 4096x11008 fp32 weight took 7.9 s against 0.06 s
    contiguous (2-core machine), which made saving Llama-2-7B's 26 GB of transposed weights most of its export.
    The copy (torch's, 0.24 s for that weight; numpy's where torch lacks the dtype) holds the same bytes.
    """
    import numpy as np
    import onnx_ir as ir
    import torch

    copied = 0
    for value in model.graph.initializers.values():
        tensor = value.const_value
        raw = getattr(tensor, "raw", None)
        if not isinstance(tensor, ir.Tensor) or not isinstance(raw, np.ndarray) or raw.flags.c_contiguous:
            continue
        try:
            array = torch.from_numpy(raw).contiguous().numpy()
        except TypeError:                   # a dtype torch cannot wrap (ml_dtypes' bfloat16, float8 ...)
            array = np.ascontiguousarray(raw)
        value.const_value = ir.Tensor(array, dtype=tensor.dtype, name=tensor.name, doc_string=tensor.doc_string,
                                      metadata_props=dict(tensor.metadata_props))
        copied += 1
    return copied


def release_initializers(model) -> None:
    """Drop the exported graph's weights. onnxscript's rewrite rules keep the nodes they last matched in
    module-level state, and through them the graph and its initializers: the torch model's own parameters and
    the contiguous copies above (26 GB of host memory for Llama-2-7B fp32). The device memory of the
    parameters is freed by OnnxFlow's `release_weights`, which shrinks their storage whoever holds them."""
    for value in model.graph.initializers.values():
        value.const_value = None


def _write_entry(bundle, tensors, names, opset: int, final: Path, dynamic_batch: bool = False) -> str:
    """Export into a temporary sibling directory, write scopes.json, then rename it into place."""
    import torch

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        with torch.no_grad():
            exporter, scopes = _export_to(_wrapper(bundle), tensors, tmp / MODEL_FILE, names, opset, dynamic_batch)
        meta = {"exporter": exporter, "input_names": names[0], "output_names": names[1], "scopes": scopes}
        (tmp / SCOPES_FILE).write_text(json.dumps(meta))
        if final.exists():                      # a concurrent run finished first: keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
        return exporter
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_entry(entry: Path, export_s: float = 0.0, cache_hit: bool = True) -> ExportedModel:
    """Read a finished cache entry."""
    import onnx

    meta = json.loads((entry / SCOPES_FILE).read_text())
    proto = onnx.load(str(entry / MODEL_FILE), load_external_data=False)
    op_types = {n.name: n.op_type for n in proto.graph.node if n.name}
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return ExportedModel(str(entry / MODEL_FILE), meta["input_names"], meta["output_names"],
                         meta["scopes"], op_types, meta["exporter"], opset, export_s, cache_hit)


def export_onnx(bundle, *, model_name: str, model_cfg: dict, precision: str, opset: int,
                cache_dir: str | os.PathLike, dynamic_batch: bool = False) -> ExportedModel:
    """Export `bundle` to ONNX (or reuse the cached file); raises UserError when the exporter fails. With
    `dynamic_batch` the inputs' first dimension is symbolic and one cached export serves every batch size."""
    require("onnx", "onnx", "ONNX export")
    require("onnxscript", "onnxscript", "ONNX export (torch's dynamo exporter)")
    import torch

    tensors, input_names = flat_inputs(bundle)
    entry = Path(cache_dir) / cache_key(model_name, model_cfg, tensors, precision, opset, dynamic_batch)
    if (entry / SCOPES_FILE).exists():
        return load_entry(entry)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            outputs = _flat_tensors(bundle())
        names = (input_names, _output_names(bundle, len(outputs)))
        _write_entry(bundle, tensors, names, opset, entry, dynamic_batch)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"ONNX export of {model_name} failed: {first_line(exc, root_cause=True)}") from exc
    return load_entry(entry, time.perf_counter() - start, cache_hit=False)
