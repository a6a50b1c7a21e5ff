"""Read and rewrite Chrome trace JSON files (`.json` or `.json.gz`) in streaming fashion.

A trace of a long training job can be gigabytes; it is never loaded whole into Python objects. Two readers:
- `chunks()`: a trace laid out one event per indented line (what torch.profiler writes, and json.dump with
  indent) is cut into chunks of about CHUNK_BYTES at the line where an event begins (JSON strings hold no
  raw newline, so that line is never inside a string), and each chunk is parsed with orjson, possibly in
  another process (ngbench.trace.event_table);
- `events()`: any other layout is streamed with ijson and its C backend (yajl2_c), one event dict at a time;
  a chunk that does not parse sends the reader back here (`NotChunkable`), where a broken file gets its
  one-line error.
The small metadata beside `traceEvents`
(deviceProperties, distributedInfo, record_shapes, ...) is read from the head of the file up to
`traceEvents` (where torch.profiler writes it, and where HTA looks for it) and from the tail after the
array's closing bracket. Both Chrome trace layouts are accepted: an object with `traceEvents`, and the bare
event array.

Broken input raises `TraceFileError`, a UserError whose one line names the file and what was expected.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from ngbench.errors import UserError

CHUNK_BYTES = 16 << 20
TAIL_BYTES = 1 << 16
UTF8_BOM = b"\xef\xbb\xbf"
EVENTS_START = re.compile(rb'"traceEvents"\s*:\s*\[\s*')
# a file that cannot be read to its end: a truncated .gz ends in EOFError, a corrupt one in zlib.error
READ_ERRORS = (OSError, EOFError, zlib.error)
EXPECTED = "a Chrome trace as torch.profiler writes it (a JSON object with a traceEvents list, .json or .json.gz)"


class TraceFileError(UserError):
    """A trace file that cannot be read as a Chrome trace."""


class NotChunkable(Exception):
    """The trace cannot be cut into chunks after all (a layout it did not expect, or broken JSON)."""


def chunk_array(chunk: bytes) -> bytes:
    """A chunk (a run of comma-separated events, maybe ending with a comma) as a JSON array."""
    return b"[" + chunk.rstrip().rstrip(b",") + b"]"


def chunk_events(chunk: bytes) -> list:
    """The events of one chunk, as dicts."""
    try:
        import orjson

        loads = orjson.loads
    except ImportError:  # slower, same result
        loads = json.loads
    try:
        events = loads(chunk_array(chunk))
    except ValueError as exc:
        raise NotChunkable(str(exc)[:200]) from None
    if not all(isinstance(event, dict) for event in events):
        raise NotChunkable("an element of traceEvents is not an object")
    return events


def _ijson():
    from ngbench.errors import require

    return require("ijson", "ijson", "reading Chrome traces")


class _TailKeeper:
    """A binary file wrapper that remembers the last TAIL_BYTES it handed out (for metadata after the events)."""

    def __init__(self, handle):
        self.handle = handle
        self.tail = b""
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.bytes_read += len(data)
        self.tail = (self.tail + data)[-TAIL_BYTES:]
        return data


class ChromeTrace:
    """One trace file: `metadata` (every top-level key but traceEvents) and `events()`, an iterator of event
    dicts read in streaming fashion. `events()` may be iterated once per call; the tail metadata is merged
    into `metadata` when it is exhausted."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise TraceFileError(f"{self.path}: no such file; expected {EXPECTED}")
        self.layout = self._layout()
        self.metadata: dict = self._head_metadata() if self.layout == "object" else {}
        self.bytes_read = 0
        self.size_bytes = self.path.stat().st_size

    def _open(self):
        """The file's bytes (decompressed), after the UTF-8 byte order mark that some Windows tools write."""
        with open(self.path, "rb") as probe:
            magic = probe.read(2)
        handle = gzip.open(self.path, "rb") if magic == b"\x1f\x8b" else open(self.path, "rb")
        if handle.read(len(UTF8_BOM)) != UTF8_BOM:
            handle.seek(0)
        return handle

    def _fail(self, what: str, exc: BaseException | None = None) -> TraceFileError:
        detail = f" ({_one_line(exc)})" if exc is not None else ""
        return TraceFileError(f"{self.path}: {what}{detail}; expected {EXPECTED}")

    def _layout(self) -> str:
        try:
            with self._open() as handle:
                head = handle.read(4096).lstrip()
        except READ_ERRORS as exc:
            raise self._fail("cannot be read", exc) from exc
        if head[:1] == b"{":
            return "object"
        if head[:1] == b"[":
            return "array"
        raise self._fail("is not JSON" if head else "is empty")

    def _head_metadata(self) -> dict:
        """Top-level keys before `traceEvents`, read with ijson's token stream (cheap: it stops there)."""
        ijson = _ijson()
        try:
            with self._open() as handle:
                builder, key, metadata, depth = None, None, {}, 0
                for _prefix, event, value in ijson.parse(handle, use_float=True):
                    if depth == 0 and event == "map_key":
                        if value == "traceEvents":
                            return metadata
                        key = value
                        builder = ijson.ObjectBuilder()
                        continue
                    if builder is None:
                        continue
                    builder.event(event, value)
                    depth += 1 if event in ("start_map", "start_array") else -1 if event in ("end_map", "end_array") else 0
                    if depth == 0:
                        metadata[key], builder = builder.value, None
        except ijson.JSONError as exc:
            raise self._fail("is not valid JSON", exc) from exc
        except READ_ERRORS as exc:
            raise self._fail("cannot be read", exc) from exc
        raise self._fail("has no traceEvents list")

    def events(self) -> Iterator[dict]:
        """Every element of traceEvents (or of the bare array), one dict at a time."""
        ijson = _ijson()
        prefix = "traceEvents.item" if self.layout == "object" else "item"
        with self._open() as raw:
            handle = _TailKeeper(raw)
            try:
                for event in ijson.items(handle, prefix, use_float=True):
                    if isinstance(event, dict):
                        yield event
            except ijson.IncompleteJSONError as exc:
                raise self._fail(f"is truncated or malformed JSON (after {handle.bytes_read} bytes)", exc) from exc
            except ijson.JSONError as exc:
                raise self._fail("is not valid JSON", exc) from exc
            except READ_ERRORS as exc:  # a truncated or corrupt .gz ends here
                raise self._fail(f"cannot be read to its end (after {handle.bytes_read} bytes)", exc) from exc
            self.bytes_read = handle.bytes_read
            if self.layout == "object":
                self.metadata.update(tail_metadata(handle.tail))


    def chunks(self) -> Iterator[bytes] | None:
        """Chunks of the traceEvents array cut where an event's line begins (see the module docstring), or
        None when the events are not laid out one per line. The tail metadata is read once they are done;
        a layout that turns out otherwise raises NotChunkable while iterating."""
        if self.layout != "object":
            return None
        handle = self._open()
        try:
            first = handle.read(CHUNK_BYTES)
        except READ_ERRORS:  # a truncated or corrupt .gz: streaming says how far it got
            handle.close()
            return None
        match = EVENTS_START.search(first)
        start = match.end() if match else -1
        indent = first[first.rfind(b"\n", 0, start) + 1:start] if match else b"x"
        if not match or first[start:start + 1] != b"{" or indent.strip() or not first[:start].count(b"\n"):
            handle.close()
            return None
        return self._chunks(handle, first[start:], b"\n" + indent + b"{")

    def _chunks(self, handle, pending: bytes, boundary: bytes) -> Iterator[bytes]:
        with handle:
            while True:
                try:
                    block = handle.read(CHUNK_BYTES)
                except READ_ERRORS as exc:  # read again by streaming, which names the failure
                    raise NotChunkable(str(exc)) from None
                if not block:
                    break
                pending += block
                cut = pending.rfind(boundary)
                if cut > 0:
                    yield pending[:cut]
                    pending = pending[cut + 1:]
        close = _array_close(pending, boundary.replace(b"{", b"}"))
        if close is None:
            raise NotChunkable("the end of the traceEvents array was not found")
        yield pending[:close]
        self.metadata.update(tail_metadata(pending[close:]))


