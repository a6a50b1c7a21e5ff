"""+quant=int8 on the torch flow, CPU path (dynamic int8): the Linear layers become int8 GEMMs."""

import pandas as pd
import pytest
from conftest import TINY, read_summary, run_cli


@pytest.mark.slow
def test_cpu_dynamic_int8_turns_linears_into_int8_gemms(run_dir):
    result = run_cli("model=llama2", "+quant=int8", *TINY, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    assert summary["quant"] == "int8" and summary["flow_facts"]["quantization"]["linear_layers"] > 0
    ops = pd.read_parquet(run_dir / "ops.parquet")
    int8 = ops[ops["kind"] == "int8_matmul"]
    assert len(int8) > 0 and set(int8["op_group"]) == {"GEMM"}
    assert (ops["quant"] == "int8").all() and summary["unmapped_ops"] == {}


@pytest.mark.slow
def test_fig9_shape_report_from_a_sweep_with_and_without_int8(tmp_path):
    """sweeps/fig9.yaml run twice into one directory, as `make fig9` does (CPU: fp32 and dynamic int8)."""
    sweep = tmp_path / "fig9"
    for extra in ([], ["+quant=int8"]):
        result = run_cli("--config-dir", "sweeps", "--config-name", "fig9", "-m", "model.seq_len=16,32", *extra,
                         "precision=fp32", *TINY, f"hydra.sweep.dir={sweep}")
        assert result.returncode == 0, result.stderr[-3000:]
    report = run_cli(str(sweep), module="ngbench.report", timeout=300)
    assert report.returncode == 0, report.stderr
    cells = pd.read_csv(sweep / "report" / "cells.csv")
    assert sorted(cells["seq_len"]) == [16, 16, 32, 32]
    assert set(cells["quant"].fillna("")) == {"", "int8"}
    assert (sweep / "report" / "fig9.png").stat().st_size > 10_000
