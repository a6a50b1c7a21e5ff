"""Chrome trace events decoded by msgspec into only the fields the event table keeps (ngbench.trace.event_table).

A kernel event carries a dozen args (grid, block, registers, occupancy, ...) that the table never reads;
decoding a chunk into these structs skips them without building Python objects for them, about twice as fast
as a dict per event. Input shapes, dtypes and concrete values stay raw JSON bytes until the table has found
the distinct ones. A field that is missing takes the default a dict lookup would give (`UNSET` where the
table tells a missing key from a null one).

Used only when msgspec is installed (`decoder()` is None otherwise: chunks are then read with orjson as dicts).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

NULL = msgspec.Raw(b"null")


class Args(msgspec.Struct):
    correlation: Any = -1
    stream: Any = msgspec.UNSET
    external_id: Any = msgspec.field(default=-1, name="External id")
    seq_nr: Any = msgspec.field(default=-1, name="Sequence number")
    input_dims: msgspec.Raw = msgspec.field(default=NULL, name="Input Dims")
    input_types: msgspec.Raw = msgspec.field(default=NULL, name="Input type")
    concrete_inputs: msgspec.Raw = msgspec.field(default=NULL, name="Concrete Inputs")
    hierarchy: Any = msgspec.field(default=msgspec.UNSET, name="Module Hierarchy")
    ngbench_module: Any = msgspec.field(default="", name="ngbench module")
    ngbench_module_type: Any = msgspec.field(default=msgspec.UNSET, name="ngbench module_type")
    name: Any = None   # a metadata event's label (process_name, thread_name)


class Event(msgspec.Struct):
    ph: Any = None
    cat: Any = ""
    name: Any = ""
    pid: Any = ""
    tid: Any = ""
    ts: Any = 0.0
    dur: Any = 0.0
    args: Args | None = None


NO_ARGS = Args()
UNSET = msgspec.UNSET


@lru_cache(maxsize=1)
def decoder() -> msgspec.json.Decoder:
    return msgspec.json.Decoder(list[Event])


def decode(data: bytes) -> list[Event]:
    """The events of a JSON array; ValueError where it is not an array of objects of those shapes."""
    try:
        return decoder().decode(data)
    except msgspec.DecodeError as exc:   # ValidationError included
        raise ValueError(str(exc)) from None


def scope_of(args: Args) -> str:
    """What ngbench.trace.event_table._scope_of finds in an event's args dict, from the struct."""
    if args.hierarchy is not UNSET and args.hierarchy:
        return str(args.hierarchy)
    if args.ngbench_module_type is not UNSET:
        return f"{args.ngbench_module} [{args.ngbench_module_type}]"
    return ""


def raw_value(raw: msgspec.Raw):
    """A raw JSON value decoded (one distinct shape, dtype list or concrete values list)."""
    return msgspec.json.decode(raw)
