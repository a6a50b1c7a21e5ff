"""How numbers read on the report's pages: fixed decimals, shares with their CI, a cell's label. The same text
goes to the HTML and the markdown page, so that both say the same thing."""

from __future__ import annotations

import math

MISSING = "–"


def number(value, digits: int = 2) -> str:
    """`value` with `digits` decimals; a dash for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def with_range(value, lo, hi, digits: int = 2, count=None) -> str:
    """'12.30 (11.90–12.80)': a median with its (asymmetric) confidence interval. With `count`, the number of
    values, below RANGE_ONLY: '12.30 (11.90–12.80; range of 3, 75%)', the interval being their range and the
    confidence it has (ngbench.measure.timing.median_ci_coverage)."""
    from ngbench.measure.timing import RANGE_ONLY, median_ci_coverage

    if number(lo) == MISSING or number(hi) == MISSING:
        return number(value, digits)
    shown = f"{number(value, digits)} ({number(lo, digits)}–{number(hi, digits)}"
    if count is not None and not (isinstance(count, float) and math.isnan(count)) and int(count) < RANGE_ONLY:
        shown += f"; range of {int(count)}, {100 * median_ci_coverage(int(count)):g}%"
    return shown + ")"


def share(pct, lo, hi, digits: int = 1) -> str:
    """'23.4 ± 1.2': a share (%) with the half-width of its 95% t-interval across profiled iterations."""
    if number(pct) == MISSING:
        return MISSING
    if number(lo) == MISSING or number(hi) == MISSING:
        return number(pct, digits)
    return f"{number(pct, digits)} ± {number((float(hi) - float(lo)) / 2.0, digits)}"


def cell_label(row) -> str:
    """'gpt2 (tiny) | torch | cpu | fp32 | b1 | 128 tokens': what identifies a cell, in a line (the tokens where
    the model takes a sequence: a sweep over model.seq_len differs in nothing else)."""
    variant = f" ({row['variant']})" if row.get("variant") not in (None, "", "full") else ""
    quant = f" {row['quant']}" if row.get("quant") else ""
    return (f"{row['model']}{variant} | {row['flow']} | {row['device']} | {row['precision']}{quant} | "
            f"b{row['batch_size']}{tokens_suffix(row.get('seq_len'))}")


def tokens(seq_len) -> str:
    """A cell's sequence length as a table shows it: the number, or MISSING for a model without one."""
    if seq_len is None or (isinstance(seq_len, float) and math.isnan(seq_len)):
        return MISSING
    return str(int(seq_len))


def has_tokens(cells) -> bool:
    """Whether any of `cells` (a frame of cells) has a sequence length: then tables show a tokens column."""
    return "seq_len" in cells and cells["seq_len"].notna().any()


def keys_shown(frame):
    """A table's key columns as pages show them: the cell key (batch_size as batch) and, where any cell has a
    sequence length, a tokens column after batch."""
    from ngbench.record import CellKey

    shown = frame[CellKey.names()].rename(columns={"batch_size": "batch"})
    if has_tokens(frame):
        shown.insert(shown.columns.get_loc("batch") + 1, "tokens", frame["seq_len"].map(tokens))
    return shown


def tokens_suffix(seq_len) -> str:
    text = tokens(seq_len)
    return "" if text == MISSING else f" | {text} tokens"


def rounded(frame, digits: int = 3):
    """`frame` with its float columns as text of `digits` decimals (for a page)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype.kind == "f":
            out[column] = out[column].map(lambda v: number(v, digits))
    return out
