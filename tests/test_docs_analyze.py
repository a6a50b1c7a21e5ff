"""Every command in docs/analyze.md runs as written (from the checkout's root) and succeeds."""

import shlex
import shutil

import pytest
from conftest import ROOT, run_cli

DOC = ROOT / "docs" / "analyze.md"


def documented_commands() -> list[str]:
    commands, inside = [], False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside and line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    return commands


@pytest.mark.slow
def test_every_documented_command_runs():
    commands = documented_commands()
    assert len(commands) == 6
    made = [ROOT / "outputs" / "analyze" / name for name in ("training_step", "step3", "two", "resnet50_tiny")]
    made.append(ROOT / "outputs" / "resnet50_tiny.json")
    try:
        for command in commands:
            words = shlex.split(command)
            assert words[:2] == ["python", "-m"] or words[:2] == ["python", "benchmarks/record_resnet50_trace.py"]
            module = words[2] if words[1] == "-m" else None
            args = words[3:] if module else words[1:]
            result = run_cli(*args, module=module) if module else _script(args)
            assert result.returncode == 0, (command, result.stderr[-2000:])
        assert (ROOT / "outputs" / "analyze" / "training_step" / "report" / "fig6.png").exists()
        assert (ROOT / "outputs" / "analyze" / "two" / "cuda_graph" / "ops.parquet").exists()
    finally:
        for path in made:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _script(args: list[str]):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
