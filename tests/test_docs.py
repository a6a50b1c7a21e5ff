"""Every command in README.md and docs/*.md runs through the real CLI, as written, made to fit this CPU-only
machine. The rules (docs/architecture.md, "Commands in the docs are tests"):
- commands are the lines of fenced blocks whose info string is `bash`; `#` starts a comment, a trailing `\\`
  continues the line, `&&` chains commands;
- a command that needs an NVIDIA GPU ends with the comment `# [gpu] ...`: it is not run, and GPU_ONLY
  below must list it (so it is never skipped silently); pip and pytest commands set the machine up and are
  not run either (SETUP), nor the make targets that run the tests (TEST_TARGETS);
- `python -m ngbench` runs on platform=cpu, with tiny variants of the models of conf/model and short
  timing (TINY_RUN, unless the command sets those keys itself), in a fresh working directory: outputs/
  lands there, paths of the checkout (sweeps, docs/examples) are made absolute, and a `<placeholder>` in a
  path stands for what the block's earlier commands wrote there;
- every command must exit 0 (or N, when its comment says `exits N`), every summary.json it writes must be ok, and a model `python -m ngbench`
  ran must show GEMM time and no unmapped operator."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GPU_TAG = "[gpu]"
SETUP = ("pip", "pytest")   # programs that install things or run the test suite itself
TEST_TARGETS = ("test", "test-fast", "test-gpu")   # make targets that run the test suite itself
TINY_RUN = {"iters": "1", "profile_iters": "1", "blocks": "1", "min_time_s": "0", "warmup": "1",
            "profile_warmup": "1"}
# Commands marked [gpu] in the docs; the test fails when the docs and this list disagree.
GPU_ONLY = {
    "make fig6": "the whole zoo sweep: 16 models x 4 batch sizes, CPU-only and CPU+GPU",
    "python -m ngbench --config-dir sweeps --config-name fusion -m": "eager vs Inductor vs TensorRT on the GPU",
    "python -m ngbench --config-dir sweeps --config-name flows -m": "torch vs ONNX Runtime (CUDA) on the GPU",
    "python -m ngbench.report outputs/sweeps/fusion": "reads the fusion sweep",
    "trtexec --onnx=model.onnx --fp16 --profilingVerbosity=detailed --exportLayerInfo=layers.json "
    "--exportProfile=profile.json --exportTimes=times.json --separateProfileRun": "TensorRT's trtexec",
    "python -m ngbench.trace.trt_profile --profile profile.json --layers layers.json --times times.json "
    "--onnx model.onnx --out ops.parquet": "reads trtexec's output (its parsers run on tests/fixtures/trt)",
}


def doc_blocks(path: Path) -> list[tuple[int, list[tuple[str, bool]]]]:
    """(first line, [(command, needs a GPU, expected exit code)]) of each `bash` block of a Markdown file."""
    blocks, lines, start, inside = [], [], 0, False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^\s*```(.*)$", line)
        if fence and not inside:
            inside, is_bash, start, lines = True, fence.group(1).strip().split()[:1] == ["bash"], number, []
        elif fence:
            inside = False
            if is_bash:
                blocks.append((start, commands_of(lines)))
        elif inside:
            lines.append(line)
    return blocks


def commands_of(lines: list[str]) -> list[tuple[str, bool, int]]:
    commands, pending = [], ""
    for line in lines:
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        code, comment = _split_comment(pending)
        pending = ""
        exits = re.search(r"\bexits? (\d+)\b", comment)
        for part in code.split("&&") if code.strip() else []:
            commands.append((" ".join(part.split()), comment.strip().startswith(GPU_TAG),
                             int(exits.group(1)) if exits else 0))
    return commands


def _split_comment(line: str) -> tuple[str, str]:
    """The code and the comment of a shell line (a `#` inside quotes is no comment)."""
    quote = None
    for i, char in enumerate(line):
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1:]
    return line, ""


BLOCKS = [(path, start, commands) for path in DOCS for start, commands in doc_blocks(path) if commands]


def test_the_docs_hold_commands_and_gpu_only_lists_exactly_the_marked_ones():
    marked = {command for _, _, commands in BLOCKS for command, gpu, _ in commands if gpu}
    assert len(BLOCKS) >= 4
    assert marked == set(GPU_ONLY), f"marked in the docs but not listed: {marked - set(GPU_ONLY)}; listed but " \
                                    f"not marked: {set(GPU_ONLY) - marked}"


@pytest.mark.parametrize("path,start,commands", BLOCKS, ids=[f"{p.name}:{s}" for p, s, _ in BLOCKS])
@pytest.mark.slow
def test_documented_commands_run(path, start, commands, tmp_path):
    for command, gpu, expected in commands:
        argv, env = split_env(command)
        if gpu or Path(argv[0]).name in SETUP or argv[1:3] in (["-m", "pip"], ["-m", "pytest"]) \
                or (argv[0] == "make" and argv[1:] and argv[1] in TEST_TARGETS):
            continue
        before = set(tmp_path.rglob("summary.json"))
        result = run(command, tmp_path)
        assert result.returncode == expected, f"{path.name}:{start}: {command}\n{result.stderr[-3000:]}"
        for summary_path in set(tmp_path.rglob("summary.json")) - before:
            summary = json.loads(summary_path.read_text())
            assert summary["status"] == "ok", (command, summary_path, summary.get("error"))
            if is_benchmark_run(argv):   # a model it ran: real groups, not one opaque fused op
                assert not summary["unmapped_ops"], (command, summary_path, summary["unmapped_ops"])
                assert summary["gemm_pct"] > 0, (command, summary_path)


def is_benchmark_run(argv: list[str]) -> bool:
    return argv[1:3] == ["-m", "ngbench"] or argv[0] == "ngbench"


def split_env(command: str) -> tuple[list[str], dict[str, str]]:
    """The argv of a command and its leading VAR=value assignments (a `<placeholder>` stays one token)."""
    tokens = shlex.split(re.sub(r"<[^<>]*>", lambda match: match.group(0).replace(" ", "_"), command))
    env = {}
    while tokens and re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
        key, _, value = tokens.pop(0).partition("=")
        env[key] = value
    return tokens, env


def run(command: str, workdir: Path) -> subprocess.CompletedProcess:
    """Run one documented command the way the module docstring says."""
    argv, assignments = split_env(command)
    argv = [token if before == "-m" else absolute(token, workdir) for before, token in zip(["", *argv], argv)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    paths = [absolute(value, workdir) for value in assignments.pop("PYTHONPATH", "").split(":") if value]
    env.update(assignments, PYTHONPATH=os.pathsep.join([*paths, str(ROOT)]))   # this checkout's ngbench
    cwd = workdir
    if argv[0] == "make":
        cwd = ROOT
    elif argv[0] == "python":
        argv[0] = sys.executable
    if is_benchmark_run(argv):
        argv = on_this_machine(argv)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def absolute(token: str, workdir: Path) -> str:
    """A path of the checkout made absolute (also after `key=` or `file://`); a path with a `<placeholder>`
    replaced by the newest match in the working directory (what an earlier command wrote)."""
    if "<" in token and ">" in token:
        matches = sorted(glob.glob(str(workdir / re.sub(r"<[^>]*>", "*", token))), key=os.path.getmtime)
        assert matches, f"nothing in {workdir} matches {token}"
        return matches[-1]
    prefix, path = re.match(r"^(.*file://|[^=]*=)?(.*)$", token).groups()
    if path and not path.startswith(("outputs", "/")) and (ROOT / path.rstrip("]")).exists():
        return f"{prefix or ''}{ROOT / path}"
    return token


def on_this_machine(argv: list[str]) -> list[str]:
    """platform=cpu, tiny variants of conf/model's models, short timing; the command's own keys win."""
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    keys = {a.lstrip("+~").split("=", 1)[0]: a.split("=", 1)[1] for a in overrides}
    argv = [a if not a.startswith("platform=") else "platform=cpu" for a in argv]
    extra = [] if "platform" in keys else ["platform=cpu"]
    models = keys.get("model", "" if "--config-name" in argv else "gpt2").split(",")
    known = {p.stem for p in (ROOT / "conf" / "model").glob("*.yaml")}
    if models != [""] and set(models) <= known and "model.overrides" not in keys:
        extra.append("model.overrides=${model.tiny}")
    extra += [f"{key}={value}" for key, value in TINY_RUN.items() if key not in keys]
    extra.append(f"calibration.dir={ROOT / 'outputs' / 'calibration'}")   # the suite's shared cache
    return argv + extra
