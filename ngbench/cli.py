"""Command-line checks that run before Hydra composes anything, so a typo gets one clear line."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("model", "dataset", "flow", "platform", "quant")
_OVERRIDE = re.compile(r"^(\+{0,2}|~)(model|dataset|flow|platform|quant)=(.*)$")


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit non-zero."""
    print(f"ngbench: error: {message}", file=sys.stderr)
    sys.exit(code)


def _config_dirs(argv: list[str]) -> list[Path]:
    dirs = [CONF_DIR]
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(Path(argv[i + 1]))
        elif arg.startswith("--config-dir="):
            dirs.append(Path(arg.split("=", 1)[1]))
    return dirs


def options(group: str, dirs: list[Path] | None = None) -> list[str]:
    """The option names of a config group (file stems), across the config directories."""
    names = set()
    for base in dirs or [CONF_DIR]:
        names.update(p.stem for p in (base / group).glob("*.yaml"))
    return sorted(names)


def check_group_choices(argv: list[str]) -> None:
    """Reject unknown group options (model=foo) and `quant=` without `+`, listing what is valid."""
    dirs = _config_dirs(argv)
    for arg in argv:
        match = _OVERRIDE.match(arg)
        if not match:
            continue
        prefix, group, value = match.groups()
        if group == "quant" and prefix == "":
            fail(f"quant is an optional group: add it with +quant={value or 'int8'} (valid: {', '.join(options('quant', dirs))})")
        if prefix == "~" or not value or re.search(r"[(){}\[\]$*]", value):
            continue  # deletions, sweep functions and interpolations are Hydra's to judge
        valid = options(group, dirs)
        for choice in value.split(","):
            if choice not in valid:
                fail(f"unknown {group} '{choice}'; valid: {', '.join(valid)}")


def remove_empty_run_dir(run_dir: str) -> None:
    """Remove a run directory that holds nothing but Hydra's own bookkeeping (a run that never started)."""
    path = Path(run_dir)
    if not path.is_dir():
        return
    leftovers = [p for p in path.iterdir() if p.name not in (".hydra",) and not p.name.endswith(".log")]
    if not leftovers:
        shutil.rmtree(path, ignore_errors=True)
