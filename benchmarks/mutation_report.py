"""docs/results/mutation.md from mutmut's results (`make mutation` runs it after `mutmut run`).

Reads mutants/<module>.meta (mutmut's verdict per mutant) for the modules of pyproject.toml's
[tool.mutmut] only_mutate, and writes the kill rate per module and in total, beside the baseline's
(--baseline: a JSON file this script wrote with --save), and every surviving mutant with its diff and a word
from benchmarks/mutation_notes.yaml (equivalent, or the test that is missing). The ten mutants issue 15 listed
are run by benchmarks/mutation_listed.py, whose JSON (--listed) becomes the last table.

    python benchmarks/mutation_report.py --out docs/results/mutation.md \
        --baseline docs/results/mutation-before.json --listed mutants/listed.json --minutes 41
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from collections import Counter
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
NOTES = ROOT / "benchmarks" / "mutation_notes.yaml"
# mutmut's exit codes (mutmut.stats.status_by_exit_code): a timeout or a type error stops the mutant too
KILLED, SURVIVED, NO_TESTS = {1, 3, 24, -24, 36, 37, 152, 255}, {0}, {5, 33}


def modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def in_sample(name: str, sample: int, residue: int = 0) -> bool:
    """Whether mutant `name` is in the 1-in-`sample` sample number `residue` (0 .. sample-1): the mutants whose
    name's crc32 leaves that remainder (the same mutants on every run of the same code)."""
    return zlib.crc32(name.encode()) % sample == residue


def verdicts(module: str, sample: int = 1, mutants: Path = ROOT / "mutants",
             residue: int = 0) -> dict[str, int | None]:
    """mutant name -> mutmut's exit code (None: not run yet), for the mutants of the sample."""
    meta = mutants / (module + ".meta")
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: code for name, code in codes.items() if in_sample(name, sample, residue)}


def counts(codes: dict[str, int | None]) -> dict[str, int]:
    kinds = Counter("killed" if c in KILLED else "survived" if c in SURVIVED else "no tests" if c in NO_TESTS
                    else "not run" if c is None else "other" for c in codes.values())
    return {k: kinds.get(k, 0) for k in ("killed", "survived", "no tests", "other", "not run")}


def rate(row: dict[str, int], equivalent: int = 0) -> float | None:
    """Killed over the mutants that ran (a mutant no selected test reaches counts as not killed), less the
    `equivalent` survivors (no test can tell them from the code)."""
    ran = row["killed"] + row["survived"] + row["no tests"] + row["other"] - equivalent
    return 100.0 * row["killed"] / ran if ran else None


def diff_lines(name: str, module: str) -> str:
    """The changed lines of a mutant (`-old` / `+new`), from mutmut's own diff."""
    import os

    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        diff = get_diff_for_mutant(name, path=module)
    finally:
        os.chdir(cwd)
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return " / ".join(re.sub(r"\s+", " ", line).strip() for line in changed)


def load_notes() -> list[tuple[re.Pattern | None, re.Pattern, str]]:
    import yaml

    entries = yaml.safe_load(NOTES.read_text()) if NOTES.exists() else []
    return [(re.compile(entry["in"]) if "in" in entry else None, re.compile(entry["match"]), entry["note"])
            for entry in entries or []]


