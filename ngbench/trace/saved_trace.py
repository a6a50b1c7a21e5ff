"""trace.json (save_trace=true) as other tools read it.

torch.profiler's schedule already marks the profiled iterations `ProfilerStep#k` (warm-up steps are not
written), which HTA, TensorBoard's profiler plugin and Perfetto recognise. After classification the saved
trace is rewritten (whole, through a temp file) with:
- on each top-level operator event, the args `ngbench group`, `ngbench kind`, `ngbench module` and
  `ngbench module_type`, so Perfetto shows ngbench's classification and `python -m ngbench.analyze` reads the
  module scopes back (the timed profile records none: they come from ngbench's separate annotation pass);
- a `distributedInfo` entry first in the file (rank 0 of 1 for a single-process run), where HTA looks for
  the rank of a trace.
"""

from __future__ import annotations

from pathlib import Path

SINGLE_PROCESS = {"backend": "none", "rank": 0, "world_size": 1}
DECIMALS = 3  # Kineto writes times in µs with nanosecond decimals


def saved_trace_rows(ops, origin_us: float):
    """Where the op rows of the saved trace's iterations are in the file: iteration, seq, ts_us and dur_us on
    the file's clock (the event table's times are relative to `origin_us`)."""
    real = ops[~ops["op"].astype(str).str.startswith("[")]
    return real.assign(ts_us=real["ts"] + origin_us, dur_us=real["end"] - real["ts"])[
        ["iteration", "seq", "ts_us", "dur_us"]].reset_index(drop=True)


def _key(ts: float, dur: float) -> tuple[float, float]:
    return round(float(ts), DECIMALS), round(float(dur), DECIMALS)


def mark_saved_trace(path: str | Path, placed, ops, distributed: dict | None = None) -> int:
    """Rewrite the trace at `path` with ngbench's classification on its operator events (`placed`: rows of
    `saved_trace_rows`; `ops`: the classified op table) and a distributedInfo entry. Returns how many
    events were marked."""
    from ngbench.trace.chrome_json import rewrite_trace

    classified = placed.merge(ops[["iteration", "seq", "op_group", "kind", "module", "module_type"]],
                              on=["iteration", "seq"], how="inner")
    marks = {_key(row.ts_us, row.dur_us): {"ngbench group": row.op_group, "ngbench kind": row.kind,
                                           "ngbench module": row.module, "ngbench module_type": row.module_type}
             for row in classified.itertuples(index=False)}
    marked = 0

    def edit(event: dict) -> dict:
        nonlocal marked
        if event.get("ph") == "X" and event.get("cat") == "cpu_op":
            found = marks.get(_key(event.get("ts", 0.0), event.get("dur", 0.0)))
            if found is not None:
                event["args"] = {**(event.get("args") or {}), **found}
                marked += 1
        return event

    rewrite_trace(path, path, edit, metadata={"distributedInfo": distributed or SINGLE_PROCESS})
    return marked
