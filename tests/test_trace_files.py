"""Chrome trace files as ngbench reads and rewrites them (ngbench.trace.chrome_json, event_table.read_trace), on
hand-written files: both layouts, gzip, metadata before and after the events, chunks cut where an event's line
begins, and one line naming the file for each kind of broken input."""

import gzip
import json
import re

import pytest

import ngbench.trace
from ngbench.trace import chrome_json, event_table
from ngbench.trace.chrome_json import (
    ChromeTrace,
    NotChunkable,
    TraceFileError,
    chunk_events,
    rewrite_trace,
    tail_metadata,
)

EVENTS = [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 10, "dur": 5, "pid": 1, "tid": 1, "args": {}},
          {"ph": "X", "cat": "kernel", "name": "gemm [x]", "ts": 12, "dur": 3, "pid": 0, "tid": 7,
           "args": {"correlation": 4, "stream": 7}},
          {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "python"}}]


def torch_layout(events=EVENTS) -> str:
    """What torch.profiler writes: metadata first, each event over indented lines, a key after the array."""
    lines = ",\n".join("  {\n    " + json.dumps(e)[1:-1] + "\n  }" for e in events)
    return ('{\n  "schemaVersion": 1,\n  "deviceProperties": [{"id": 0, "name": "H100"}],\n'
            f'  "traceEvents": [\n{lines}\n  ],\n  "baseTimeNanoseconds": 1700000000000\n}}\n')


def write(path, text: str):
    path.write_bytes(gzip.compress(text.encode()) if str(path).endswith(".gz") else text.encode())
    return path


@pytest.mark.parametrize("name", ["t.json", "t.json.gz"])
def test_object_layout_streams_events_and_reads_metadata_on_both_sides(tmp_path, name):
    trace = ChromeTrace(write(tmp_path / name, torch_layout()))
    assert trace.layout == "object"
    assert trace.metadata == {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "H100"}]}
    assert list(trace.events()) == EVENTS
    assert trace.metadata["baseTimeNanoseconds"] == 1700000000000     # the tail, once the events are read
    assert trace.bytes_read == len(torch_layout().encode())


def test_bare_array_layout(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"  " + json.dumps([EVENTS[0], 7, EVENTS[1]]).encode())
    trace = ChromeTrace(path)
    assert trace.layout == "array" and trace.metadata == {}
    assert list(trace.events()) == [EVENTS[0], EVENTS[1]]    # an element that is no object is skipped
    assert trace.chunks() is None


@pytest.mark.parametrize("chunk_bytes", [160, 1 << 20])
def test_chunks_cut_where_an_event_line_begins(tmp_path, monkeypatch, chunk_bytes):
    monkeypatch.setattr(chrome_json, "CHUNK_BYTES", chunk_bytes)
    trace = ChromeTrace(write(tmp_path / "t.json", torch_layout()))
    chunks = list(trace.chunks())
    assert (len(chunks) > 1) == (chunk_bytes == 160)   # a small chunk size cuts the array
    assert [e for chunk in chunks for e in chunk_events(chunk)] == EVENTS
    assert trace.metadata["baseTimeNanoseconds"] == 1700000000000


def test_a_trace_not_laid_out_one_event_per_line_is_not_chunked(tmp_path):
    compact = json.dumps({"traceEvents": EVENTS, "x": 1})
    assert ChromeTrace(write(tmp_path / "c.json", compact)).chunks() is None
    table = event_table.read_trace(tmp_path / "c.json", workers=1)
    assert table.metadata == {"x": 1} and table.process_names == {"1": "python"}
    assert list(table.events["name"]) == ["aten::mm", "gemm [x]"]


