"""Wikitext through Hugging Face `datasets`: a local file or directory (parquet, text, json, arrow, csv)
loaded with data_files, or the hub dataset by name when asked for. Lines are the non-empty, non-heading ones."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ngbench.errors import UserError, first_line, require

BUILDERS = {".parquet": "parquet", ".txt": "text", ".raw": "text", ".tokens": "text", ".json": "json",
            ".jsonl": "json", ".arrow": "arrow", ".csv": "csv"}


def local_files(root: Path, split: str) -> list[Path]:
    """The data files of `split` in a local copy: the file itself, or files named after the split
    (e.g. wikitext-2-raw-v1/test-00000-of-00001.parquet, wiki.test.raw), searched recursively."""
    if root.is_file():
        return [root]
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in BUILDERS
                   and split in p.name)
    if not files:
        raise UserError(f"no data file for split '{split}' under {root} "
                        f"(expected e.g. {root}/{split}-00000-of-00001.parquet or wiki.{split}.raw)")
    return files


def load_split(ds_cfg: DictConfig):
    """The split as a datasets.Dataset; UserError naming the file when it cannot be read."""
    datasets = require("datasets", "datasets", "the wikitext loader")
    split = str(ds_cfg.get("split") or "test")
    root = str(ds_cfg.root)
    path = Path(root).expanduser()
    try:
        if path.exists():
            files = local_files(path, split)
            empty = [f for f in files if f.stat().st_size == 0]
            if empty:
                raise UserError(f"{empty[0]} is empty (0 bytes): dataset '{ds_cfg.name}' split '{split}' needs "
                                f"text; point dataset.root at the real file or use dataset.source=sample")
            builder = BUILDERS.get(files[0].suffix.lower(), "text")
            datasets.disable_progress_bars()  # its "Generating split" bar is noise in a benchmark's log
            return datasets.load_dataset(builder, data_files={split: [str(f) for f in files]}, split=split), files
        if "/" in root or root.startswith("."):
            raise UserError(f"dataset '{ds_cfg.name}': root {root} does not exist")
        return datasets.load_dataset(root, ds_cfg.get("hf_name"), split=split), [root]
    except UserError:
        raise
    except Exception as exc:  # datasets wraps parser errors in many types; all mean "this data is bad"
        cause = first_line(exc, root_cause=True)
        raise UserError(f"cannot load {root} (split '{split}') with datasets: {cause}") from exc


def usable(line: str) -> bool:
    """Wikitext keeps paragraphs; empty lines and ' = Heading = ' lines are skipped."""
    text = line.strip()
    return bool(text) and not (text.startswith("=") and text.endswith("="))


def wikitext_lines(ds_cfg: DictConfig) -> list[str]:
    """All usable lines of the configured split; UserError naming the file when there are none."""
    table, files = load_split(ds_cfg)
    column = str(ds_cfg.get("text_column") or "text")
    if column not in table.column_names:
        raise UserError(f"{files[0]}: no '{column}' column (columns: {', '.join(table.column_names)})")
    lines = [line for line in table[column] if isinstance(line, str) and usable(line)]
    if not lines:
        raise UserError(f"{files[0]}: split '{ds_cfg.get('split')}' has no usable text lines")
    return lines
