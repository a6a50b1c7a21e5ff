"""Integration: the real CLI on tiny models, read back ops.parquet and summary.json."""

import json

import pandas as pd
import pytest
from conftest import TINY, check_ratios_against_their_inputs, read_summary, run_cli

from ngbench.schema import GROUPS, OPS_COLUMNS

FOUNDATION_MODELS = ["gpt2", "vit_b16", "swin_t", "faster_rcnn", "detr", "segformer"]


def check_tiny(model: str, summary: dict) -> dict:
    """A tiny model's summary, checked for status, mapping and reconciliation."""
    assert summary["status"] == "ok" and summary["model"] == model, (model, summary.get("error"))
    # every op the model emits is mapped on purpose: nothing fell through to "unmapped"
    assert summary["unmapped_ops"] == {}, (model, summary["unmapped_ops"])
    # the rebuilt iteration is the profiled one less the profiler's calibrated cost, never more
    assert 0 < summary["reconstructed_ms"] <= summary["profiled_ms"]
    assert summary["calibration"]["costs_us"]["op"] >= 0
    return summary


def tiny_sweep(models: list[str], sweep) -> dict:
    """The models' tiny variants in one sweep, as a user sweeps them (one process, cell after cell): {model: its
    run directory}, each cell's summary checked by check_tiny."""
    result = run_cli("-m", f"model={','.join(models)}", *TINY, f"hydra.sweep.dir={sweep}", timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = {read_summary(p.parent)["model"]: p.parent for p in sweep.rglob("summary.json")}
    assert sorted(runs) == sorted(models)
    for model, run_dir in runs.items():
        check_tiny(model, read_summary(run_dir))
    return runs


@pytest.mark.slow
def test_tiny_foundation_models_end_to_end(tmp_path):
    """The six foundation models: each cell's tables and summary agree with each other."""
    for model, run_dir in tiny_sweep(FOUNDATION_MODELS, tmp_path / "sweep").items():
        check_end_to_end(model, run_dir)


def check_end_to_end(model: str, run_dir) -> None:
    summary = read_summary(run_dir)
    ops = pd.read_parquet(run_dir / "ops.parquet")
    assert list(ops.columns[: len(OPS_COLUMNS)]) == OPS_COLUMNS
    assert set(ops["op_group"]) <= set(GROUPS) and "GEMM" in set(ops["op_group"])
    # the ratio fields are their inputs' ratios, and each group's summary figures are its op rows' sums
    check_ratios_against_their_inputs(summary)
    iterations = ops["iteration"].nunique()
    for group, rows in ops.groupby("op_group"):
        entry = summary["groups"][group]
        for view in ("wall", "wall_profiled", "device", "host"):
            assert entry[f"{view}_ms"] == pytest.approx(rows[f"{view}_us"].sum() / iterations / 1000, rel=1e-9)
        assert entry["ops"] == len(rows) // iterations
    assert summary["clean"]["median_ms"] > 0 and summary["memory"]["peak_bytes"] > 0
    assert summary["model_facts"]["param_count"] > 0 and summary["environment"]["cpu"]
    assert (ops["module"] != "").mean() > 0.9  # the annotation pass found a module for nearly every op
    assert ops["group_source"].isin(["module", "op", "fused", "idle"]).all()


@pytest.mark.slow
def test_sweep_records_failed_cells_resumes_and_reports(tmp_path):
    """The zoo sweep (Figures 5, 6, Tables I, IV) on tiny CPU cells, two of them bad: they are recorded as
    failed, the sweep says so on its last line and exits 1; a rerun skips the finished cells."""
    sweep = tmp_path / "sweep"
    args = ["--config-dir", "sweeps", "--config-name", "zoo", "-m", "model=swin_t,gpt2", "batch_size=1,0", *TINY,
            f"hydra.sweep.dir={sweep}"]
    first = run_cli(*args)
    assert first.returncode == 1, first.stderr[-3000:]
    assert first.stderr.strip().splitlines()[-1] == f"2 of 4 cells failed (see {sweep})"
    assert [f"cell {k} of 4" in first.stdout for k in range(1, 5)] == [True] * 4
    summaries = {p.parent.name: read_summary(p.parent) for p in sweep.rglob("summary.json")}
    assert len(summaries) == 4 and all(name.endswith(",platform=cpu,variant=tiny") for name in summaries)
    failed = [s for s in summaries.values() if s["status"] == "failed"]
    assert len(failed) == 2 and all("batch_size=0 is not valid" in s["error"] for s in failed)
    gpt2 = summaries["batch_size=1,model=gpt2,platform=cpu,variant=tiny"]
    assert gpt2["config"]["model"]["seq_len"] == 256  # the seed artifact's GPT-2 prompt (sweeps/paper/)
    run_ids = {k: s.get("run_id") for k, s in summaries.items() if s["status"] == "ok"}

    second = run_cli(*args, "resume=true")
    assert second.returncode == 1 and second.stdout.count("already holds an ok run; skipped") == 2
    assert {k: read_summary(sweep / k)["run_id"] for k in run_ids} == run_ids  # finished cells skipped

    report = run_cli(str(sweep), module="ngbench.report", timeout=300)
    assert report.returncode == 3, report.stderr   # written, but two cells are missing from it
    assert report.stderr.count("batch_size=0 is not valid") == 2
    out = sweep / "report"
    breakdown = pd.read_csv(out / "breakdown.csv")
    assert set(breakdown["model"]) == {"swin_t", "gpt2"}
    # the report's shares (DuckDB over ops.parquet) are those each run wrote (pandas, ngbench.summary)
    for summary in summaries.values():
        if summary["status"] == "ok":
            shares = breakdown[breakdown["run_id"] == summary["run_id"]].set_index("op_group")["pct"].to_dict()
            wrote = {g: e["wall_pct"] for g, e in summary["groups"].items() if e["wall_ms"] != 0}
            assert shares == pytest.approx(wrote, rel=1e-6)
    assert len(pd.read_csv(out / "failed.csv")) == 2
    assert (out / "fig6.png").exists() and (out / "fig6.pdf").exists()   # what they plot: tests/test_figures.py
    assert set(pd.read_csv(out / "table4.csv")["model"]) == {"swin_t", "gpt2"}


@pytest.mark.slow
def test_report_on_a_missing_dir_is_one_line(tmp_path):
    result = run_cli(str(tmp_path / "nothing"), module="ngbench.report", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "does not exist" in result.stderr


OTHER_MODELS = ["vit_l16", "vit_h14", "swin_s", "swin_b", "mask_rcnn", "maskformer", "gpt2_large", "gpt2_xl",
                "llama2", "llama3", "bert", "mixtral"]


@pytest.mark.slow
def test_rest_of_the_zoo_profiles_with_every_op_mapped(tmp_path):
    """The other twelve models in one sweep, each cell checked by check_tiny."""
    tiny_sweep(OTHER_MODELS, tmp_path / "sweep")


@pytest.mark.slow
def test_max_time_cuts_the_inferences_of_a_slow_cell(run_dir):
    """max_time_s as users type it: a cap far below one inference leaves the floors (3 blocks of one clean,
    one unmarked and one marked profiled inference), and the summary and the report's warnings say so."""
    result = run_cli("model=gpt2", *TINY, "iters=12", "profile_iters=6", "blocks=6", "warmup=2",
                     "max_time_s=0.001", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    sampling = summary["sampling"]
    assert {k: sampling[k] for k in ("iters", "profile_iters", "blocks", "profile_warmup", "capped", "warmup")} == \
        {"iters": 3, "profile_iters": 3, "blocks": 3, "profile_warmup": 1, "capped": True, "warmup": 2}
    # one profiled inference a block: a block whose only inference stalled (the 2-core host at times takes
    # 1.6x as long once) has none left to compare, and the ops keep only the unstalled ones
    stalled = summary["reconciliation"]["stalled_iterations"]
    assert len(summary["iterations"]) == 3 and stalled <= 1
    assert len(summary["reconciliation"]["by_block"]) == 3 - stalled
    assert summary["clean"]["iters"] == 3
    assert any(w.startswith("measured 3 clean and 3 profiled inferences in 3 blocks, fewer than configured")
               for w in summary["warnings"])
    assert pd.read_parquet(run_dir / "ops.parquet")["iteration"].nunique() == 3 - stalled


@pytest.mark.slow
def test_pin_cpus_pins_the_run_and_its_threads(tmp_path):
    """`pin_cpus=[0]` as typed: the run is held to CPU 0 and torch runs one intra-op thread on it (not one per
    core, which spun against each other on the H100 host: maskformer took 5.1 s an iteration instead of 0.13 s)."""
    run_dir = tmp_path / "run"
    done = run_cli("model=gpt2", *TINY, "pin_cpus=[0]", "calibration.mode=off", f"hydra.run.dir={run_dir}",
                   env={"OMP_NUM_THREADS": None})    # torch's own default, a thread per core, as users run it
    assert done.returncode == 0, done.stderr[-2000:]
    summary = read_summary(run_dir)
    assert summary["host"]["before"]["affinity"] == [0] and summary["host"]["after"]["affinity"] == [0]
    assert summary["environment"]["torch_threads"] == 1


@pytest.mark.slow
def test_each_block_is_priced_by_the_hosts_speed_when_told_to(tmp_path):
    """As typed, twice on one calibration (a cached one, with a known price and host probe): with
    calibration.scale_by_probe=true a block's records cost the calibrated price times its host probe over the
    calibration's, so record cost / scale is one figure (records x price) in every iteration; by default every
    iteration costs that same figure, unscaled."""
    from ngbench.measure.calibration import METHOD, cache_file, host_key

    key = {**host_key("cpu"), "method": METHOD}
    cached = cache_file(str(tmp_path / "calibration"), key)
    cached.parent.mkdir()
    cached.write_text(json.dumps({"key": key, "loops": {}, "host_probe_us": 2.5, "host_probe_mean_us": 2.6,
                                  "costs_us": {"op": 1.5, "runtime": 1.5, "driver": 1.5, "host_slowdown": 0.0}}))
    calibration_dir = f"calibration.dir={cached.parent}"
    runs = {}
    for name, extra in (("scaled", ["calibration.scale_by_probe=true"]), ("plain", [])):
        run_dir = tmp_path / name
        done = run_cli("model=gpt2", *TINY, calibration_dir, *extra, f"hydra.run.dir={run_dir}")
        assert done.returncode == 0, done.stderr[-2000:]
        runs[name] = read_summary(run_dir)
    scaled, plain = runs["scaled"], runs["plain"]
    assert scaled["calibration"]["scaled_by_probe"] and not plain["calibration"]["scaled_by_probe"]
    assert not scaled["calibration"]["measured_now"] and scaled["calibration"]["costs_us"]["op"] == 1.5
    calibrated = scaled["calibration"]["host_probe_us"]
    assert calibrated == 2.5
    scale = {b["block"]: b["host_probe_us"] / calibrated for b in scaled["reconciliation"]["by_block"]}
    unit = [it["record_cost_us"] / scale[it["block"]] for it in scaled["iterations"]]
    flat = [it["record_cost_us"] for it in plain["iterations"]]
    assert unit == pytest.approx([unit[0]] * len(unit), rel=1e-6) and unit[0] > 0
    assert flat == pytest.approx([unit[0]] * len(flat), rel=1e-6)
