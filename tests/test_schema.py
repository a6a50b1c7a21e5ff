"""One schema for every flow: ops.parquet and kernels.parquet have the columns and Arrow types of
ngbench.schema.arrow_schema (typed lists, never list<null>) and the schema version; docs/schema.md documents
exactly those columns, and its DuckDB and polars examples run as written."""

import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, TINY, run_cli

from ngbench.schema import SCHEMA_VERSION, arrow_schema

FIXTURE = ROOT / "tests" / "fixtures" / "sweep-cpu"
DOC = ROOT / "docs" / "schema.md"


def _type_text(arrow_type) -> str:
    return re.sub(r"(element|item): ", "", str(arrow_type))


def check_run_files(run_dir) -> None:
    """A run's Parquet files have exactly the fixed schema and its version; its summary says the version."""
    for name, kind in (("ops.parquet", "ops"), ("kernels.parquet", "kernels")):
        schema = pq.read_schema(run_dir / name)
        assert schema.equals(arrow_schema(kind), check_metadata=False), f"{run_dir / name}: {schema}"
        assert "null" not in str(schema)
        assert schema.metadata[b"ngbench_schema_version"] == str(SCHEMA_VERSION).encode()
    assert json.loads((run_dir / "summary.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_committed_torch_and_ort_runs_have_the_one_schema():
    run_dirs = [p.parent for p in FIXTURE.glob("*/ops.parquet")]
    assert {json.loads((d / "summary.json").read_text())["flow"] for d in run_dirs} == {"torch", "ort"}
    for run_dir in run_dirs:
        check_run_files(run_dir)


def test_polars_reads_a_mixed_torch_and_ort_sweep_as_one_table():
    import polars as pl

    ops = pl.read_parquet(str(FIXTURE / "*" / "ops.parquet"))
    assert set(ops["flow"]) == {"torch", "ort"}
    assert ops.schema["input_shapes"] == pl.List(pl.List(pl.Int64))
    assert ops.schema["kernels"] == pl.List(pl.String) and ops.schema["fused_ops"] == pl.List(pl.String)
    assert len(ops) == sum(pq.read_metadata(p).num_rows for p in FIXTURE.glob("*/ops.parquet"))


def test_empty_lists_and_missing_values_keep_their_types(tmp_path):
    """The one writer every flow goes through: a table with only empty lists is still list<string> etc."""
    from ngbench.output import write_table
    from ngbench.schema import OPS_COLUMNS

    row = {c: "" for c in OPS_COLUMNS}
    row.update(batch_size=1, iteration=0, seq=0, is_gemm=False, input_shapes=[], input_dtypes=[], kernels=[],
               fused_ops=[], input_values=[], host_us=0.0, device_us=0.0, wall_us=0.0, wall_profiled_us=0.0,
               flops=None, bytes=None)
    write_table(tmp_path / "ops.parquet", pd.DataFrame([row]), "ops")
    schema = pq.read_schema(tmp_path / "ops.parquet")
    assert schema.equals(arrow_schema("ops"), check_metadata=False) and "null" not in str(schema)
    write_table(tmp_path / "kernels.parquet", pd.DataFrame(columns=arrow_schema("kernels").names), "kernels")
    assert pq.read_schema(tmp_path / "kernels.parquet").equals(arrow_schema("kernels"), check_metadata=False)


def _doc_columns(heading: str) -> list[tuple[str, str]]:
    section = DOC.read_text().split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| (\w+) \| ([\w<>]+) \|", section, re.M)[1:]   # [0] is the header


@pytest.mark.parametrize("kind,heading", [("ops", "## ops.parquet"), ("kernels", "## kernels.parquet")])
def test_schema_doc_lists_exactly_the_columns_and_types(kind, heading):
    assert _doc_columns(heading) == [(f.name, _type_text(f.type)) for f in arrow_schema(kind)]


def test_schema_doc_names_every_summary_field():
    from dataclasses import fields

    from ngbench.record import CellKey, Summary

    text = DOC.read_text().split("## summary.json", 1)[1]
    names = [f.name for f in fields(Summary) if f.name != "key"] + CellKey.names()
    assert [name for name in names if f"`{name}`" not in text and f" {name}" not in text] == []


def run_doc_examples(sweep: str | None = None) -> dict:
    """Run the ```python blocks of docs/schema.md (the fixture's path replaced by `sweep`); their variables."""
    namespace = {}
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S):
        code = block if sweep is None else block.replace("tests/fixtures/sweep-cpu", sweep)
        exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def expected_wall_ms(sweep) -> dict:
    """(model, flow, group) -> wall ms per inference, from each ok run's summary.json."""
    out = {}
    for path in sweep.glob("*/summary.json"):
        summary = json.loads(path.read_text())
        for group, row in summary.get("groups", {}).items():
            out[(summary["model"], summary["flow"], group)] = row["wall_ms"]
    return out


def check_doc_examples(namespace: dict, sweep) -> None:
    by_group = namespace["by_group"]
    got = {(r.model, r.flow, r.op_group): r.wall_ms for r in by_group.itertuples()}
    expected = {k: v for k, v in expected_wall_ms(sweep).items() if v != 0.0}
    assert {k: v for k, v in got.items() if v != 0.0} == pytest.approx(expected, rel=1e-9)
    cells = namespace["cells"]
    assert len(cells) == len(list(sweep.glob("*/ops.parquet"))) and (cells["clean_ms"] > 0).all()
    top = namespace["top"].to_pandas()
    assert len(top) == 5 and "GEMM" not in set(top["op_group"]) and top["wall_us"].is_monotonic_decreasing


def test_schema_doc_examples_run_as_written(monkeypatch):
    monkeypatch.chdir(ROOT)
    check_doc_examples(run_doc_examples(), FIXTURE)


@pytest.mark.slow
def test_a_fresh_torch_and_ort_sweep_has_one_schema_and_runs_the_doc_examples(tmp_path):
    """A real tiny sweep through the CLI (gpt2 on torch and ONNX Runtime, CPU)."""
    import polars as pl

    sweep = tmp_path / "sweep"
    result = run_cli("-m", "model=gpt2", "flow=torch,ort", *TINY, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = [p.parent for p in sweep.rglob("ops.parquet")]
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        check_run_files(run_dir)
    ops = pl.read_parquet([str(d / "ops.parquet") for d in run_dirs])
    assert set(ops["flow"]) == {"torch", "ort"}
    for run_dir in run_dirs:  # Hydra's escaped names (`$\\{model.tiny\\}`) are not globbed by DuckDB
        run_dir.rename(sweep / re.sub(r"[^\w=,.]", "", run_dir.name))
    check_doc_examples(run_doc_examples(str(sweep)), sweep)   # the doc's examples, pointed at this sweep
