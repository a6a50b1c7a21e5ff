"""Parse a PyTorch-profiler (Kineto) Chrome trace into one tidy event table.

Columns: name, cat, ts, dur, end (microseconds), pid, tid, stream, correlation, external_id, input_dims,
input_types, concrete_inputs (with record_shapes: each non-tensor input's value as text, e.g. a convolution's
stride '[2, 2]'), seq_nr (autograd sequence number), scope (a module scope the event carries in its args).
Categories kept: cpu_op (operators), user_annotation (record_function ranges: iterations and module scopes),
cuda_runtime / cuda_driver / hip_runtime (launches and other API calls), kernel / gpu_memcpy / gpu_memset
(device activity; `pid` is the device, `stream` its stream), and the `nn.Module: ...` python_function events
of with_stack traces (module scopes). Other events are counted by kind, not kept.

Text columns are pandas Categoricals (names, categories and threads repeat across millions of events) and
numbers are numpy arrays, filled without keeping a dict per event. A large trace is parsed in chunks by
several processes (ngbench.trace.chrome_json cuts it), each returning compact columns that are merged here.
"""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
# CUDA's runtime/driver calls; ROCm traces write `cuda_runtime` for HIP calls too, or `hip_runtime`
LAUNCH_CATEGORIES = ("cuda_runtime", "cuda_driver", "hip_runtime", "hip_driver")
HOST_RECORD_CATEGORIES = ("cpu_op", "user_annotation") + LAUNCH_CATEGORIES
# with_stack=True: each nn.Module call is a python_function event `nn.Module: <Class>_<k>` (the other Python
# frames are not kept: a trace of a long job holds millions of them)
MODULE_EVENT_PREFIX = "nn.Module: "
KEPT_CATEGORIES = frozenset(HOST_RECORD_CATEGORIES + DEVICE_CATEGORIES)
COLUMNS = ["name", "cat", "ts", "dur", "end", "pid", "tid", "stream", "correlation", "external_id",
           "input_dims", "input_types", "concrete_inputs", "seq_nr", "scope"]
TEXT = ("name", "cat", "pid", "tid", "scope")
REAL = ("ts", "dur")
INTEGER = ("stream", "correlation", "external_id", "seq_nr")
SHAPES = ("input_dims", "input_types", "concrete_inputs")
PARALLEL_MIN_BYTES = 64 << 20   # smaller traces are parsed in this process


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Parsing creates millions of short-lived dicts and keeps millions of list values: the cyclic garbage
    collector would scan them over and over (it doubles the parsing time) and there are no cycles to find.
    The same holds for the attribution after it (a context manager or a decorator)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _int_or(value, default: int = -1) -> int:
    if type(value) is int:
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _scope_of(args: dict) -> str:
    """The module scope an event carries itself: TorchScript's `Module Hierarchy` (with_modules=True) or the
    `ngbench module` / `ngbench module_type` args of a trace.json that ngbench saved ('path [Class]')."""
    hierarchy = args.get("Module Hierarchy")
    if hierarchy:
        return str(hierarchy)
    if "ngbench module_type" in args:
        return f"{args.get('ngbench module', '')} [{args['ngbench module_type']}]"
    return ""


