"""Entry point: `python -m ngbench [overrides]` or the `ngbench` console script (Hydra)."""

from __future__ import annotations

import logging
import os

import hydra
from omegaconf import DictConfig

import ngbench.callbacks  # noqa: F401  (registers the resolvers that name run and sweep directories)
from ngbench.cli import CONF_DIR, OneLineConfigErrors, fail, register_schemas, remove_empty_run_dir

log = logging.getLogger("ngbench")
# Kineto prints from C++ to fd 2 at or above this level, read when the profiler first starts: 5 (its USDT
# level) is the `profiler_start/stop` pair of every profiled block, 4 errors such as `gpuGetDeviceCount
# failed` on a CPU-only host. 6 silences both; KINETO_LOG_LEVEL=0 in the environment shows everything.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")
config_errors = OneLineConfigErrors()


# An absolute path: the same conf/ whether started as `python -m ngbench` or as the `ngbench` script.
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ngbench.errors import UserError
    from ngbench.output import write_json
    from ngbench.run import failure_summary, run

    config_errors.task_started = True
    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        run(cfg, run_dir)
    except UserError as error:
        if in_sweep:  # the cell is recorded as failed and the sweep goes on
            write_json(f"{run_dir}/summary.json", failure_summary(cfg, error))
            log.error("cell failed: %s", error)
            return
        remove_empty_run_dir(run_dir)
        fail(str(error))
    except Exception as error:
        write_json(f"{run_dir}/summary.json", failure_summary(cfg, error))
        if in_sweep:
            log.exception("cell failed: %s", error)
            return
        raise


def main() -> None:
    register_schemas()
    with config_errors:
        _hydra_main()


if __name__ == "__main__":
    main()