def test_read_trace_gives_the_same_table_chunked_and_streamed(tmp_path, monkeypatch):
    path = write(tmp_path / "t.json", torch_layout())
    monkeypatch.setattr(chrome_json, "CHUNK_BYTES", 160)
    chunked = event_table.read_trace(path, workers=1)
    streamed = event_table.read_trace(write(tmp_path / "c.json", json.dumps({"traceEvents": EVENTS})), workers=1)
    assert chunked.events.equals(streamed.events)
    assert chunked.metadata["deviceProperties"] == [{"id": 0, "name": "H100"}]
    kernel = chunked.events.set_index("name").loc["gemm [x]"]
    assert (kernel["dur"], kernel["correlation"], kernel["stream"]) == (3, 4, 7)


def test_chunk_events_refuses_what_is_not_a_run_of_objects():
    assert chunk_events(b'{"a": 1},\n{"b": 2},\n') == [{"a": 1}, {"b": 2}]
    with pytest.raises(NotChunkable, match="not an object"):
        chunk_events(b'{"a": 1}, 3')
    with pytest.raises(NotChunkable):
        chunk_events(b'{"a": ')


def test_tail_metadata_is_what_follows_the_array():
    tail = b'"args": {"dims": [1, 2]}}\n  ],\n  "baseTimeNanoseconds": 5, "traceName": "t"\n}\n'
    assert tail_metadata(tail) == {"baseTimeNanoseconds": 5, "traceName": "t"}
    assert tail_metadata(b'{"a": [1]}]}') == {}
    # a whole small file: the list before the events closes no traceEvents array
    assert tail_metadata(torch_layout().encode()) == {"baseTimeNanoseconds": 1700000000000}
    assert tail_metadata(b"no bracket") == {}


