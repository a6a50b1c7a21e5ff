"""Shared helpers: run the real CLI in a subprocess, read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.overrides=${model.tiny}", "iters=2", "profile_iters=2", "profile_warmup=1", "warmup=1", "platform=cpu"]


def run_cli(*args: str, module: str = "ngbench", timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def read_summary(run_dir: Path) -> dict:
    with open(run_dir / "summary.json") as handle:
        return json.load(handle)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
