"""The ten mutants issue 15 found surviving the whole suite, each applied to a copy of the tree and run
against the one test that must kill it; writes a JSON list (what, file, test, killed) for mutation_report.py.

    python benchmarks/mutation_listed.py mutants/listed.json

Exit 1 when a mutant survives its test. Several of these live outside the modules mutmut mutates (run.py,
validate.py, report/parts.py, trace/torch_profiler.py), which is why they are applied here by hand.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (what, file, original text, mutated text, test node id)
LISTED = [
    ("attribution takes every launch of the trace, not the iteration window's", "ngbench/trace/kineto.py",
     "in_window = between(launches, lo, hi)", "in_window = launches",
     "tests/test_attribution.py::test_each_gpu_iteration_gets_only_the_kernels_launched_inside_it"),
    ("atomic write replaced by a direct write", "ngbench/output.py",
     "    fd, tmp = tempfile.mkstemp(", "    writer(path)\n    return\n    fd, tmp = tempfile.mkstemp(",
     "tests/test_output.py::test_a_failed_write_leaves_the_old_file_and_no_temporary"),
    ("host and device totals swapped in the summary", "ngbench/summary.py",
     '"device": "device_us", "host": "host_us"}', '"device": "host_us", "host": "device_us"}',
     "tests/test_summary.py::test_group_totals_per_view_per_inference"),
    ("--view ignored by the report", "ngbench/report/parts.py",
     "view = check_view(view or self.view)", 'view = check_view(view or "wall")',
     "tests/test_report.py::test_the_report_breakdown_is_in_the_view_asked_for"),
    ("profiled/clean inverted", "ngbench/summary.py",
     '"profiled_over_clean": _ratio(float(mine["profiled_us"].median()), clean_median)',
     '"profiled_over_clean": _ratio(clean_median, float(mine["profiled_us"].median()))',
     "tests/test_summary.py::test_reconciliation_ratios_are_medians_over_blocks_of_each_block_against_its_clean_median"),
    ("Table IV counts Idle as a non-GEMM group", "ngbench/report/tables.py",
     'isin(["GEMM", "Idle"])', 'isin(["GEMM"])',
     "tests/test_report.py::test_table4_averages_batch_sizes_with_absent_groups_as_zero"),
    ("energy per inference divided by profile_iters", "ngbench/run.py",
     '"joules_per_inference": joules / inferences', '"joules_per_inference": joules / cfg.profile_iters',
     "tests/test_run_steps.py::test_energy_per_inference_is_over_the_clean_inferences"),
    ("no check of iters / profile_iters", "ngbench/validate.py",
     'for key in ("batch_size", "iters", "profile_iters", "blocks"):', 'for key in ("batch_size", "blocks"):',
     "tests/test_config.py::test_bad_input_gets_one_clear_line_before_anything_is_built[iters=0]"),
    ("resume=true skips failed cells too", "ngbench/run.py",
     'if cfg.resume and previous and previous.get("status") == "ok":', "if cfg.resume and previous:",
     "tests/test_run_steps.py::test_resume_skips_only_a_cell_that_finished_ok"),
    ("the annotation-join fallback gives a whole matched block one op's module", "ngbench/trace/torch_profiler.py",
     "filled[column][target] = values[column][block.b + k]", "filled[column][target] = values[column][block.b]",
     "tests/test_attribution.py::test_join_by_position_around_an_op_the_annotation_lacks"),
]


def copy_tree(into: Path) -> None:
    """ngbench/ and tests/ copied (they are edited or hold caches), the rest linked."""
    for name in ("ngbench", "tests"):
        shutil.copytree(ROOT / name, into / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("conf", "sweeps", "docs", "benchmarks", "pyproject.toml"):
        if (ROOT / name).exists():
            (into / name).symlink_to(ROOT / name)


def run_one(what: str, file: str, original: str, mutated: str, test: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="ngbench-listed-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        path = tree / file
        source = path.read_text()
        if source.count(original) != 1:
            raise SystemExit(f"{file}: the text to mutate for '{what}' is not there exactly once: {original!r}")
        path.write_text(source.replace(original, mutated))
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test],
                                cwd=tree, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        raise SystemExit(f"{test} did not run (exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr}")
    return {"what": what, "file": file, "test": test, "killed": result.returncode == 1}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python benchmarks/mutation_listed.py OUT.json", file=sys.stderr)
        return 2
    control = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              *sorted({entry[-1] for entry in LISTED})], cwd=ROOT, capture_output=True, text=True)
    if control.returncode != 0:   # a test that fails on the real code kills nothing
        print(f"the tests fail without any mutant:\n{control.stdout[-3000:]}", file=sys.stderr)
        return 1
    results = []
    for entry in LISTED:
        results.append(run_one(*entry))
        print(f"{'killed  ' if results[-1]['killed'] else 'SURVIVED'} {entry[0]}")
    Path(argv[0]).parent.mkdir(parents=True, exist_ok=True)
    Path(argv[0]).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["killed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
