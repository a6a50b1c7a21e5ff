"""The sweeps of sweeps/ (one per published figure or table) and the Makefile that runs them: every cell of
every sweep composes, the paper sweeps take the seed artifact's inputs, and each one runs end to end on tiny
CPU cells through the real CLI."""

import json
import re
import shlex
import shutil
import subprocess

import pandas as pd
import pytest
from conftest import ROOT, TINY, check_ratios_against_their_inputs, hydra_context, read_summary, run_cli
from hydra import compose
from omegaconf import OmegaConf

from ngbench.callbacks import expanded_cells

SWEEPS = ROOT / "sweeps"
SWEEP_NAMES = sorted(p.stem for p in SWEEPS.glob("*.yaml"))
PAPER_SWEEPS = ["zoo", "flows", "fusion", "multigpu", "fig9"]
NOISE = ["USDT:", "gpuGetDeviceCount", "[root][INFO]", "No CUDA runtime is found", "Traceback"]


@pytest.fixture(scope="module")
def sweep_composer():
    """compose(sweep, *overrides) with the sweeps dir first and conf/ behind it, hydra config included."""
    with hydra_context(SWEEPS):
        yield lambda name, *overrides: compose(
            config_name=name, overrides=[f"hydra.searchpath=[file://{ROOT / 'conf'}]", *overrides],
            return_hydra_config=True)


def quiet(result) -> str:
    """The run's whole output, checked for third-party noise (Kineto's USDT lines, root-logger INFO...)."""
    output = result.stdout + result.stderr
    found = [line for line in output.splitlines() if any(noise in line for noise in NOISE)]
    assert not found, found[:5]
    return output


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.mark.slow
def test_every_sweep_is_a_global_package_writing_to_its_own_dir(sweep_composer):
    assert set(PAPER_SWEEPS) < set(SWEEP_NAMES) and {"fidelity", "smoke"} < set(SWEEP_NAMES)
    cell_lists = {}
    for name in SWEEP_NAMES:
        assert (SWEEPS / f"{name}.yaml").read_text().startswith("# @package _global_\n"), name
        cfg = sweep_composer(name)
        assert cfg.hydra.sweep.dir == f"outputs/sweeps/{name}" and cfg.resume is True  # the Makefile relies on it
        cell_lists[name] = json.dumps(OmegaConf.to_container(cfg.hydra.sweeper.params), sort_keys=True)
    assert len(set(cell_lists.values())) == len(cell_lists), "two sweeps sweep the same cells"


GROUPS = ("model", "dataset", "flow", "platform")


@pytest.mark.parametrize("name", SWEEP_NAMES)
@pytest.mark.slow
def test_every_sweep_value_exists_and_its_cells_compose(sweep_composer, name):
    """Each swept group value is a config of its group; the first and the last cell compose with every
    swept value in place (composing all 128 zoo cells would take a minute on two cores)."""
    cells = expanded_cells(sweep_composer(name))
    assert cells
    for cell in cells:
        for override in cell:
            key, value = override.split("=", 1)
            assert key not in GROUPS or (ROOT / "conf" / key / f"{value}.yaml").exists(), (name, override)
    for cell in (cells[0], cells[-1]):
        cfg = sweep_composer(name, *cell)
        for override in cell:
            key, value = override.split("=", 1)
            found = cfg[key].name if key in GROUPS else str(OmegaConf.select(cfg, key))
            assert found.replace(" ", "").replace("'", "") == value.replace("\\", ""), (name, override)


SEED_INPUTS = [  # sweep, overrides, model.seq_len (None: not a text model), precision, sample image sizes
    ("zoo", ["model=gpt2", "platform=cuda"], 256, "fp16", None),
    ("zoo", ["model=gpt2_large", "platform=cpu"], 256, "fp32", None),
    ("zoo", ["model=gpt2_xl", "platform=cuda"], 512, "fp16", None),
    ("zoo", ["model=llama2", "platform=cuda"], 2048, "fp16", None),
    ("zoo", ["model=bert", "platform=cuda"], 128, "fp16", None),
    ("zoo", ["model=maskformer", "platform=cuda"], None, "fp32", [[640, 480]]),
    ("zoo", ["model=faster_rcnn", "platform=cpu"], None, "fp32", [[224, 224]]),
    ("zoo", ["model=vit_b16", "platform=cuda"], None, "fp16", "imagenet"),
    ("zoo", ["model=vit_b16", "platform=cuda", "precision=fp32"], None, "fp32", "imagenet"),  # command line wins
    ("flows", ["model=gpt2_xl", "flow=ort"], 512, "fp32", None),
    ("flows", ["model=llama2", "flow=torch"], 2048, "fp16", None),
    ("fusion", ["model=detr", "flow=trt"], None, "fp32", [[640, 480]]),
    ("fusion", ["model=segformer", "flow=inductor"], None, "fp16", [[640, 480]]),
    ("multigpu", [], 2048, "bf16", None),
    ("fig9", ["model.seq_len=8192"], 8192, "fp16", None),
    ("fidelity", ["model=gpt2", "precision=fp16"], 128, "fp16", None),  # not a paper sweep: gpt2's own length
    ("fidelity", ["model=detr"], None, "fp32", "coco"),                  # ... and COCO's own image sizes
]