class _Columns:
    """Event rows accumulated column by column: codes of distinct text values, arrays of numbers."""

    def __init__(self):
        from array import array

        self.labels: dict[str, dict] = {k: {} for k in TEXT}
        self.codes = {k: array("i") for k in TEXT + SHAPES}
        self.numbers = {**{k: array("d") for k in REAL}, **{k: array("q") for k in INTEGER}}
        self.shape_index: dict = {}      # a value's text (repr, or raw JSON bytes) -> its code
        self.shape_values: list = []
        self.ignored: Counter = Counter()
        self.process_names: dict[str, str] = {}
        self.thread_names: dict[str, str] = {}

    def consume(self, events: Iterable[dict]) -> None:
        """Add every event. The hot loop of reading a trace (millions of events): local names only, no
        function call per field where a dict lookup does."""
        labels, codes, numbers = self.labels, self.codes, self.numbers
        names, cats, pids, tids, scopes = (labels[k] for k in TEXT)
        add_name, add_cat, add_pid, add_tid, add_scope = (codes[k].append for k in TEXT)
        add_ts, add_dur = numbers["ts"].append, numbers["dur"].append
        add_stream, add_corr, add_external, add_seq = (numbers[k].append for k in INTEGER)
        add_dims, add_types, add_values = (codes[k].append for k in SHAPES)
        shape_code, ignored, kept, device_categories = self._shape_code, self.ignored, KEPT_CATEGORIES, DEVICE_CATEGORIES
        no_args: dict = {}
        for event in events:
            cat = event.get("cat", "")
            ph = event.get("ph")
            if ph != "X" or cat not in kept:
                if ph != "X" or cat != "python_function" or not str(event.get("name", "")).startswith(MODULE_EVENT_PREFIX):
                    if ph == "M":
                        self._metadata(event.get("name"), event.get("pid", ""), event.get("tid", ""),
                                       (event.get("args") or {}).get("name"))
                    ignored[ph, cat] += 1
                    continue
            args = event.get("args") or no_args
            name, pid, tid = event.get("name", ""), event.get("pid", ""), event.get("tid", "")
            scope = _scope_of(args) if cat == "cpu_op" and ("Module Hierarchy" in args or "ngbench module_type" in args) \
                else ""
            add_name(names[name] if name in names else names.setdefault(name, len(names)))
            add_cat(cats[cat] if cat in cats else cats.setdefault(cat, len(cats)))
            add_pid(pids[pid] if pid in pids else pids.setdefault(pid, len(pids)))
            add_tid(tids[tid] if tid in tids else tids.setdefault(tid, len(tids)))
            add_scope(scopes[scope] if scope in scopes else scopes.setdefault(scope, len(scopes)))
            add_ts(float(event.get("ts", 0.0)))
            add_dur(float(event.get("dur", 0.0) or 0.0))
            value = args.get("stream", tid) if cat in device_categories else -1
            add_stream(value if value.__class__ is int else _int_or(value))
            value = args.get("correlation", -1)
            add_corr(value if value.__class__ is int else _int_or(value))
            value = args.get("External id", -1)
            add_external(value if value.__class__ is int else _int_or(value))
            value = args.get("Sequence number", -1)
            add_seq(value if value.__class__ is int else _int_or(value))
            value = args.get("Input Dims")
            add_dims(-1 if value is None else shape_code(value))
            value = args.get("Input type")
            add_types(-1 if value is None else shape_code(value))
            value = args.get("Concrete Inputs")
            add_values(-1 if value is None else shape_code(value))

    def consume_structs(self, events: list, structs) -> None:
        """`consume` for events decoded by ngbench.trace.event_structs (`structs`, the module): the same rules
        read from attributes, shapes from raw JSON. A second copy of the hot loop, kept apart so that neither
        pays a test per field for the other's kind of event."""
        labels, codes, numbers = self.labels, self.codes, self.numbers
        names, cats, pids, tids, scopes = (labels[k] for k in TEXT)
        add_name, add_cat, add_pid, add_tid, add_scope = (codes[k].append for k in TEXT)
        add_ts, add_dur = numbers["ts"].append, numbers["dur"].append
        add_stream, add_corr, add_external, add_seq = (numbers[k].append for k in INTEGER)
        add_dims, add_types, add_values = (codes[k].append for k in SHAPES)
        raw_code, ignored, kept, device_categories = self._raw_code, self.ignored, KEPT_CATEGORIES, DEVICE_CATEGORIES
        no_args, unset, null, scope_of = structs.NO_ARGS, structs.UNSET, structs.NULL, structs.scope_of
        for event in events:
            cat, ph = event.cat, event.ph
            if ph != "X" or cat not in kept:
                if ph != "X" or cat != "python_function" or not str(event.name).startswith(MODULE_EVENT_PREFIX):
                    if ph == "M":
                        self._metadata(event.name, event.pid, event.tid, event.args.name if event.args else None)
                    ignored[ph, cat] += 1
                    continue
            args = event.args or no_args
            name, pid, tid = event.name, event.pid, event.tid
            scope = scope_of(args) if cat == "cpu_op" and (args.hierarchy is not unset
                                                           or args.ngbench_module_type is not unset) else ""
            add_name(names[name] if name in names else names.setdefault(name, len(names)))
            add_cat(cats[cat] if cat in cats else cats.setdefault(cat, len(cats)))
            add_pid(pids[pid] if pid in pids else pids.setdefault(pid, len(pids)))
            add_tid(tids[tid] if tid in tids else tids.setdefault(tid, len(tids)))
            add_scope(scopes[scope] if scope in scopes else scopes.setdefault(scope, len(scopes)))
            add_ts(float(event.ts))
            add_dur(float(event.dur or 0.0))
            value = (tid if args.stream is unset else args.stream) if cat in device_categories else -1
            add_stream(value if value.__class__ is int else _int_or(value))
            value = args.correlation
            add_corr(value if value.__class__ is int else _int_or(value))
            value = args.external_id
            add_external(value if value.__class__ is int else _int_or(value))
            value = args.seq_nr
            add_seq(value if value.__class__ is int else _int_or(value))
            value = args.input_dims   # a missing field is the one NULL object: no call for it
            add_dims(-1 if value is null else raw_code(value, structs))
            value = args.input_types
            add_types(-1 if value is null else raw_code(value, structs))
            value = args.concrete_inputs
            add_values(-1 if value is null else raw_code(value, structs))

    def _raw_code(self, raw, structs) -> int:
        """`_shape_code` of a value still in raw JSON: one decoded copy per distinct text."""
        key = bytes(raw)
        if key == b"null":
            return -1
        code = self.shape_index.get(key)
        if code is None:
            code = self.shape_index[key] = len(self.shape_values)
            self.shape_values.append(structs.raw_value(raw))
        return code

    def _shape_code(self, value) -> int:
        """Shapes and dtypes are lists: one shared copy per distinct value, by its text."""
        if value is None:
            return -1
        key = repr(value)
        code = self.shape_index.get(key)
        if code is None:
            code = self.shape_index[key] = len(self.shape_values)
            self.shape_values.append(value)
        return code

    def _metadata(self, kind, pid, tid, label) -> None:
        """A metadata event (`ph` M): the names of processes and threads."""
        if label is None:
            return
        if kind == "process_name":
            self.process_names[str(pid)] = str(label)
        elif kind == "thread_name":
            self.thread_names[f"{pid}/{tid}"] = str(label)

    def export(self) -> dict:
        """What one chunk found, small and picklable (a parsing process hands this back)."""
        ignored = Counter()
        for (ph, cat), count in self.ignored.items():
            ignored[f"ph={ph} {cat}".strip() if ph != "X" else (cat or "(no category)")] += count
        return {"labels": {k: list(v) for k, v in self.labels.items()}, "codes": self.codes,
                "numbers": self.numbers, "shape_values": self.shape_values, "ignored": ignored,
                "process_names": self.process_names, "thread_names": self.thread_names}


