"""Shared helpers: compose the config the way the CLI does, run the real CLI in a subprocess, read what it
wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.overrides=${model.tiny}", "iters=2", "profile_iters=2", "blocks=2", "min_time_s=0", "profile_warmup=1",
        "warmup=1", "platform=cpu"]


def pytest_configure(config):
    """Under pytest-xdist, torch in each worker, and in every command a test runs, gets the cores divided among
    the workers (OMP_NUM_THREADS, unless set). With torch's default of one thread per core, the workers' OpenMP
    threads spin against each other: on 2 cores, two profiler calibrations at once took 206 s each, against
    19 s each on one thread apiece. Tests that are about threads run their command without it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
        if "torch" in sys.modules:   # imported already (by a plugin): OpenMP read the variable before it was set
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config, items):
    """The GPU tier (`-m gpu`) needs CUDA: on a machine without it, each such test is skipped, saying why."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here); "
                                   "run it on the GPU machine: benchmarks/gpu_tests.sh")
    for item in gpu_tests:
        item.add_marker(skip)


@contextmanager
def hydra_context(config_dir: Path | None = None):
    """Hydra initialised on conf/ (or `config_dir`) with the schemas stored as the CLI stores them; its
    global state cleared around it."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ngbench.cli import CONF_DIR, register_schemas

    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir or CONF_DIR), version_base="1.3"):
            yield GlobalHydra.instance()
    finally:
        GlobalHydra.instance().clear()


def compose(*overrides: str, config_name: str = "config", config_dir: Path | None = None):
    """The composed run config, as the CLI composes it."""
    from ngbench.cli import compose_config

    return compose_config(*overrides, config_name=config_name, config_dir=config_dir)


def group_options(group: str) -> list[str]:
    """The options of a config group, as Hydra lists them."""
    with hydra_context() as hydra:
        return sorted(hydra.config_loader().get_group_options(group))


def run_cli(*args: str, module: str = "ngbench", timeout: int = 600, env: dict | None = None,
            cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`python -m <module> args` in `cwd`, importing this checkout's ngbench from any `cwd`; `env` adds
    variables (a value of None removes one)."""
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore",
                "PYTHONPATH": python_path, **(env or {})}
    full_env = {key: value for key, value in full_env.items() if value is not None}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def read_summary(run_dir: Path) -> dict:
    with open(run_dir / "summary.json") as handle:
        return json.load(handle)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


def profile_flow(flow, iters: int, blocks: int = 1):
    """A prepared flow's profiler over `blocks` blocks of `iters` marked inferences, attributed with a free
    profiler (zero costs), as ngbench.run does it."""
    from ngbench.trace.reconstruct import Costs

    with flow.profiler() as profiler:
        for _ in range(blocks):
            profiler.block(iters)
        return profiler.result(Costs({}))


def check_ratios_against_their_inputs(summary: dict) -> None:
    """reconciliation's ratios from the summary's own iteration rows and per-block clean medians: each block's
    rebuilt and profiled medians over its kept iterations, divided by that block's clean median; the run's
    ratios are the medians over blocks. Each block carries the host probe taken before it."""
    import numpy as np
    import pandas as pd

    recon = summary["reconciliation"]
    kept = pd.DataFrame(summary["iterations"]).query("not stalled")
    assert len(recon["by_block"]) == kept["block"].nunique() >= 1
    clean_ms = [entry["clean_ms"] for entry in recon["by_block"]]     # the median of all clean inferences lies
    assert min(clean_ms) <= summary["clean"]["median_ms"] <= max(clean_ms)   # between the blocks' medians
    for entry in recon["by_block"]:
        mine = kept[kept["block"] == entry["block"]]
        assert entry["rebuilt_ms"] == pytest.approx(mine["rebuilt_us"].median() / 1000, rel=1e-12)
        assert entry["profiled_ms"] == pytest.approx(mine["profiled_us"].median() / 1000, rel=1e-12)
        assert entry["reconstructed_over_clean"] == pytest.approx(entry["rebuilt_ms"] / entry["clean_ms"], rel=1e-12)
        assert entry["profiled_over_clean"] == pytest.approx(entry["profiled_ms"] / entry["clean_ms"], rel=1e-12)
        # the host's speed, probed before the profiled block (median and mean µs a call over the probe's loops)
        assert 0.0 < entry["host_probe_us"] < 10_000.0 and 0.0 < entry["host_probe_mean_us"] < 10_000.0
    for ratio in ("reconstructed_over_clean", "profiled_over_clean"):
        assert recon[ratio] == pytest.approx(float(np.median([b[ratio] for b in recon["by_block"]])), rel=1e-12)
    assert summary["profiled_ms"] == pytest.approx(kept["profiled_us"].median() / 1000, rel=1e-12)
    assert summary["reconstructed_ms"] == pytest.approx(kept["rebuilt_us"].median() / 1000, rel=1e-12)