@pytest.mark.parametrize("name,overrides,seq_len,precision,sizes", SEED_INPUTS,
                         ids=[f"{s}:{' '.join(o)}" for s, o, *_ in SEED_INPUTS])
@pytest.mark.slow
def test_paper_sweeps_take_the_seed_artifacts_inputs(sweep_composer, name, overrides, seq_len, precision, sizes):
    cfg = sweep_composer(name, *overrides)
    assert cfg.model.get("seq_len") == seq_len and cfg.precision == precision
    if sizes in ("imagenet", "coco"):  # the dataset's own sample sizes, as in a single run
        defaults = OmegaConf.load(ROOT / "conf" / "dataset" / f"{sizes}.yaml").sample.sizes
        assert cfg.dataset.sample.sizes == defaults and len(defaults) > 1
    elif sizes:
        assert OmegaConf.to_container(cfg.dataset.sample.sizes) == sizes
    if name in PAPER_SWEEPS and name != "fig9":  # Figure 9 is batch 1 over sequence lengths, as in the seed
        assert cfg.hydra.sweeper.params.batch_size == "1,2,4,8"


def test_sweeps_readme_names_the_seed_files_it_took_values_from():
    readme = (SWEEPS / "README.md").read_text()
    for seed_file in ("torch_flow/run_gpt2.sh", "torch_flow/run_gpt2_xl.sh", "torch_flow/run_llama.sh",
                      "torch_flow/run_bert.sh", "torch_flow/run_mixtral.sh", "torch_flow/plot_fig7.py"):
        assert seed_file in readme
    for name in SWEEP_NAMES:
        assert f"`{name}.yaml`" in readme


def make(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, **kwargs)


def test_make_help_lists_one_target_per_figure_and_table_aligned():
    lines = make("help").stdout.splitlines()
    targets = [line.split()[0] for line in lines]
    assert len(targets) <= 16  # the figure and table targets, smoke, mixtral, help, mutation and three test tiers
    assert {"fig5", "fig6", "fig7", "fig8", "fig9", "table1", "table4", "table5", "smoke", "mixtral"} <= set(targets)
    # every description starts in one column (looked for after the target: `mutation`'s starts with its name)
    assert len({line.index(line.split()[1], line.index(line.split()[0]) + len(line.split()[0])) for line in lines}) == 1
    for target in targets:
        assert make("-n", target).returncode == 0, target


@pytest.mark.parametrize("target,config", [("fig6", "zoo"), ("table4", "zoo"), ("fig8", "fusion"), ("fig9", "fig9")])
def test_make_reports_the_sweep_dir_it_was_given(target, config, tmp_path):
    default = make("-n", target).stdout
    assert f"--config-name {config}" in default and f"ngbench.report outputs/sweeps/{config}" in default
    given = make("-n", target, f"ARGS=hydra.sweep.dir={tmp_path}/x platform=cpu").stdout
    assert f"ngbench.report {tmp_path}/x" in given and "outputs/sweeps" not in given


@pytest.mark.slow
def test_make_smoke_sweeps_and_reports_into_the_given_dir(tmp_path):
    sweep = tmp_path / "smoke"
    args = " ".join(["model=gpt2", "batch_size=1", *TINY[1:], f"hydra.sweep.dir={sweep}"])  # smoke is tiny itself
    result = make("smoke", f"ARGS={args}")
    assert result.returncode == 0, result.stderr[-3000:]
    output = quiet(result)
    assert "cell 1 of 1" in output and (sweep / "report" / "cells.csv").exists()
    cell = sweep / "batch_size=1,model=gpt2,platform=cpu,variant=tiny"  # the variant, not a literal ${model.tiny}
    assert read_summary(cell)["status"] == "ok" and read_summary(cell)["config"]["warmup"] == 1