def note_for(name: str, diff: str, notes) -> str:
    """The first note whose `match` is in the mutant's name or diff (and, when it has one, whose `in` is in the
    name: a change judged in one function only)."""
    for scope, pattern, note in notes:
        if (scope is None or scope.search(name)) and (pattern.search(name) or pattern.search(diff)):
            return note
    return "not reviewed"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def table(rows: dict[str, dict], baseline: dict[str, dict], equivalent: dict[str, int]) -> list[str]:
    """Kill rate per module and in all, before and now, and now without the survivors marked equivalent."""
    lines = ["| module | mutants | killed | survived (equivalent) | no test reaches it | kill rate | "
             "without equivalents | before |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    total, before_total = Counter(), Counter()
    for module, row in rows.items():
        total.update(row)
        before = baseline.get(module)
        if before:
            before_total.update(before)
        lines.append(f"| {module} | {sum(row.values())} | {row['killed']} | {row['survived']} "
                     f"({equivalent.get(module, 0)}) | {row['no tests']} | {_pct(rate(row))} | "
                     f"{_pct(rate(row, equivalent.get(module, 0)))} | {_pct(rate(before)) if before else '-'} |")
    total_row = {k: total.get(k, 0) for k in ("killed", "survived", "no tests", "other", "not run")}
    before_row = {k: before_total.get(k, 0) for k in total_row}
    all_equivalent = sum(equivalent.values())
    lines.append(f"| **all** | {sum(total_row.values())} | {total_row['killed']} | {total_row['survived']} "
                 f"({all_equivalent}) | {total_row['no tests']} | **{_pct(rate(total_row))}** | "
                 f"**{_pct(rate(total_row, all_equivalent))}** | {_pct(rate(before_row)) if baseline else '-'} |")
    return lines


def survivor_notes(all_codes: dict[str, dict], notes) -> dict[str, list[tuple[str, str, str]]]:
    """Per module, each surviving mutant (not the unreached ones) with its change and the word on it."""
    found: dict[str, list] = {}
    for module, codes in all_codes.items():
        for name, code in sorted(codes.items(), key=lambda kv: _natural(kv[0])):
            if code in KILLED or code in NO_TESTS or code is None:
                continue
            diff = diff_lines(name, module)
            found.setdefault(module, []).append((name, diff, note_for(name, diff, notes)))
    return found


def survivors(all_codes: dict[str, dict], found: dict[str, list], notes) -> list[str]:
    """Each surviving mutant with its change and why it survives; the mutants no selected test reaches,
    counted per function (they need a test of that function, or are equivalent: see the note)."""
    lines = ["| mutant | change | why it survives |", "|---|---|---|"]
    for module in all_codes:
        for name, diff, note in found.get(module, []):
            lines.append(f"| `{name.removeprefix('ngbench.')}` | `{diff.replace('|', '¦')}` | {note} |")
    unreached: Counter = Counter()
    for codes in all_codes.values():
        for name, code in codes.items():
            if code in NO_TESTS:
                unreached[name.rpartition("__mutmut_")[0]] += 1
    lines += ["", "### Functions no selected test reaches", "", "| function | mutants | why |", "|---|---:|---|"]
    for function, count in sorted(unreached.items()):
        lines.append(f"| `{function.removeprefix('ngbench.')}` | {count} | {note_for(function, '', notes)} |")
    return lines


def _natural(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def listed(path: Path) -> list[str]:
    results = json.loads(path.read_text())
    lines = ["| # | mutant (issue 15) | killed by | killed |", "|---:|---|---|---|"]
    for k, item in enumerate(results, 1):
        lines.append(f"| {k} | {item['what']} (`{item['file']}`) | `{item['test']}` | "
                     f"{'yes' if item['killed'] else '**no**'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="the markdown page to write")
    parser.add_argument("--save", type=Path, help="also write the counts per module as JSON (a later baseline)")
    parser.add_argument("--baseline", type=Path, help="counts per module of an earlier run (--save's JSON)")
    parser.add_argument("--listed", type=Path, help="benchmarks/mutation_listed.py's JSON")
    parser.add_argument("--minutes", type=float, help="how long the mutmut run took, for the page")
    parser.add_argument("--mutants", type=Path, default=ROOT / "mutants", help="mutmut's directory (with --save)")
    parser.add_argument("--sample", type=int, default=1, help="count only the 1-in-N sample of the mutants")
    parser.add_argument("--residue", type=int, default=0,
                        help="which of the N samples (0 .. N-1; 0 is the published one): crc32(name) %% N")
    parser.add_argument("--names", action="store_true",
                        help="print the names of the sample's mutants that have not run yet (for `mutmut run`)")
    args = parser.parse_args(argv)
    if not 0 <= args.residue < args.sample:
        parser.error(f"--residue must be between 0 and --sample - 1 ({args.sample - 1}), not {args.residue}")
    all_codes = {module: verdicts(module, args.sample, args.mutants, args.residue) for module in modules()}
    if args.names:
        print("\n".join(name for codes in all_codes.values() for name, code in codes.items() if code is None))
        return 0
    if not any(all_codes.values()):
        print("no mutmut results under mutants/: run `make mutation` (or `mutmut run`) first", file=sys.stderr)
        return 2
    rows = {module: counts(codes) for module, codes in all_codes.items()}
    if args.save:
        args.save.write_text(json.dumps(rows, indent=2) + "\n")
    baseline = json.loads(args.baseline.read_text()) if args.baseline and args.baseline.exists() else {}
    notes = load_notes()
    found = survivor_notes(all_codes, notes)
    equivalent = {module: sum(note.startswith("equivalent") for _, _, note in items) for module, items in found.items()}
    lines = ["# Mutation testing of the measurement core", "",
             "Generated by `make mutation` (mutmut 3, one worker; benchmarks/mutation_report.py). A mutant is killed",
             "when one of the fast tests that reach the mutated function fails (pyproject.toml [tool.mutmut] selects",
             "them: the CLI and end-to-end tests are left out); a mutant no selected test reaches counts as not",
             "killed. `before` is the first run, before the known-answer tests of issue 15 were added."
             + (f" The figures are over a fixed 1-in-{args.sample} sample of the mutants (crc32 of the name"
                + (f" % {args.sample} = {args.residue}" if args.residue else "") + ")." if args.sample > 1 else "")
             + (f" This run took {args.minutes:.0f} minutes on the 2-core CPU machine." if args.minutes else ""), "",
             "`before` counts only the mutants that ran (`not run` in docs/results/mutation-before.json are left out).",
             "",
             *table(rows, baseline, equivalent), ""]
    if args.listed and args.listed.exists():
        lines += ["## The survivors issue 15 listed", "",
                  "Each applied by hand to a copy of the tree (benchmarks/mutation_listed.py) and run against the test",
                  "named.", "", *listed(args.listed), ""]
    lines += ["## Surviving mutants", "", *survivors(all_codes, found, notes), ""]
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
