"""+quant=int8 on the torch flow, CPU path (dynamic int8): the Linear layers become int8 GEMMs."""

import pandas as pd
import pytest

from tests.conftest import TINY, read_summary, run_cli


@pytest.mark.slow
def test_cpu_dynamic_int8_turns_linears_into_int8_gemms(run_dir):
    result = run_cli("model=llama2", "+quant=int8", *TINY, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    assert summary["quant"] == "int8" and summary["flow_facts"]["quantization"]["linear_layers"] > 0
    ops = pd.read_parquet(run_dir / "ops.parquet")
    int8 = ops[ops["kind"] == "int8_matmul"]
    assert len(int8) > 0 and set(int8["group"]) == {"GEMM"}
    assert (ops["quant"] == "int8").all() and summary["unmapped_ops"] == {}
