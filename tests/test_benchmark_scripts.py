"""The issue-#9 benchmark scripts run as their docstrings show them: calibration_variants.py pack and evaluate over
a run's kept block traces, int8_outliers.py on fig9's model (its tiny variant, on the CPU), and reprice_summaries.py
over hand-made and published summaries."""

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

    # every block run on a host probed twice as slow as at calibration: prices scaled by the probes are doubled
    summary = json.loads((run_dir / "summary.json").read_text())
    assert all(block["host_probe_us"] > 0 for block in summary["reconciliation"]["by_block"])
    summary["calibration"]["host_probe_us"] = 1.5
    for block in summary["reconciliation"]["by_block"]:
        block["host_probe_us"] = 3.0
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert "1 cells into" in script("calibration_variants.py", "pack", str(tmp_path / "sweep"), "--out", str(packed),
                                    "--jobs", "1").stdout
    out = script("calibration_variants.py", "evaluate", "-", str(packed), "--costs", "1,0", "--costs", "2,0",
                 "--scale-by-probe", "--scale-by-run-probe", "--jobs", "1").stdout
    rows = dict(re.findall(r"^(price=\S+ s=\S+(?: x probe| x run probe)?)\s+(\S+ \S+ of 1 m[\d.]+)", out, re.M))
    assert rows["price=1.0 s=0.0 x probe"] == rows["price=2.0 s=0.0"] != rows["price=1.0 s=0.0"]
    # over the run's own median probe, every block probed alike: the calibrated prices, unscaled
    assert rows["price=1.0 s=0.0 x run probe"] == rows["price=1.0 s=0.0"]


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


def _reprice_cell(root, name: str, busy: float, blocks: list[dict]) -> None:
    cell = root / name
    cell.mkdir(parents=True)
    summary = {"status": "ok", "calibration": {"costs_us": {"op": 1.0, "runtime": 1.0, "driver": 1.0}, "host_slowdown": 0.0},
               "reconciliation": {"reconstructed_over_clean": blocks[0]["rebuilt_ms"] / blocks[0]["clean_ms"],
                                  "device_busy_share": busy, "record_cost_ms": 2.0,
                                  "by_block": [{"block": k, **block} for k, block in enumerate(blocks)]}}
    (cell / "summary.json").write_text(json.dumps(summary))


def test_reprice_summaries_moves_host_bound_blocks_by_the_known_change(tmp_path):
    """A host-bound cell, 2000 records priced at 1 µs with no slowdown, profiled 12 ms, rebuilt and clean 10 ms:
    priced at nothing with a slowdown of 0.2 it rebuilds to 12 / 1.2 = 10 ms (1.0); at 0.25 µs a record with no
    slowdown to 12 - 0.5 = 11.5 ms (1.15). A cell whose device was busy keeps its own 1.3."""
    sweep = tmp_path / "sweep"
    _reprice_cell(sweep, "host", 0.1, [{"profiled_ms": 12.0, "rebuilt_ms": 10.0, "clean_ms": 10.0}])
    _reprice_cell(sweep, "device", 0.9, [{"profiled_ms": 14.0, "rebuilt_ms": 13.0, "clean_ms": 10.0}])
    out = script("reprice_summaries.py", str(sweep), "--costs", "price=0,host_slowdown=0.2",
                 "--costs", "price=0.25").stdout
    rows = dict(re.findall(r"^(the run's own|price=\S+ s=\S+)\s+(.+)$", out, re.M))
    assert rows["the run's own"].split() == ["1/", "1", "of", "2", "m1.150"]
    assert rows["price=0.0 s=0.2"].split() == ["1/", "1", "of", "2", "m1.150"]     # 1.0 and 1.3
    assert rows["price=0.25 s=0.0"].split() == ["0/", "0", "of", "2", "m1.225"]    # 1.15 and 1.3


def test_reprice_summaries_scales_each_blocks_price_by_its_host_probe(tmp_path):
    """The host cell again, calibrated on a host probed at 2 µs a call, its block run at 3: priced at 0.25 µs a
    record, scaled by 3 / 2, the block rebuilds to 12 - 0.75 = 11.25 ms (1.125). A cell without probes (made
    before they were recorded) keeps its own ratio, and is counted as such."""
    sweep = tmp_path / "sweep"
    _reprice_cell(sweep, "host", 0.1, [{"profiled_ms": 12.0, "rebuilt_ms": 10.0, "clean_ms": 10.0, "host_probe_us": 3.0}])
    summary_path = sweep / "host" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["calibration"]["host_probe_us"] = 2.0
    summary_path.write_text(json.dumps(summary))
    _reprice_cell(sweep, "old", 0.1, [{"profiled_ms": 12.0, "rebuilt_ms": 10.25, "clean_ms": 10.0}])
    out = script("reprice_summaries.py", str(sweep), "--costs", "price=0.25", "--scale-by-probe").stdout
    assert "sweep: 1 of 2 cells have no host_probe_us (made before it was recorded): left as the run made them" in out
    row = re.search(r"^price=0.25 s=0.0\s+(.+)$", out, re.M)[1]
    assert row.split() == ["1/", "1", "of", "2", "m1.075"]     # median of 1.125 and 1.025


