"""The command line around Hydra: store the config schemas, and turn Hydra's own errors (an unknown option or
key, a bad value or override) into ngbench's one line with exit code 2. Hydra finds and parses everything
itself, so `hydra.searchpath`, `--config-dir`, `pkg://` search paths and sweeps work as in any Hydra app."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import pkgutil
import re
import shutil
import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit non-zero."""
    print(f"ngbench: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)


def flow_schemas() -> dict[str, type]:
    """Each flow package's config dataclass (the one FlowConfig that ngbench/flows/<name>/config.py defines)."""
    import ngbench.flows
    from ngbench.flows.config import FlowConfig

    schemas = {}
    for info in pkgutil.iter_modules(ngbench.flows.__path__):
        name = f"ngbench.flows.{info.name}.config"
        if not info.ispkg or importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        own = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, FlowConfig) and c.__module__ == name]
        if len(own) != 1:
            raise RuntimeError(f"{name} must define exactly one FlowConfig subclass, not {len(own)}")
        schemas[info.name] = own[0]
    return schemas


def register_schemas() -> None:
    """Store every schema in Hydra's ConfigStore under a root-level name a YAML can extend (`schema_run`,
    `schema_dataset_<format>`, `schema_model_<family>`, `schema_flow_<name>`). Idempotent."""
    from hydra.core.config_store import ConfigStore

    from ngbench.config import DATASET_SCHEMAS, RUN_SCHEMA, SCHEMA_PREFIX, RunConfig
    from ngbench.models.config import MODEL_SCHEMAS

    store = ConfigStore.instance()
    store.store(name=RUN_SCHEMA, node=RunConfig)
    for group, schemas in (("dataset", DATASET_SCHEMAS), ("model", MODEL_SCHEMAS), ("flow", flow_schemas())):
        for name, node in schemas.items():
            store.store(name=f"{SCHEMA_PREFIX}{group}_{name}", node=node)


def compose_config(*overrides: str, config_name: str = "config", config_dir: str | Path | None = None,
                   return_hydra_config: bool = False):
    """The run config as the CLI composes it, for code that runs cells itself (tests, benchmark scripts):
    the schemas stored, Hydra initialised on conf/ (or `config_dir`), its global state cleared after."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir or CONF_DIR), version_base="1.3"):
            return compose(config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)
    finally:
        GlobalHydra.instance().clear()


def config_error_message(error: BaseException) -> str | None:
    """The one line for an error of Hydra's or OmegaConf's while composing (None for any other error)."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    from ngbench.config import field_names, unknown_key_message

    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else error
    if isinstance(error, MissingConfigException):
        if error.options is None or not error.missing_cfg_file:
            return _one_line(str(error).split("\n")[0])   # a primary config: the search path follows
        group, _, option = error.missing_cfg_file.rpartition("/")
        return f"unknown {group or 'config'} '{option}'; valid: {', '.join(sorted(error.options))}"
    if isinstance(error, OverrideParseException):
        return f"cannot parse the override '{error.override}': {_one_line(error.message)}"
    if (isinstance(cause, ConfigKeyError | ConfigAttributeError) and cause.full_key
            and dataclasses.is_dataclass(cause.object_type)):
        return unknown_key_message(cause.full_key, field_names(cause.object_type))
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        value = getattr(cause, "value", None)
        shown = f"={value}" if value is not None and not isinstance(value, (dict, list)) else ""
        return f"{cause.full_key}{shown} is not valid: {_one_line(getattr(cause, 'msg', None) or str(cause))}"
    if isinstance(error, (HydraException, OmegaConfBaseException)):
        return _one_line(str(error))
    if isinstance(error, OSError) and not isinstance(error, BrokenPipeError | ConnectionError):
        return _one_line(str(error))   # before any run started: a directory Hydra needs (run dir, config dir)
    return None


def _one_line(text: str) -> str:
    """Hydra's message on one line, without OmegaConf's full_key/object_type trailer."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    lines = [line for line in lines if not re.match(r"(full_key|object_type|reference_type)[:=]", line)]
    joined = lines[0] if lines else ""
    for line in lines[1:]:
        joined += (" " if joined[-1] in ".:;" else "; ") + line
    return joined


class OneLineConfigErrors:
    """Around Hydra's entry point: a Hydra or OmegaConf error raised before the run starts (`task_started`)
    becomes one line and exit code 2; every other error keeps its traceback. HYDRA_FULL_ERROR=1 (Hydra's own
    switch) keeps Hydra's traceback for config errors too."""

    def __init__(self) -> None:
        self.task_started = False

    def __enter__(self) -> OneLineConfigErrors:
        self.user_wants_traces = os.environ.get("HYDRA_FULL_ERROR") == "1"
        os.environ["HYDRA_FULL_ERROR"] = "1"   # Hydra then raises its errors instead of printing them
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or not isinstance(error, Exception) or self.task_started or self.user_wants_traces:
            return False
        message = config_error_message(error)
        if message is None:
            return False
        fail(message)
        return True


def remove_empty_run_dir(run_dir: str) -> None:
    """Remove a run directory that holds nothing but Hydra's own bookkeeping (a run that never started)."""
    path = Path(run_dir)
    if not path.is_dir():
        return
    leftovers = [p for p in path.iterdir() if p.name not in (".hydra",) and not p.name.endswith(".log")]
    if not leftovers:
        shutil.rmtree(path, ignore_errors=True)