def _merged(parts: list[dict]) -> dict:
    """The columns of several chunks as numpy arrays, text codes re-numbered onto shared labels."""
    import numpy as np

    def array_of(values, dtype):
        return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype=dtype)

    columns = {}
    for k in TEXT:
        index: dict = {}
        pieces = []
        for part in parts:
            remap = np.array([index.setdefault(v, len(index)) for v in part["labels"][k]] or [0], dtype=np.int32)
            pieces.append(remap[array_of(part["codes"][k], np.int32)])
        columns[k] = (np.concatenate(pieces) if pieces else np.zeros(0, np.int32), list(index))
    for k in REAL + INTEGER:
        dtype = np.float64 if k in REAL else np.int64
        columns[k] = np.concatenate([array_of(p["numbers"][k], dtype) for p in parts]) if parts else np.zeros(0, dtype)
    values: list = []
    for k in SHAPES:
        columns[k] = []
    offset = 0
    for part in parts:
        for k in SHAPES:
            codes = array_of(part["codes"][k], np.int32)
            columns[k].append(np.where(codes >= 0, codes + offset, -1))
        values += part["shape_values"]
        offset += len(part["shape_values"])
    for k in SHAPES:
        columns[k] = np.concatenate(columns[k]) if columns[k] else np.zeros(0, np.int32)
    columns["shape_values"] = values
    return columns


def _table(columns: dict, metadata: dict):
    """The event table of merged columns; the trace's own facts stay out of its attrs (pandas deep-copies
    attrs on every operation), only the time origin is there."""
    import numpy as np
    import pandas as pd

    data = {}
    for k in TEXT:
        codes, labels = columns[k]
        text = [str(v) for v in labels]
        unique = list(dict.fromkeys(text))
        if len(unique) < len(text):  # 7 and "7" are one thread
            codes = np.array([unique.index(t) for t in text], dtype=np.int32)[codes]
        data[k] = pd.Categorical.from_codes(codes, categories=unique)
    data.update({k: columns[k] for k in REAL + INTEGER})
    values = np.empty(len(columns["shape_values"]) + 1, dtype=object)
    values[:-1] = columns["shape_values"]
    values[-1] = None  # code -1
    data.update({k: pd.Series(values[columns[k]], dtype=object) for k in SHAPES})
    table = pd.DataFrame(data)
    table["end"] = table["ts"] + table["dur"]
    table = table[COLUMNS]
    # times relative to the first event, so float64 keeps sub-nanosecond precision in differences
    origin = float(int(table["ts"].min())) if len(table) else 0.0
    table["ts"] -= origin
    table["end"] -= origin
    table.attrs.update({"base_time_ns": float(metadata.get("baseTimeNanoseconds", 0) or 0) + origin * 1000.0,
                        "origin_us": origin})
    return table