@pytest.mark.slow
def test_fidelity_sweep_runs_and_its_report_carries_each_cells_ratios(tmp_path):
    """sweeps/fidelity.yaml (the other paper targets' sweeps run in test_run, test_quant and the tests below) on
    one tiny CPU cell: its ratios are their inputs' ratios, and the report's cells.csv repeats them."""
    sweep = tmp_path / "fidelity"
    result = run_cli("--config-dir", "sweeps", "--config-name", "fidelity", "-m", "model=gpt2", "batch_size=1",
                     "precision=fp32", *TINY, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(quiet(result)).startswith(f"1 cell ok: {sweep}")
    (cell,) = [p.parent for p in sweep.rglob("summary.json")]
    summary = read_summary(cell)
    assert summary["status"] == "ok" and summary["platform"] == "cpu"
    check_ratios_against_their_inputs(summary)
    report = run_cli(str(sweep), module="ngbench.report", timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    row = pd.read_csv(sweep / "report" / "cells.csv").iloc[0]
    for ratio in ("reconstructed_over_clean", "profiled_over_clean"):
        assert row[ratio] == pytest.approx(summary["reconciliation"][ratio], rel=1e-9)


@pytest.mark.slow
def test_flows_sweep_runs_torch_and_ort_cells(tmp_path):
    sweep = tmp_path / "flows"
    result = run_cli("--config-dir", "sweeps", "--config-name", "flows", "-m", "model=gpt2", "batch_size=1",
                     *TINY, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(quiet(result)) == f"2 cells ok: {sweep}  (report: python -m ngbench.report {sweep})"
    summaries = {s["flow"]: s for s in map(read_summary, sorted(p.parent for p in sweep.rglob("summary.json")))}
    assert set(summaries) == {"torch", "ort"}
    assert {s["config"]["model"]["seq_len"] for s in summaries.values()} == {256}  # the seed's gpt2 prompt


@pytest.mark.slow
def test_flows_sweep_exports_once_for_every_batch_size(tmp_path):
    """make fig7's ONNX Runtime cells (sweeps/paper/flow/ort.yaml: flow.dynamic_batch, as the seed's optimum
    export): the batch-2 cell runs the export the batch-1 cell made, from the one cache entry."""
    sweep, cache = tmp_path / "flows", tmp_path / "onnx_cache"
    result = run_cli("--config-dir", "sweeps", "--config-name", "flows", "-m", "model=gpt2", "flow=ort",
                     "batch_size=1,2", f"flow.cache_dir={cache}", *TINY, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    # named without the cache's path (conf/config.yaml: exclude_keys), which would nest the directories
    assert sorted(p.parent.name for p in sweep.rglob("summary.json")) == [
        f"batch_size={b},flow=ort,model=gpt2,platform=cpu,variant=tiny" for b in (1, 2)]
    cells = sorted((read_summary(p.parent) for p in sweep.rglob("summary.json")), key=lambda s: s["batch_size"])
    facts = [cell["flow_facts"] for cell in cells]
    assert [cell["batch_size"] for cell in cells] == [1, 2] and all(f["dynamic_batch"] for f in facts)
    assert {f["exporter"] for f in facts} == {"dynamo"}
    assert [f["export_cache_hit"] for f in facts] == [False, True] and facts[0]["onnx_path"] == facts[1]["onnx_path"]
    assert len([entry for entry in cache.iterdir() if not entry.name.startswith(".")]) == 1


@pytest.mark.slow
def test_fusion_sweep_ends_saying_which_cells_failed(tmp_path):
    """TensorRT is not installable here: its cell fails, eager and Inductor run, and the sweep says so on its
    last line and exits 1."""
    sweep = tmp_path / "fusion"
    # vit_b16's tiny variant (one layer) for the fusion models: Inductor compiles it fastest
    result = run_cli("--config-dir", "sweeps", "--config-name", "fusion", "-m", "model=vit_b16", "batch_size=1",
                     *TINY, f"hydra.sweep.dir={sweep}")
    quiet(result)  # Inductor's "No CUDA runtime is found" stays out too
    assert result.returncode == 1
    assert last_line(result.stderr) == f"1 of 3 cells failed (see {sweep})"
    assert re.search(r"^failed: batch_size=1,flow=trt,model=vit_b16,platform=cpu,variant=tiny: .*TensorRT",
                     result.stderr, re.M)
    progress = re.findall(r"cell (\d) of 3, \d+:\d\d elapsed", result.stdout)
    assert progress == ["1", "2", "3"]
    assert {read_summary(p.parent)["flow"] for p in sweep.rglob("ops.parquet")} == {"torch", "inductor"}


@pytest.mark.slow
def test_multigpu_sweep_spreads_mixtral_over_the_listed_devices(tmp_path):
    sweep = tmp_path / "multigpu"
    result = run_cli("--config-dir", "sweeps", "--config-name", "multigpu", "-m", "platform.devices=[cpu,cpu]",
                     "batch_size=1", "precision=fp32", *TINY, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert last_line(quiet(result)).startswith(f"1 cell ok: {sweep}")
    cell = sweep / "batch_size=1,platform.devices=[cpu,cpu],platform=cpu,precision=fp32,variant=tiny"
    ops = pd.read_parquet(cell / "ops.parquet")
    assert ops["variant"].unique().tolist() == ["tiny"] and ops["op_group"].eq("GEMM").any()
    summary = read_summary(cell)
    assert summary["model"] == "mixtral" and summary["config"]["model"]["seq_len"] == 2048
    assert len(summary["model_facts"]["placement"]) > 1  # module -> device: the spread path ran


@pytest.mark.slow
def test_resume_continues_an_ad_hoc_sweep(tmp_path):
    """The two commands in sweeps/README.md, as written, from a fresh directory: the second continues the
    sweep of the first instead of starting a new timestamped one."""
    commands = re.findall(r"^  python -m ngbench (-m .*)$", (SWEEPS / "README.md").read_text(), re.M)
    assert len(commands) == 2 and commands[1] == commands[0] + " resume=true"
    if (ROOT / "outputs" / "calibration").is_dir():  # this host's profiler cost, measured already: not again
        shutil.copytree(ROOT / "outputs" / "calibration", tmp_path / "outputs" / "calibration")
    first = run_cli(*shlex.split(commands[0]), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    sweeps = list((tmp_path / "outputs" / "sweeps").iterdir())
    assert len(sweeps) == 1 and last_line(quiet(first)).startswith(f"2 cells ok: outputs/sweeps/{sweeps[0].name}")
    run_ids = {p.parent.name: read_summary(p.parent)["run_id"] for p in sweeps[0].rglob("summary.json")}
    assert set(run_ids) == {"model=gpt2,platform=cpu,variant=tiny", "model=vit_b16,platform=cpu,variant=tiny"}

    second = run_cli(*shlex.split(commands[1]), cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert list((tmp_path / "outputs" / "sweeps").iterdir()) == sweeps  # no new timestamped directory
    assert second.stdout.count("already holds an ok run; skipped") == 2
    assert {p.parent.name: read_summary(p.parent)["run_id"] for p in sweeps[0].rglob("summary.json")} == run_ids
    assert last_line(second.stdout).startswith(f"2 cells ok: outputs/sweeps/{sweeps[0].name}")


@pytest.mark.slow
def test_failed_cells_are_counted_when_cells_run_in_other_processes(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("-m", "hydra/launcher=submitit_local", "model=gpt2", "batch_size=0,-1", *TINY,
                     f"hydra.sweep.dir={sweep}")
    assert result.returncode == 1
    assert last_line(result.stderr) == f"2 of 2 cells failed (see {sweep})"
    assert "batch_size=-1 is not valid" in result.stderr


def test_a_sweep_whose_cells_cannot_be_checked_exits_1(tmp_path, capsys):
    """Hydra turns an exception raised in a callback into a warning and exits 0: on the H100 every cell of a
    sweep failed on a missing module, the check of the cells failed on it again, and the sweep exited 0. Here a
    cell's summary.json is JSON but not an object, which the check cannot read."""
    from ngbench.callbacks import SWEEP_FILE, RunReport

    sweep = tmp_path / "sweep"
    (sweep / "cell").mkdir(parents=True)
    (sweep / SWEEP_FILE).write_text("hydra: {}\n")
    (sweep / "cell" / "summary.json").write_text("[1, 2]")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    with pytest.raises(SystemExit) as ended:
        RunReport().on_multirun_end(config)
    assert ended.value.code == 1
    said = capsys.readouterr().err.strip().splitlines()
    assert said[-1] == f"could not check the sweep's cells: AttributeError: 'list' object has no attribute 'get' (see {sweep})"
