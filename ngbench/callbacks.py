"""What a run or a sweep says while it runs and when it ends (a Hydra callback), and the resolvers that
name run and sweep directories.

- a sweep logs `cell k of N, elapsed, ETA` as each cell starts;
- a run's last line names its output directory; a sweep's does too, and a sweep with failed cells ends
  with `N of M cells failed (see DIR)` and exit code 1;
- `${ngbench.variant:${model}}` names the model variant (full, tiny, custom-<hash>) in directory names;
- `${ngbench.sweep_dir:DEFAULT}` is DEFAULT, unless `resume=true` and an earlier sweep under the same parent
  ran the same command (same config and overrides, `resume` aside): then that sweep's directory.

Everything is read from files (multirun.yaml, each cell's .hydra/ and summary.json), so it works the same
when a launcher runs the cells in other processes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ngbench.record import SUMMARY_FILE, CellKey

log = logging.getLogger("ngbench")
SWEEP_FILE = "multirun.yaml"          # written by Hydra's sweeper into the sweep directory before any cell
CELL_MARKER = ".hydra/overrides.yaml"  # written by Hydra into every cell directory each time the cell runs


def variant_name(model_cfg: DictConfig) -> str:
    """full | tiny | custom-<6 hex of the overrides>: which variant of the model a run builds."""
    variant = CellKey.variant_of(model_cfg)
    if variant != "custom":
        return variant
    overrides = OmegaConf.to_container(model_cfg.overrides, resolve=True)
    return "custom-" + hashlib.sha1(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:6]


def cell_dir_name(override_dirname: str, model_cfg: DictConfig) -> str:
    """A sweep cell's directory: its overrides (model.overrides left out) and the model variant."""
    return ",".join(part for part in (override_dirname, f"variant={variant_name(model_cfg)}") if part)


def task_overrides(hydra_cfg: DictConfig) -> list[str]:
    """The command-line overrides as typed (`model.overrides=${model.tiny}` stays a string)."""
    return [str(o) for o in OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False) or []]


def _command_key(hydra_cfg: DictConfig) -> tuple:
    """What makes two sweeps the same command: the config name and the overrides, `resume` aside."""
    kept = [o for o in task_overrides(hydra_cfg) if o.lstrip("+~").split("=", 1)[0] != "resume"]
    return hydra_cfg.job.get("config_name"), sorted(kept)