def _array_close(text: bytes, event_end: bytes) -> int | None:
    """Where the traceEvents array closes in the file's last part: the first `]` after the last line that
    ends an event (an event's closing brace has the indentation of its opening one)."""
    last = text.rfind(event_end)
    close = text.find(b"]", last + len(event_end)) if last >= 0 else -1
    return close if close >= 0 else None


def tail_metadata(tail: bytes) -> dict:
    """Top-level keys written after the traceEvents array, from the file's last bytes.

    The array's closing bracket is the earliest `]` after which `{` + the rest parses as a JSON object: inside
    an event, what follows a `]` is never a sequence of `"key": value` pairs closed by exactly one `}`. In a file
    smaller than the tail, a list before the events (deviceProperties) ends such a sequence too: the pairs after
    it hold traceEvents itself, so that `]` is not the one.
    """
    text = tail.decode("utf-8", errors="replace")
    position = text.find("]")
    while position >= 0:
        rest = text[position + 1:].lstrip().lstrip(",")
        try:
            found = json.loads("{" + rest)
        except ValueError:
            found = None
        if isinstance(found, dict) and "traceEvents" not in found:
            return found
        position = text.find("]", position + 1)
    return {}


def _one_line(exc: BaseException) -> str:
    from ngbench.errors import first_line

    return first_line(exc)[:160]


def rewrite_trace(source: str | Path, target: str | Path, edit_event: Callable[[dict], dict],
                  metadata: dict | None = None) -> None:
    """Copy the trace `source` to `target` (whole, through a temp file), passing each event through
    `edit_event` and putting `metadata` keys first (before traceEvents, where HTA and torch.profiler look)."""
    from ngbench.output import atomic_write_bytes

    trace = ChromeTrace(source)
    events = trace.events()

    def writer(tmp: str) -> None:
        opener = gzip.open if str(target).endswith(".gz") else open
        with opener(tmp, "wt") as out:
            head = {**(metadata or {}), **{k: v for k, v in trace.metadata.items() if k not in (metadata or {})}}
            out.write("{\n")
            for key, value in head.items():
                out.write(f"  {json.dumps(key)}: {json.dumps(value)},\n")
            out.write('  "traceEvents": [\n')
            for i, event in enumerate(events):
                out.write((",\n" if i else "") + json.dumps(edit_event(event)))
            out.write("\n  ]")
            for key, value in trace.metadata.items():  # keys that came after the events (read at the end)
                if key not in head:
                    out.write(f",\n  {json.dumps(key)}: {json.dumps(value)}")
            out.write("\n}\n")

    atomic_write_bytes(target, writer)