@dataclass
class Trace:
    """A parsed trace: the event table and what the file says about itself."""

    events: object                      # pandas.DataFrame of COLUMNS
    metadata: dict = field(default_factory=dict)          # top-level keys but traceEvents
    ignored_events: dict = field(default_factory=dict)    # events not kept, counted by kind
    process_names: dict = field(default_factory=dict)     # pid -> name (metadata events)
    thread_names: dict = field(default_factory=dict)      # "pid/tid" -> name


def _trace_of_parts(parts: list[dict], metadata: dict) -> Trace:
    ignored: Counter = Counter()
    process_names: dict = {}
    thread_names: dict = {}
    for part in parts:
        ignored.update(part["ignored"])
        process_names.update(part["process_names"])
        thread_names.update(part["thread_names"])
    return Trace(_table(_merged(parts), metadata), metadata, dict(ignored), process_names, thread_names)


def trace_of(events: Iterable[dict], metadata: dict | None = None) -> Trace:
    """The Trace of Chrome-trace events held in memory."""
    columns = _Columns()
    columns.consume(events)
    return _trace_of_parts([columns.export()], {} if metadata is None else metadata)


def events_from_trace(trace: dict | list):
    """Turn a Chrome trace held in memory (dict with traceEvents, or the list itself) into the event table."""
    if isinstance(trace, dict):
        return trace_of(trace.get("traceEvents", []), {k: v for k, v in trace.items() if k != "traceEvents"}).events
    return trace_of(trace).events


def parse_chunk(chunk: bytes) -> dict:
    """The columns of one chunk of events (a parsing process's job): decoded by msgspec into the kept fields
    only (ngbench.trace.event_structs) where it is installed, else by orjson into dicts."""
    from ngbench.trace.chrome_json import NotChunkable, chunk_array, chunk_events

    columns = _Columns()
    with no_cyclic_gc():
        try:
            from ngbench.trace import event_structs
        except ImportError:
            columns.consume(chunk_events(chunk))
            return columns.export()
        try:
            events = event_structs.decode(chunk_array(chunk))
        except ValueError as exc:
            raise NotChunkable(str(exc)[:200]) from None
        columns.consume_structs(events, event_structs)
    return columns.export()


def read_trace(path: str | Path, workers: int | None = None) -> Trace:
    """Read a Chrome trace file (.json or .json.gz): chunk by chunk in `workers` processes (default: one per
    CPU) when it is large and laid out one event per line, else streamed in this process."""
    from ngbench.trace.chrome_json import ChromeTrace, NotChunkable

    source = ChromeTrace(path)
    workers = workers or len(os.sched_getaffinity(0))
    chunks = source.chunks()
    parts = None
    if chunks is not None and source.size_bytes >= PARALLEL_MIN_BYTES and workers > 1:
        parts = _parse_in_parallel(chunks, workers)
    elif chunks is not None:
        try:
            parts = [parse_chunk(chunk) for chunk in chunks]
        except NotChunkable:
            parts = None
    if parts is None:
        columns = _Columns()
        with no_cyclic_gc():
            columns.consume(source.events())
        parts = [columns.export()]
    return _trace_of_parts(parts, source.metadata)


def _parse_in_parallel(chunks, workers: int) -> list[dict] | None:
    """Each chunk parsed in a pool of processes, at most two chunks per process in flight (memory stays
    bounded); None when the file cannot be cut into chunks after all."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from ngbench.trace.chrome_json import NotChunkable

    parts: list[dict] = []
    pending: deque = deque()
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        try:
            for chunk in chunks:
                pending.append(pool.submit(parse_chunk, chunk))
                while len(pending) >= 2 * workers:
                    parts.append(pending.popleft().result())
            parts += [future.result() for future in pending]
        except (NotChunkable, BrokenProcessPool, OSError):  # parsed again in this process, streaming
            for future in pending:
                future.cancel()
            return None
    return parts


def load_trace(path: str | Path):
    """Read a Chrome trace file (.json or .json.gz) into the event table."""
    return read_trace(path).events