def sweep_dir(default: str, *, _root_: DictConfig) -> str:
    """`default`, or with resume=true the newest earlier sweep beside it that ran the same command.

    Resolved in the sweep's own process and again in each cell's: there `hydra.overrides.task` holds the
    cell's overrides, which match the sweep whose multirun.yaml expands to them (the current one, newest)."""
    if not _root_.get("resume"):
        return default
    in_cell = not OmegaConf.is_missing(_root_.hydra.job, "num")
    name, ours = _command_key(_root_.hydra)
    earlier = sorted(Path(default).parent.glob(f"*/{SWEEP_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in earlier:
        try:
            sweep_cfg = OmegaConf.load(path)
            their_name, theirs = _command_key(sweep_cfg.hydra)
            if their_name == name and (theirs == ours or (in_cell and ours in (expanded_cells(sweep_cfg) or []))):
                return str(path.parent)
        except Exception:  # a hand-edited or foreign multirun.yaml is simply not a match
            continue
    return default


def register_resolvers() -> None:
    """The resolvers conf/config.yaml's hydra block uses (idempotent)."""
    for name, function in (("ngbench.variant", variant_name), ("ngbench.cell_dir", cell_dir_name),
                           ("ngbench.sweep_dir", sweep_dir)):
        OmegaConf.register_new_resolver(name, function, replace=True)


def expanded_cells(sweep_cfg: DictConfig) -> list[list[str]] | None:
    """The cells Hydra's basic sweeper makes of a sweep's params and command-line overrides, each as its
    sorted overrides without `resume` (None when another sweeper decides, or the overrides need the config
    loader, e.g. glob())."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not str(sweep_cfg.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = sweep_cfg.hydra.sweeper.get("params")
    params = OmegaConf.to_container(params, resolve=False) if params else {}
    lines = [f"{key}={value}" for key, value in params.items()] + task_overrides(sweep_cfg.hydra)
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
    except Exception:
        return None
    choices: dict[str, list[str]] = {}   # as BasicSweeper.split_arguments: one list per key, the last wins
    for override in overrides:
        key = override.get_key_element()
        if override.is_sweep_override() and override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
    kept = [values for key, values in choices.items() if key.lstrip("+~") != "resume"]
    return [sorted(cell) for cell in itertools.product(*kept)]


def clock(seconds: float) -> str:
    """h:mm:ss (or m:ss under an hour)."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_line(cell: int, total: int | None, elapsed_s: float, one_at_a_time: bool = True) -> str:
    """`cell k of N, 1:23 elapsed, ETA 4:56` (ETA from the mean time of the cells before this one, when
    cells run one after the other)."""
    line = f"cell {cell} of {total}" if total else f"cell {cell}"
    line += f", {clock(elapsed_s)} elapsed"
    if total and cell > 1 and one_at_a_time:
        line += f", ETA {clock(elapsed_s / (cell - 1) * (total - cell + 1))}"
    return line


def shown(path: str | Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def cells_since(sweep: Path, since: float) -> list[Path]:
    """The cell directories of a sweep that ran since `since` (epoch seconds): Hydra rewrote their .hydra/
    files, or (with hydra.output_subdir=null) the cell wrote its summary.json."""
    touched = [p for pattern in (CELL_MARKER, SUMMARY_FILE) for p in sweep.glob(f"**/{pattern}")
               if p.stat().st_mtime >= since]
    return sorted({p.parent.parent if p.name != SUMMARY_FILE else p.parent for p in touched})


def cell_failure(cell: Path) -> str | None:
    """None for a cell whose summary.json says ok, else what went wrong, in one line."""
    from ngbench.errors import UserError
    from ngbench.record import read_summary

    try:
        summary = read_summary(cell)
    except UserError as error:
        return str(error)
    if summary is None:
        return "no summary.json (the cell did not finish)"
    if summary.get("status") != "ok":
        return (str(summary.get("error") or "").strip() or "failed").splitlines()[0]
    return None


class RunReport(Callback):
    """Progress per sweep cell; the output directory on the last line; a failed sweep ends non-zero."""

    def on_run_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        output_dir = job_return.hydra_cfg.hydra.runtime.output_dir if job_return else None
        if not output_dir or not Path(output_dir).is_dir():
            return
        if job_return.status == JobStatus.FAILED:  # Hydra prints the traceback after this line
            print(f"failed: summary.json and the log are in {shown(output_dir)}", file=sys.stderr, flush=True)
        else:
            print(f"results: {shown(output_dir)}", flush=True)

    started_s = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started_s = time.time()
        log.info("sweep directory: %s", shown(config.hydra.sweep.dir))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.get().mode != RunMode.MULTIRUN:
            return
        sweep_file = Path(config.hydra.sweep.dir) / SWEEP_FILE
        if not sweep_file.exists():
            return
        cells = expanded_cells(OmegaConf.load(sweep_file))
        total = len(cells) if cells is not None else None
        elapsed_s = time.time() - sweep_file.stat().st_mtime
        one_at_a_time = str(config.hydra.launcher.get("_target_", "")).endswith("BasicLauncher")
        log.info("%s: %s", progress_line(int(config.hydra.job.num) + 1, total, elapsed_s, one_at_a_time),
                 config.hydra.job.override_dirname or "(no overrides)")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """The sweep's last lines and exit code. Hydra turns an exception raised by a callback into a warning and
        exits 0, so an error here is reported and ends the sweep with exit code 1 (on the H100 a missing module
        failed every cell and, again in the check of the cells, the sweep then exited 0)."""
        try:
            self._check_cells(config)
        except Exception as error:  # noqa: BLE001 - any error of the check is a failed sweep
            print(f"could not check the sweep's cells: {type(error).__name__}: {error} "
                  f"(see {shown(config.hydra.sweep.dir)})", file=sys.stderr, flush=True)
            raise SystemExit(1) from error

    def _check_cells(self, config: DictConfig) -> None:
        sweep = Path(config.hydra.sweep.dir)
        sweep_file = sweep / SWEEP_FILE  # its time comes from the clock that stamps the cells' files too
        cells = cells_since(sweep, sweep_file.stat().st_mtime if sweep_file.exists() else self.started_s)
        failed = [(cell, reason) for cell in cells if (reason := cell_failure(cell))]
        for cell, reason in failed[:20]:
            print(f"failed: {cell.relative_to(sweep)}: {reason}", file=sys.stderr)
        if len(failed) > 20:
            print(f"... and {len(failed) - 20} more (each cell's summary.json has its error)", file=sys.stderr)
        if not cells:
            print(f"no cell ran (see {shown(sweep)})", file=sys.stderr, flush=True)
            raise SystemExit(1)
        if failed:
            print(f"{len(failed)} of {len(cells)} cells failed (see {shown(sweep)})", file=sys.stderr, flush=True)
            raise SystemExit(1)
        cells_ok = f"{len(cells)} cell{'s' if len(cells) != 1 else ''} ok"
        print(f"{cells_ok}: {shown(sweep)}  (report: python -m ngbench.report {shown(sweep)})", flush=True)


register_resolvers()  # on import: Hydra instantiates this module's callback before it names any directory