def test_reprice_summaries_gives_back_a_published_sweeps_own_counts():
    """As its docstring shows it: at the run's own prices, each sweep's counts are its summaries' own."""
    sweeps = ["docs/results/holdout-oneprice-h100", "docs/results/fidelity-oneprice2-h100"]
    out = script("reprice_summaries.py", *sweeps).stdout
    own = re.search(r"^the run's own\s+(.+)$", out, re.M)[1]
    expected = []
    for sweep in sweeps:
        ratios = [json.loads(p.read_text())["reconciliation"]["reconstructed_over_clean"]
                  for p in (ROOT / sweep).rglob("summary.json")]
        expected.append((sum(abs(r - 1) <= 0.05 for r in ratios), sum(abs(r - 1) <= 0.10 for r in ratios), len(ratios)))
    assert [tuple(map(int, m)) for m in re.findall(r"(\d+)/\s*(\d+) of (\d+)", own)] == expected
    chosen = script("reprice_summaries.py", "docs/results/fidelity-oneprice3-h100", "--costs",
                    "price=0,host_slowdown=0.35").stdout
    assert re.search(r"^price=0.0 s=0.35\s+\d+/\s*\d+ of 24 m[\d.]+$", chosen, re.M)


def test_reprice_summaries_bad_input_is_one_line():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "reprice_summaries.py"), "docs/results/holdout-oneprice-h100",
                           "--costs", "prize=1"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0 and "unknown name 'prize'; valid: price, host_slowdown" in done.stderr
    done = subprocess.run([sys.executable, str(BENCHMARKS / "reprice_summaries.py"), "tests"], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stderr.startswith("no ok cell with a one-price calibration under tests")


def _blocks(clean: list[float], check: list[float]) -> list[dict]:
    return [{"clean_ms": c, "rebuilt_ms": c * r, "reconstructed_over_clean": r, "profiled_ms": 2 * c}
            for c, r in zip(clean, check, strict=True)]


def test_noise_floor_counts_cells_whose_halves_agree(tmp_path):
    """Three cells of four blocks. steady: halves equal. drifting: even blocks 10 ms, odd 11 ms (0.909: outside
    ±5%, inside ±10%), its check 1.0 and 1.2 in turn (0.833: outside both). two-blocks: too few, left out.
    As run, the summaries' own ratios 1.0, 1.03 and 1.2 count 2 within ±5%."""
    sweep = tmp_path / "sweep"
    for name, clean, check in (("steady", [10, 10, 10, 10], [1.0] * 4),
                               ("drifting", [10, 11, 10, 11], [1.0, 1.2, 1.0, 1.2]),
                               ("two-blocks", [10, 20], [1.0, 2.0])):
        _reprice_cell(sweep, name, 0.1, _blocks(clean, check))
    for name, ratio in (("steady", 1.0), ("drifting", 1.03)):
        path = sweep / name / "summary.json"
        summary = json.loads(path.read_text())
        summary["reconciliation"]["reconstructed_over_clean"] = ratio
        path.write_text(json.dumps(summary))
    out = script("noise_floor.py", str(sweep)).stdout
    row = re.search(r"^sweep\s+(\d+) \|\s+(\d+)\s+(\d+) \|\s+(\d+)\s+(\d+) \|\s+(\d+)\s+(\d+)$", out, re.M)
    assert row, out
    assert [int(v) for v in row.groups()] == [2, 1, 2, 1, 1, 2, 2]


def test_host_speed_maps_each_cpu_and_picks_among_them(tmp_path):
    """A short map: a row per CPU this process may use, a pick of CPUs among them, the samples in the JSON."""
    import os

    out_json = tmp_path / "host-speed.json"
    out = script("host_speed.py", "--seconds", "0.3", "--per-cpu-s", "0.2", "--pick", "1", "--out",
                 str(out_json)).stdout
    cpus = sorted(os.sched_getaffinity(0))
    saved = json.loads(out_json.read_text())
    assert sorted(int(c) for c in saved["pinned"]) == cpus
    assert len(saved["pick"]) == 1 and saved["pick"][0] in cpus
    assert f"pick: {saved['pick'][0]}" in out and saved["unpinned"] and all(s["us"] > 0 for s in saved["unpinned"])


def test_noise_floor_by_noise_counts_the_check_apart_for_quiet_and_noisy_cells(tmp_path):
    """Three cells of four blocks: steady (halves equal) and drifting (0.909, inside ±10%) are quiet; noisy (even
    blocks 10 ms, odd 13 ms: 0.77) is not. As run they read 1.0 (pass), 1.2 (miss) and 1.03 (pass)."""
    sweep = tmp_path / "sweep"
    for name, clean, ratio in (("steady", [10, 10, 10, 10], 1.0), ("drifting", [10, 11, 10, 11], 1.2),
                               ("noisy", [10, 13, 10, 13], 1.03)):
        _reprice_cell(sweep, name, 0.1, _blocks(clean, [ratio] * 4))
        path = sweep / name / "summary.json"
        summary = json.loads(path.read_text())
        summary["reconciliation"]["reconstructed_over_clean"] = ratio
        path.write_text(json.dumps(summary))
    out = script("noise_floor.py", "--by-noise", str(sweep), str(tmp_path / "missing")).stdout
    assert re.search(r"^sweep\s+1\s+2 \|\s+1\s+1$", out, re.M), out
    assert re.search(r"^all\s+1\s+2 \|\s+1\s+1$", out, re.M), out