@pytest.mark.parametrize("content, says", [
    (None, "no such file"),
    ("", "is empty"),
    ("hello", "is not JSON"),
    ('{"schemaVersion": 1}', "has no traceEvents list"),
    ('{"schemaVersion": tru', "is not valid JSON"),
])
def test_broken_files_are_named_in_one_line(tmp_path, content, says):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TraceFileError) as caught:
        ChromeTrace(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {says}") and message.endswith(f"; expected {chrome_json.EXPECTED}")
    if content in (None, "", "hello", '{"schemaVersion": 1}'):   # no exception behind these: nothing in brackets
        assert message == f"{path}: {says}; expected {chrome_json.EXPECTED}"
    assert "\n" not in message


def test_a_truncated_trace_says_how_far_it_got(tmp_path):
    text = torch_layout()
    path = write(tmp_path / "cut.json", text[: text.index('"gemm')])
    with pytest.raises(TraceFileError, match=r"is truncated or malformed JSON \(after \d+ bytes\)"):
        list(ChromeTrace(path).events())
    gz = tmp_path / "cut.json.gz"
    gz.write_bytes(gzip.compress(text.encode())[:-20])
    with pytest.raises(TraceFileError, match=r"cannot be read to its end|truncated"):
        list(ChromeTrace(gz).events())


@pytest.mark.parametrize("target", ["out.json", "out.json.gz"])
def test_rewrite_puts_metadata_first_and_edits_every_event(tmp_path, target):
    source = write(tmp_path / "t.json", torch_layout())

    def renamed(event):
        return {**event, "name": event["name"].upper()}

    rewrite_trace(source, tmp_path / target, renamed, metadata={"ngbench": {"run": 1}, "schemaVersion": 2})
    text = (gzip.decompress((tmp_path / target).read_bytes()) if target.endswith(".gz")
            else (tmp_path / target).read_bytes()).decode()
    data = json.loads(text)
    assert list(data) == ["ngbench", "schemaVersion", "deviceProperties", "traceEvents", "baseTimeNanoseconds"]
    assert data["schemaVersion"] == 2 and data["baseTimeNanoseconds"] == 1700000000000
    assert [e["name"] for e in data["traceEvents"]] == ["ATEN::MM", "GEMM [X]", "PROCESS_NAME"]
    assert ChromeTrace(tmp_path / target).chunks() is not None   # still one event per line


def test_event_table_columns_of_each_kind_of_event():
    """One event of each kind the table keeps, with the defaults a field takes when the event lacks it."""
    events = [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 100, "dur": 5, "pid": 1, "tid": 7,
         "args": {"External id": 3, "Sequence number": "12", "Input Dims": [[2, 2]], "Input type": ["float"],
                  "Concrete Inputs": ["", "1"], "Module Hierarchy": "top.fc"}},
        {"ph": "X", "cat": "kernel", "name": "gemm", "ts": 102, "pid": 0, "tid": 9, "args": {"correlation": "4"}},
        {"ph": "X", "cat": "gpu_memcpy", "name": "copy", "ts": 103, "dur": 1, "pid": 0, "tid": 9,
         "args": {"stream": 13}},
        {"ph": "X", "cat": "python_function", "name": "nn.Module: Linear_0", "ts": 99, "dur": 8, "pid": 1, "tid": 7},
        {"ph": "X", "cat": "python_function", "name": "<built-in method>", "ts": 99, "dur": 1},
        {"ph": "X", "name": "no category", "ts": 99, "dur": 1},
        {"ph": "x", "cat": "cpu_op", "name": "lower-case phase", "ts": 99},
        {"ph": "i", "cat": "cpu_op", "name": "instant", "ts": 99},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 7, "args": {"name": "main thread"}},
        {"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "GPU 0"}},
        {"ph": "M", "name": "thread_name", "pid": 2},
    ]
    trace = event_table.trace_of(events, {"baseTimeNanoseconds": 1000})
    table = trace.events.set_index("name")
    assert list(table.index) == ["aten::mm", "gemm", "copy", "nn.Module: Linear_0"]
    mm, gemm, copy = table.loc["aten::mm"], table.loc["gemm"], table.loc["copy"]
    assert (mm["ts"], mm["dur"], mm["end"]) == (1.0, 5.0, 6.0)        # times from the first event (99 us)
    assert (mm["external_id"], mm["seq_nr"], mm["correlation"], mm["stream"]) == (3, 12, -1, -1)
    assert (mm["input_dims"], mm["input_types"], mm["concrete_inputs"]) == ([[2, 2]], ["float"], ["", "1"])
    assert mm["scope"] == "top.fc" and (mm["pid"], mm["tid"]) == ("1", "7")
    assert (gemm["dur"], gemm["correlation"], gemm["stream"], gemm["external_id"]) == (0.0, 4, 9, -1)
    assert gemm["input_dims"] is None and gemm["scope"] == ""
    assert copy["stream"] == 13
    assert table.loc["nn.Module: Linear_0", "cat"] == "python_function"
    assert trace.events.attrs["base_time_ns"] == 1000 + 99 * 1000.0
    assert trace.thread_names == {"1/7": "main thread"} and trace.process_names == {"0": "GPU 0"}
    assert trace.ignored_events == {"python_function": 1, "(no category)": 1, "ph=x cpu_op": 1, "ph=i cpu_op": 1,
                                    "ph=M": 3}


def test_a_scope_from_an_ngbench_trace_and_threads_named_by_number_or_text():
    events = [{"ph": "X", "cat": "cpu_op", "name": "aten::add", "ts": 0, "dur": 1, "pid": 1, "tid": 7,
               "args": {"ngbench module": "encoder.0", "ngbench module_type": "Block"}},
              {"ph": "X", "cat": "cpu_op", "name": "aten::mul", "ts": 1, "dur": 1, "pid": 1, "tid": "7"}]
    table = event_table.trace_of(events).events
    assert list(table["scope"]) == ["encoder.0 [Block]", ""]
    assert list(table["tid"]) == ["7", "7"] and len(table["tid"].cat.categories) == 1   # 7 and "7" are one thread


