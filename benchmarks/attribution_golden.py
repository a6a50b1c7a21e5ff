"""Golden comparison of trace post-processing: the tables a checkout produces on a fixed set of traces, saved
once and compared after a change (equal, floats within 1e-9 relative).

Cases: the run path (`KinetoProfiler.result` on generated inference blocks: one and two streams, calibrated
and zero costs, a CPU run, torch.compile's CUDA-graph split on the captured-graph fixture) and the analyze
path (`python -m ngbench.analyze`'s pipeline on every hand-made fixture trace and on generated training and
inference traces). `--size large` uses mask_rcnn-scale traces (minutes); tests/test_golden.py checks the
small ones against tests/fixtures/golden/.

    python benchmarks/attribution_golden.py save DIR [--size small|large]
    python benchmarks/attribution_golden.py check DIR [--size small|large] [--trace RUN/trace.json ...]
    python benchmarks/attribution_golden.py save DIR --checkout OTHER_CHECKOUT    # the tables before a change
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]   # this checkout's ngbench, not the installed one
FIXTURES = ROOT / "tests" / "fixtures" / "traces"
RELATIVE_TOLERANCE = 1e-9
SIZES = {"small": {"ops": 300, "blocks": 2, "training_bytes": 400_000},
         "large": {"ops": 6264, "blocks": 6, "training_bytes": 40_000_000}}
# what summary.json says about the trace (not the run's own wall times, id or environment)
SUMMARY_KEYS = ("model", "platform", "device", "precision", "profiled_ms", "iterations", "groups", "gemm_kinds_ms",
                "gemm_pct", "idle_ms", "reconciliation", "flow_facts", "coverage", "kernel_classes", "unmapped_ops",
                "unmapped_kernels", "warnings")


def _profile_tables(result) -> dict:
    tables = {"ops": result.ops, "kernels": result.kernels, "iterations": result.iterations}
    if result.saved_trace_ops is not None:
        tables["saved_trace_ops"] = result.saved_trace_ops
    tables["facts"] = {"busy_us_by_device": result.busy_us_by_device, "notes": result.notes}
    return tables


def _analyze_tables(trace: Path, out: Path) -> dict:
    import pandas as pd

    from ngbench.analyze.pipeline import analyze_trace

    summary = analyze_trace(trace, out)
    tables = {"ops": pd.read_parquet(out / "ops.parquet").drop(columns="run_id")}
    if (out / "kernels.parquet").exists():
        tables["kernels"] = pd.read_parquet(out / "kernels.parquet").drop(columns="run_id")
    tables["facts"] = {k: summary[k] for k in SUMMARY_KEYS if k in summary}
    return tables


def cases(work: Path, size: str, recorded: list[Path] = ()) -> dict:
    """Case name -> a function returning its tables (DataFrames, and one dict of facts); `recorded` traces
    (a run's trace.json, e.g. from the GPU machine) add a run-path case (the trace as two blocks and as the
    annotation pass) and an analyze case each."""
    from analyze_scale import generate
    from inference_trace import operator_sequence, profile_result, write_blocks, write_trace

    from ngbench.trace.reconstruct import Costs

    scale = SIZES[size]
    one, annotation_one = write_blocks(work / "one_stream", scale["ops"], scale["blocks"], streams=1, seed=1)
    two, annotation_two = write_blocks(work / "two_streams", scale["ops"], scale["blocks"], streams=2, seed=2)
    cpu, annotation_cpu = write_blocks(work / "cpu", scale["ops"], scale["blocks"], streams=0, seed=3)
    inference = work / "inference.json"
    write_trace(inference, [3, 4, 5], operator_sequence(scale["ops"], 4), seed=4, streams=2)
    training = work / "training.json"
    generate(training, scale["training_bytes"], steps=3)
    captured = FIXTURES / "cuda_graph_captured.json"
    found = {
        "run_one_stream": lambda: profile_result(one, annotation_one, keep_trace=work / "kept.json"),
        "run_two_streams": lambda: profile_result(two, annotation_two),
        "run_zero_costs": lambda: profile_result(two, annotation_two, costs=Costs({})),
        "run_cpu": lambda: profile_result(cpu, annotation_cpu, device="cpu"),
        "run_cuda_graphs": lambda: profile_result([captured], captured, flow="inductor"),
    }
    found = {name: (lambda make=make: _profile_tables(make())) for name, make in found.items()}
    for trace in recorded:
        device = "cuda" if _has_device_activity(trace) else "cpu"
        found[f"run_{_stem(trace)}"] = lambda trace=trace, device=device: _profile_tables(
            profile_result([trace, trace], trace, device=device))
    for trace in sorted(FIXTURES.glob("*.json")) + [inference, training] + list(recorded):
        found[f"analyze_{_stem(trace)}"] = lambda trace=trace: _analyze_tables(trace, work / "out" / _stem(trace))
    return found


def _stem(trace: Path) -> str:
    return trace.name.removesuffix(".gz").removesuffix(".json")


def _has_device_activity(trace: Path) -> bool:
    from ngbench.trace.kineto import DEVICE_CATEGORIES, load_trace

    return bool(load_trace(trace)["cat"].isin(DEVICE_CATEGORIES).any())


def portable(facts: dict, work: Path) -> dict:
    """Facts as JSON types, with the temporary folder and the checkout's path replaced by placeholders."""
    text = json.dumps(facts, sort_keys=True, default=str)
    return json.loads(text.replace(str(work), "<work>").replace(str(ROOT), "<root>"))


