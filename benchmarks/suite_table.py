"""The suite's wall time per step from benchmarks/suite_h100.sh's log, as a markdown table.

    python benchmarks/suite_table.py docs/results/suite-h100 > docs/results/suite-h100.md

DIR holds suite.log (the `== NAME end rc=RC ms=MS` lines) and each step's own log, NAME.log, whose last
lines say how many sweep cells finished or failed. The table's rows add up to its total row, and where
the device calls split one step in parts, each part is its own row.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

END = re.compile(r"^== (?P<name>\S+) end rc=(?P<rc>\d+) ms=(?P<ms>\d+)$")
CELLS = re.compile(r"^(?P<ok>\d+) cells? ok:|^(?P<failed>\d+) of (?P<all>\d+) cells failed")


def cells(log: Path, rc: int) -> str:
    """What a sweep step's callback said of its cells (those this step ran; resumed ones are not counted)."""
    said = ""
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            match = CELLS.match(line.strip())
            if match:
                said = f"{match['ok']} ok" if match["ok"] else f"{match['failed']} of {match['all']} failed"
    return said or ("cut off by its time limit" if rc in (124, 137) else "")


def rows(folder: Path) -> list[tuple[str, int, float, str]]:
    out = []
    for line in (folder / "suite.log").read_text().splitlines():
        match = END.match(line.strip())
        if match:
            name = match["name"]
            out.append((name, int(match["rc"]), int(match["ms"]) / 1000.0, cells(folder / f"{name}.log", int(match["rc"]))))
    return out


def table(folder: Path) -> str:
    found = rows(folder)
    lines = ["| step | exit code | wall (s) | cells |", "|---|---:|---:|---|"]
    lines += [f"| {name} | {rc} | {seconds:.1f} | {done} |" for name, rc, seconds, done in found]
    lines.append(f"| **total** | | **{sum(r[2] for r in found):.1f}** | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "suite.log").is_file():
        sys.exit("usage: python benchmarks/suite_table.py DIR  (DIR holds suite.log from benchmarks/suite_h100.sh)")
    sys.stdout.write(table(Path(sys.argv[1])))