def test_msgspec_structs_and_orjson_dicts_give_the_same_columns(monkeypatch):
    """event_table reads a chunk into msgspec structs of the kept fields (ngbench.trace.event_structs), or into
    dicts where msgspec is missing: the same rules either way, the odd values included."""
    import sys

    odd = [
        {"ph": "X", "cat": "cpu_op", "name": "aten::linear", "ts": 1.5, "dur": 2, "pid": 1, "tid": "1",
         "args": {"Input Dims": [[4, 8], []], "Input type": ["float", ""], "Concrete Inputs": ["", "[1, 1]"],
                  "Sequence number": 7, "Module Hierarchy": "TOP(Net)::fc(Linear)", "External id": "12"}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::relu", "ts": 4, "dur": None, "pid": 1, "tid": 1,
         "args": {"ngbench module_type": "ReLU", "Input Dims": None}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::add", "ts": 5, "pid": 1, "tid": 1, "args": None},
        {"ph": "X", "cat": "kernel", "name": "k", "ts": 6, "dur": 1.25, "pid": 0, "tid": 9,
         "args": {"correlation": 3.0, "grid": [1, 1, 1]}},                    # no stream: the tid is the stream
        {"ph": "X", "cat": "kernel", "name": "k", "ts": 8, "dur": 1, "pid": 0, "tid": 7,
         "args": {"correlation": "x", "stream": None}},
        {"ph": "X", "cat": "python_function", "name": "nn.Module: Net_0", "ts": 0, "dur": 9, "pid": 1, "tid": 1},
        {"ph": "X", "cat": "python_function", "name": "<built-in>", "ts": 0, "dur": 9, "pid": 1, "tid": 1},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "main"}},
        {"ph": "M", "name": "process_name", "pid": 0, "args": {}},
        {"ph": "s", "id": 3, "cat": "ac2g", "name": "ac2g", "ts": 5},
        {"ph": "X", "name": "no category", "ts": 1},
    ]
    chunk = ",\n".join(json.dumps(e) for e in odd).encode()
    structs = event_table.parse_chunk(chunk)
    monkeypatch.setitem(sys.modules, "ngbench.trace.event_structs", None)   # import fails: orjson's dicts
    monkeypatch.delattr(ngbench.trace, "event_structs", raising=False)      # (`from package import` looks here first)
    dicts = event_table.parse_chunk(chunk)
    assert structs == dicts
    table = event_table._table(event_table._merged([structs]), {})
    assert table["stream"].tolist() == [-1, -1, -1, 9, -1, -1]
    assert table["correlation"].tolist() == [-1, -1, -1, 3, -1, -1]
    assert table["scope"].tolist() == ["TOP(Net)::fc(Linear)", " [ReLU]", "", "", "", ""]
    assert table["input_dims"].tolist()[:2] == [[[4, 8], []], None] and table["dur"].tolist()[1] == 0.0
    assert structs["thread_names"] == {"1/1": "main"} and structs["ignored"]["ph=s ac2g"] == 1


# ----------------------------------------------------------------------------- through read_trace / load_trace
# What a user of the event table sees, whichever way the file is read (chunks, streaming, worker processes).
HEAD = {"schemaVersion": 1, "distributedInfo": {"backend": "nccl", "rank": 1, "world_size": 2},
        "deviceProperties": [{"id": 0, "name": "H100", "computeCapability": 9.0},
                             {"id": 1, "name": "H100", "computeCapability": 9.0}],
        "record_shapes": 1, "profile_memory": 0.5}
SHORT_HEAD = {"schemaVersion": 1}    # traceEvents inside a small first chunk
TAIL = {"traceName": "t.json", "deviceProperties_after": [{"id": 2}, {"id": 3}], "baseTimeNanoseconds": 1.5e15}


def torch_file(path, events, head=HEAD, tail=TAIL, bom=False):
    """torch.profiler's layout (one event over indented lines) with `head` keys before traceEvents and `tail`
    keys after it."""
    lines = ",\n".join("  {\n    " + json.dumps(e)[1:-1] + "\n  }" for e in events)
    before = "".join(f"  {json.dumps(k)}: {json.dumps(v)},\n" for k, v in head.items())
    after = "".join(f",\n  {json.dumps(k)}: {json.dumps(v)}" for k, v in tail.items())
    text = "{\n" + before + f'  "traceEvents": [\n{lines}\n  ]{after}\n}}\n'
    return write(path, ("\ufeff" if bom else "") + text)