def save(tables: dict, folder: Path, work: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if isinstance(table, dict):
            (folder / f"{name}.json").write_text(json.dumps(portable(table, work), indent=1, sort_keys=True))
        else:
            table.to_parquet(folder / f"{name}.parquet")


def load(folder: Path) -> dict:
    import pandas as pd

    tables = {p.stem: pd.read_parquet(p) for p in folder.glob("*.parquet")}
    tables.update({p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")})
    return tables


def differences(expected, actual, where: str = "") -> list[str]:
    """What differs between two saved values (tables compared column by column, row by row). Columns and keys
    the golden copy does not have are not compared (a later change may add some)."""
    import pandas as pd

    if isinstance(expected, pd.DataFrame):
        missing = [c for c in expected.columns if c not in actual.columns]
        if missing or len(expected) != len(actual):
            return [f"{where}: columns {missing} missing or rows {len(expected)} != {len(actual)}"]
        found = []
        for column in expected.columns:
            found += differences(expected[column].tolist(), actual[column].tolist(), f"{where}.{column}")[:3]
        return found
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) - set(actual):
            return [f"{where}: keys {sorted(set(expected) - set(actual))} missing"]
        return [d for key in expected for d in differences(expected[key], actual[key], f"{where}.{key}")]
    expected, actual = _plain(expected), _plain(actual)
    if isinstance(expected, list) or isinstance(actual, list):
        if not isinstance(expected, list) or not isinstance(actual, list) or len(expected) != len(actual):
            return [f"{where}: {_short(expected)} != {_short(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{where}[{i}]")]
    if isinstance(expected, float) or isinstance(actual, float):
        if expected is None or actual is None:
            return [] if expected is actual else [f"{where}: {expected!r} != {actual!r}"]
        e, a = float(expected), float(actual)
        if (math.isnan(e) and math.isnan(a)) or e == a or abs(e - a) <= RELATIVE_TOLERANCE * max(abs(e), abs(a)):
            return []
        return [f"{where}: {expected!r} != {actual!r}"]
    return [] if expected == actual or (expected != expected and actual != actual) else [f"{where}: {expected!r} != {actual!r}"]


def _plain(value):
    """numpy arrays as lists, numpy scalars as Python numbers (Parquet gives back either)."""
    import numpy as np

    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    return value.item() if isinstance(value, np.generic) else value


def _short(value) -> str:
    return repr(value)[:120]


def check(folder: Path, size: str, work: Path, recorded: list[Path] = ()) -> list[str]:
    """Every difference between the saved golden tables in `folder` and this checkout's."""
    import pandas as pd

    found = []
    for name, make in cases(work, size, recorded).items():
        expected = load(folder / name)
        actual = make()
        actual = {k: portable(v, work) if isinstance(v, dict) else
                  pd.read_parquet(_roundtrip(v, work / f"{name}-{k}.parquet")) for k, v in actual.items()}
        if set(expected) - set(actual):
            found.append(f"{name}: tables {sorted(set(expected) - set(actual))} missing")
        found += [d for k in expected if k in actual for d in differences(expected[k], actual[k], f"{name}.{k}")]
    return found


def _roundtrip(table, path: Path) -> Path:
    """A table through Parquet, as the golden copy went (the same types on both sides)."""
    table.to_parquet(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("save", "check"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", choices=tuple(SIZES), default="small")
    parser.add_argument("--trace", type=Path, action="append", default=[], help="a recorded trace to add (repeat)")
    parser.add_argument("--checkout", type=Path, default=None, help="another checkout's ngbench (e.g. before a change)")
    args = parser.parse_args()
    if args.checkout:
        sys.path.insert(0, str(args.checkout.resolve()))
    recorded = [t.resolve() for t in args.trace]
    with tempfile.TemporaryDirectory(prefix="ngbench-golden-") as tmp:
        if args.action == "save":
            for name, make in cases(Path(tmp), args.size, recorded).items():
                save(make(), args.folder / name, Path(tmp))
                print(f"saved {name}")
            return 0
        found = check(args.folder, args.size, Path(tmp), recorded)
    print("\n".join(found[:50]) if found else "all golden tables equal")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
