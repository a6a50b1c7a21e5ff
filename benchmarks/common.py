"""Shared by the benchmark scripts: run ngbench cells in one process and tabulate their summaries."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_cell(overrides: list[str], run_dir: Path) -> dict:
    """Compose the config with `overrides`, run it into run_dir; a failure becomes a failed summary."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ngbench.run import failure_summary, run

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    began = time.perf_counter()
    try:
        summary = run(cfg, run_dir)
    except Exception as error:  # one bad cell must not end the benchmark
        summary = failure_summary(cfg, error)
        print(f"FAILED {overrides}: {summary['error']}", flush=True)
    summary["cell_seconds"] = time.perf_counter() - began
    _free_memory()
    return summary


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def top_non_gemm(summary: dict, view: str = "wall") -> tuple[str, float]:
    groups = {g: v for g, v in summary.get("groups", {}).items() if g not in ("GEMM", "Idle")}
    if not groups:
        return "-", 0.0
    best = max(groups, key=lambda g: groups[g][f"{view}_pct"])
    return best, groups[best][f"{view}_pct"]


def markdown(rows: list[dict], columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "|".join("---" for _ in columns) + "|\n"
    return head + "".join("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |\n" for r in rows)


def environment_line(summaries: list[dict]) -> str:
    env = next((s.get("environment") for s in summaries if s.get("environment")), {}) or {}
    libs = env.get("libraries", {})
    return (f"GPU: {env.get('gpu', '-')} | driver {env.get('driver', '-')} | CPU: {env.get('cpu', '-')} | "
            f"torch {libs.get('torch', '-')} | transformers {libs.get('transformers', '-')}")


def save(path: Path, text: str, summaries: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with open(path.with_suffix(".json"), "w") as handle:
        json.dump([{k: v for k, v in s.items() if k not in ("config", "traceback")} for s in summaries],
                  handle, indent=1, default=str)


def cell_overrides(args, model: str, precision: str, batch: str, warmup: int, *extra: str) -> list[str]:
    """The Hydra overrides of one benchmark cell (args: --platform, --iters, --profile-iters)."""
    return [f"model={model}", f"precision={precision}", f"batch_size={batch}", f"platform={args.platform}",
            f"iters={args.iters}", f"profile_iters={args.profile_iters}", f"warmup={warmup}", *extra]


def publish(title: str, table: str, summaries: list[dict], out: Path | None) -> None:
    """Print the benchmark's markdown (title, environment, table) and save it with the summaries."""
    text = f"# {title}\n\n{environment_line(summaries)}\n\n{table}"
    print(text)
    if out:
        save(out, text, summaries)


def cell_parser(doc: str, models: str, precisions: str, batch_sizes: str, iters: int, profile_iters: int):
    """The arguments every cell benchmark takes (models, precisions, batch sizes, platform, counts, output)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--models", default=models)
    parser.add_argument("--precisions", default=precisions)
    parser.add_argument("--batch-sizes", default=batch_sizes)
    parser.add_argument("--platform", default="cuda")
    parser.add_argument("--iters", type=int, default=iters)
    parser.add_argument("--profile-iters", type=int, default=profile_iters)
    parser.add_argument("--deadline-s", type=float, default=1e9, help="start no new cell after this")
    parser.add_argument("--out", type=Path, default=None)
    return parser