def compact_file(path, events, head=HEAD, tail=TAIL, bom=False):
    """The same trace on one line (streamed, never cut into chunks)."""
    text = json.dumps({**head, "traceEvents": events, **tail})
    return write(path, ("\ufeff" if bom else "") + text)


SHAPED = [{"ph": "X", "cat": "cpu_op", "name": f"aten::op{k}", "ts": 100.5 + 10 * k, "dur": 2.25, "pid": 1, "tid": 1,
           "args": {"Input Dims": [[k + 1, 2]], "Input type": ["float"], "Concrete Inputs": ["", str(k)]}}
          for k in range(6)]


def test_metadata_on_both_sides_with_nested_values_and_floats_is_read_whole(tmp_path):
    """Dicts and lists of dicts before the events, lists after them, fractional numbers as Python floats (they
    are written back as JSON), the same in every layout."""
    expected = {**HEAD, **TAIL}
    for writer in (torch_file, compact_file):
        for name in ("t.json", "t.json.gz"):
            trace = event_table.read_trace(writer(tmp_path / name, SHAPED), workers=1)
            assert trace.metadata == expected, (writer.__name__, name)
            assert type(trace.metadata["profile_memory"]) is float
            assert type(trace.metadata["deviceProperties"][0]["computeCapability"]) is float
            json.dumps(trace.metadata)
            assert trace.events.attrs["base_time_ns"] == 1.5e15 + 100 * 1000.0   # origin: the first event, 100 us
            assert trace.events.attrs["origin_us"] == 100.0


def test_a_byte_order_mark_before_the_json_is_skipped(tmp_path):
    plain = event_table.read_trace(torch_file(tmp_path / "plain.json", SHAPED), workers=1)
    for writer in (torch_file, compact_file):
        for name in ("bom.json", "bom.json.gz"):
            trace = event_table.read_trace(writer(tmp_path / name, SHAPED, bom=True), workers=1)
            assert trace.events.equals(plain.events) and trace.metadata == plain.metadata, (writer.__name__, name)
    array = write(tmp_path / "array.json", "\ufeff" + json.dumps(SHAPED))
    assert list(event_table.load_trace(array)["name"]) == [e["name"] for e in SHAPED]


def test_shapes_of_events_in_different_chunks_stay_with_their_events(tmp_path, monkeypatch):
    """A chunk of about one event: each chunk numbers its distinct shapes from 0, and the merged table must
    give every event its own."""
    monkeypatch.setattr(chrome_json, "CHUNK_BYTES", 200)
    path = torch_file(tmp_path / "t.json", SHAPED, head=SHORT_HEAD)
    assert len(list(ChromeTrace(path).chunks())) >= 3
    table = event_table.read_trace(path, workers=1).events
    assert list(table["input_dims"]) == [[[k + 1, 2]] for k in range(6)]
    assert list(table["concrete_inputs"]) == [["", str(k)] for k in range(6)]
    assert list(table["input_types"]) == [["float"]] * 6
    assert list(table["ts"]) == [10.0 * k + 0.5 for k in range(6)] and list(table["dur"]) == [2.25] * 6
    streamed = event_table.read_trace(compact_file(tmp_path / "c.json", SHAPED, head=SHORT_HEAD), workers=1).events
    assert table.equals(streamed)


