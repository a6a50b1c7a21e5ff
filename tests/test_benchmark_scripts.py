"""The issue-#9 benchmark scripts run as their docstrings show them: calibration_variants.py pack and evaluate over
a run's kept block traces, and int8_outliers.py on fig9's model (its tiny variant, on the CPU)."""

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY, run_cli

BENCHMARKS = ROOT / "benchmarks"


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.slow
def test_calibration_variants_pack_and_evaluate_a_runs_kept_traces(tmp_path):
    """The run's own prices give back its summary's rebuilt/clean; the committed H200 loops give a row per fit,
    workload set and repeat, each with the cell counted within ±5% or not."""
    run_dir = tmp_path / "sweep" / "run"
    done = run_cli("model=gpt2", *TINY, "blocks=3", "iters=3", "profile_iters=3", "save_trace=true",
                   f"hydra.run.dir={run_dir}", env={"NGBENCH_KEEP_BLOCK_TRACES": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    packed = tmp_path / "windows.pkl.xz"
    assert "1 cells into" in script("calibration_variants.py", "pack", str(tmp_path / "sweep"), "--out", str(packed),
                                    "--jobs", "1").stdout
    out = script("calibration_variants.py", "evaluate", str(BENCHMARKS / "data" / "h200-calibration-loops.json"),
                 str(packed), "--jobs", "1").stdout
    ratio = json.loads((run_dir / "summary.json").read_text())["reconciliation"]["reconstructed_over_clean"]
    own = re.search(r"windows\.pkl\.xz: the run's own\s+(\d)/ ?(\d) of 1 m([\d.]+)", out)
    assert own and float(own[3]) == pytest.approx(ratio, abs=5e-4)
    assert int(own[1]) == (abs(ratio - 1) <= 0.05) and int(own[2]) == (abs(ratio - 1) <= 0.10)
    labels = re.findall(r"^(per kind|one price), (.+) \(repeat (\d)\)", out, re.M)
    assert len(labels) == 2 * 4 * 2      # two fits x four workload sets x two repeats


@pytest.mark.slow
def test_int8_outliers_counts_each_linear_layers_input_columns(tmp_path):
    out = tmp_path / "outliers.json"
    printed = script("int8_outliers.py", "--out", str(out), "--seq-lens", "16,32", "--device", "cpu",
                     "model.overrides=${model.tiny}").stdout
    rows = json.loads(out.read_text())
    assert [r["seq_len"] for r in rows] == [16, 32] and re.search(r"^seq +32: +\d+ outlier columns", printed, re.M)
    for row in rows:
        layers = row["by_layer"]
        assert len(layers) == row["layers"] == 2 * 7                 # tiny llama3: 2 layers x q k v o gate up down
        assert all(0 <= v["outlier_columns"] <= v["columns"] for v in layers.values())
        assert row["outlier_columns"] == sum(v["outlier_columns"] for v in layers.values())
        assert {v["columns"] for k, v in layers.items() if k.endswith("down_proj")} == {128}   # intermediate_size