def test_worker_processes_and_more_workers_than_chunks_give_the_same_table(tmp_path, monkeypatch):
    monkeypatch.setattr(chrome_json, "CHUNK_BYTES", 250)
    monkeypatch.setattr(event_table, "PARALLEL_MIN_BYTES", 0)      # this small file is parsed by 2 processes
    chunked = torch_file(tmp_path / "t.json", SHAPED, head=SHORT_HEAD)
    assert len(list(ChromeTrace(chunked).chunks())) >= 3
    parallel = event_table.read_trace(chunked, workers=2)
    streamed = event_table.read_trace(compact_file(tmp_path / "c.json", SHAPED, head=SHORT_HEAD), workers=2)
    assert parallel.events.equals(streamed.events)                 # one line: no chunks, streamed
    assert parallel.metadata == streamed.metadata == {**SHORT_HEAD, **TAIL}
    assert list(event_table.load_trace(tmp_path / "c.json")["name"]) == [e["name"] for e in SHAPED]


def test_what_an_event_lacks_takes_its_neutral_value():
    events = [{"ph": "X", "cat": "cpu_op", "ts": 0, "dur": 1, "pid": 1, "tid": 7, "args": {"ngbench module_type": "Net"}},
              {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 1, "dur": 1, "pid": 1, "tid": 7,
               "args": {"Sequence number": 4}},
              {"ph": "X", "cat": "kernel", "name": "no thread", "ts": 1.5, "dur": 1, "args": {"stream": "13"}},
              {"ph": "X", "cat": None, "name": "null category", "ts": 2, "dur": 1},
              {"ph": "X", "name": "no category", "ts": 3, "dur": 1},
              {"ph": "M", "name": "thread_name", "pid": 1, "args": {"name": "no tid"}},
              {"ph": "M", "name": "thread_name", "tid": 9, "args": {"name": "no pid"}}]
    trace = event_table.trace_of(events)
    table = trace.events
    assert list(table["name"]) == ["", "aten::mm", "no thread"]
    assert list(table["scope"]) == [" [Net]", "", ""]      # a module class without its path
    assert list(table["seq_nr"]) == [-1, 4, -1] and list(table["external_id"]) == [-1, -1, -1]
    assert list(table["pid"]) == ["1", "1", ""] and list(table["tid"]) == ["7", "7", ""]
    assert list(table["stream"]) == [-1, -1, 13]            # a stream written as text
    assert trace.thread_names == {"1/": "no tid", "/9": "no pid"}
    assert trace.ignored_events == {"(no category)": 2, "ph=M": 2}


def test_a_fractional_time_survives_a_rewrite_of_a_streamed_trace(tmp_path):
    source = compact_file(tmp_path / "c.json", SHAPED)
    rewrite_trace(source, tmp_path / "out.json", lambda event: event)
    data = json.loads((tmp_path / "out.json").read_text())
    assert [(e["ts"], e["dur"]) for e in data["traceEvents"]] == [(e["ts"], e["dur"]) for e in SHAPED]
    assert {k: v for k, v in data.items() if k != "traceEvents"} == {**HEAD, **TAIL}


def _message(path) -> str:
    with pytest.raises(TraceFileError) as caught:
        event_table.load_trace(path)
    message = str(caught.value)
    assert message.endswith(f"; expected {chrome_json.EXPECTED}") and "\n" not in message
    return message.removesuffix(f"; expected {chrome_json.EXPECTED}")


def test_broken_files_through_load_trace_name_the_parsers_reason(tmp_path):
    eof = "(Compressed file ended before the end-of-stream marker was reached)"
    bad_head = write(tmp_path / "head.json", '{"a": [1,}, "traceEvents": []}')
    assert _message(bad_head) == f"{bad_head}: is not valid JSON (parse error: unallowed token at this point in JSON text)"
    bad_event = write(tmp_path / "event.json", '{"a": 1, "traceEvents": [{"a": tru}]}')
    assert _message(bad_event) == (f"{bad_event}: is truncated or malformed JSON (after 37 bytes) "
                                   "(lexical error: invalid string in json text.)")
    corrupt = tmp_path / "corrupt.json.gz"                  # a damaged deflate stream, not a short one
    packed = bytearray(gzip.compress(json.dumps({"a": 1, "traceEvents": SHAPED * 300}).encode()))
    packed[40:60] = bytes(b ^ 0xFF for b in packed[40:60])
    corrupt.write_bytes(bytes(packed))
    assert re.fullmatch(rf"{re.escape(str(corrupt))}: cannot be read \(Error -3 while decompressing data: [a-z ]+\)",
                        _message(corrupt)), _message(corrupt)
    short = tmp_path / "short.json.gz"                      # cut inside the first bytes
    short.write_bytes(gzip.compress(b'{"a": 1, "traceEvents": []}')[:15])
    assert _message(short) == f"{short}: cannot be read {eof}"
    import random

    noise = "".join(random.Random(0).choice("0123456789abcdef") for _ in range(40_000))   # does not compress
    packed = gzip.compress(json.dumps({"note": noise, "traceEvents": SHAPED}).encode())
    head_cut = tmp_path / "head_cut.json.gz"                # cut inside the metadata, after its first 4 KB
    head_cut.write_bytes(packed[: len(packed) // 2])
    assert _message(head_cut) == f"{head_cut}: cannot be read {eof}"
    events = [{"ph": "X", "cat": "cpu_op", "name": "a", "ts": i, "dur": 1} for i in range(3000)]
    for writer in (torch_file, compact_file):              # cut inside the events, chunked or streamed
        whole = writer(tmp_path / "whole.json.gz", events)
        cut = tmp_path / f"cut_{writer.__name__}.json.gz"
        cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
        message = _message(cut)
        assert re.fullmatch(rf"{re.escape(str(cut))}: cannot be read to its end \(after \d+ bytes\) {re.escape(eof)}",
                            message), message


def test_without_ijson_reading_a_trace_says_what_to_install(tmp_path, monkeypatch):
    import sys

    from ngbench.errors import MissingDependency

    path = torch_file(tmp_path / "t.json", SHAPED)
    monkeypatch.setitem(sys.modules, "ijson", None)
    with pytest.raises(MissingDependency) as caught:
        event_table.load_trace(path)
    assert str(caught.value) == ("reading Chrome traces needs the Python package 'ijson' (import ijson failed): "
                                 "pip install ijson")


@pytest.mark.parametrize("missing", [["orjson"], ["ngbench.trace.event_structs"],
                                     ["orjson", "ngbench.trace.event_structs"]])
def test_chunks_give_the_same_table_whichever_decoder_and_a_long_head_is_streamed(tmp_path, monkeypatch, missing):
    """Chunks are decoded by msgspec where it is installed, else by orjson, else by json: one table."""
    import sys

    streamed = event_table.read_trace(compact_file(tmp_path / "c.json", SHAPED, head=SHORT_HEAD), workers=1).events
    monkeypatch.setattr(chrome_json, "CHUNK_BYTES", 200)
    path = torch_file(tmp_path / "t.json", SHAPED, head=SHORT_HEAD)
    for module in missing:
        monkeypatch.setitem(sys.modules, module, None)
        package, _, name = module.rpartition(".")
        if package:       # `from ngbench.trace import event_structs` finds the imported module on its package
            monkeypatch.delattr(sys.modules[package], name, raising=False)
    assert event_table.read_trace(path, workers=1).events.equals(streamed)
    others = [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "python"}}] * 2 \
        + [{"ph": "X", "cat": "python_function", "name": "<built-in>", "ts": 1, "dur": 1}] * 3
    assert event_table.read_trace(torch_file(tmp_path / "o.json", SHAPED + others, head=SHORT_HEAD),
                                  workers=1).ignored_events == {"ph=M": 2, "python_function": 3}
    long_head = torch_file(tmp_path / "long.json", SHAPED)       # traceEvents is not in the first chunk
    assert ChromeTrace(long_head).chunks() is None
    trace = event_table.read_trace(long_head, workers=1)
    assert trace.events.equals(streamed) and trace.metadata == {**HEAD, **TAIL}


def test_a_trace_held_in_memory_without_events_is_an_empty_table():
    table = event_table.events_from_trace({"schemaVersion": 1})
    assert table.empty and list(table.columns) == event_table.COLUMNS
