"""Datasets: real loaders on tiny fixtures in the real on-disk formats (ImageFolder, COCO instances JSON read
with pycocotools, wikitext through Hugging Face datasets), the offline samples, and every bad-data case."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import compose
from omegaconf import OmegaConf
from PIL import Image

from ngbench.datasets import load_images, load_texts, load_token_rows
from ngbench.errors import MissingDependency, UserError


def dataset_cfg(name: str, **values):
    """conf/dataset/<name>.yaml composed through Hydra, with `values` set on it."""
    return OmegaConf.merge(compose(f"dataset={name}").dataset, values)


def save_image(path: Path, size: tuple[int, int], colour=(200, 30, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture
def imagefolder(tmp_path: Path) -> Path:
    root = tmp_path / "imagenet"
    save_image(root / "val" / "n01440764" / "a.JPEG", (500, 375))
    save_image(root / "val" / "n01440764" / "b.png", (375, 500))
    save_image(root / "val" / "n01443537" / "c.jpg", (500, 333))
    return root


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    sizes = {1: (640, 480), 2: (427, 640)}
    for image_id, size in sizes.items():
        save_image(root / "val2017" / f"{image_id:012d}.jpg", size)
    instances = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h} for i, (w, h) in sizes.items()],
        "annotations": [{"id": 10, "image_id": 1, "category_id": 18, "bbox": [10, 20, 100, 80], "area": 8000,
                         "iscrowd": 0, "segmentation": [[10, 20, 110, 20, 110, 100]]}],
        "categories": [{"id": 18, "name": "dog", "supercategory": "animal"}],
    }
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(instances))
    return root


@pytest.fixture
def wikitext(tmp_path: Path) -> Path:
    import pandas as pd

    root = tmp_path / "wikitext" / "wikitext-2-raw-v1"
    root.mkdir(parents=True)
    lines = ["", " = Robert Boulter = \n", "", " Robert Boulter is an English film , television and theatre "
             "actor . He had a guest @-@ starring role on the television series The Bill in 2000 . \n",
             " In 2006 , Boulter starred alongside Whishaw in the play Citizenship . \n", ""]
    pd.DataFrame({"text": lines}).to_parquet(root / "test-00000-of-00001.parquet")
    pd.DataFrame({"text": ["", " = = Heading = = \n"]}).to_parquet(root / "validation-00000-of-00001.parquet")
    return root.parent


# ---- real loaders -------------------------------------------------------------------------------------

def test_imagefolder_reads_jpeg_and_png(imagefolder):
    images = load_images(dataset_cfg("imagenet", root=str(imagefolder)), 3, seed=0)
    assert sorted(image.size for image in images) == [(375, 500), (500, 333), (500, 375)]
    assert all(image.mode == "RGB" for image in images)


def test_imagefolder_picks_deterministically_and_cycles(imagefolder):
    cfg = dataset_cfg("imagenet", root=str(imagefolder / "val"), source="real")
    first = [image.size for image in load_images(cfg, 5, seed=3)]
    assert first == [image.size for image in load_images(cfg, 5, seed=3)] and len(first) == 5


def test_coco_reads_images_listed_in_the_instances_json(coco):
    images = load_images(dataset_cfg("coco", root=str(coco)), 2, seed=0)
    assert sorted(image.size for image in images) == [(427, 640), (640, 480)]


@pytest.mark.slow
def test_wikitext_parquet_through_datasets(wikitext):
    lines = load_texts(dataset_cfg("wikitext", root=str(wikitext)), 4, seed=0)
    assert len(lines) == 4 and all("Boulter" in line for line in lines)  # headings and blanks skipped


def test_wikitext_raw_text_file(tmp_path):
    path = tmp_path / "wiki.test.raw"
    path.write_text(" = Title = \n\n The first paragraph is here . \n\n A second one . \n")
    lines = load_texts(dataset_cfg("wikitext", root=str(path)), 2, seed=1)
    assert set(lines) <= {" The first paragraph is here . ", " A second one . "}


def test_token_rows_pin_seq_len_over_real_lines(wikitext):
    rows = load_token_rows(dataset_cfg("wikitext", root=str(wikitext)), 3, 50, 0, lambda s: list(range(len(s.split()))))
    assert [len(row) for row in rows] == [50, 50, 50]


# ---- offline samples ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["imagenet", "coco"])
@pytest.mark.slow
def test_sample_images_have_real_set_sizes(name):
    cfg = dataset_cfg(name)
    images = load_images(cfg, 8, seed=0)
    allowed = {tuple(size) for size in cfg.sample.sizes}
    assert len(images) == 8 and {image.size for image in images} <= allowed
    assert [i.size for i in images] == [i.size for i in load_images(cfg, 8, seed=0)]
    assert np.array_equal(np.asarray(images[0]), np.asarray(load_images(cfg, 1, seed=0)[0]))
    assert [i.size for i in load_images(cfg, 8, seed=1)] != [i.size for i in images]


def test_sample_texts_have_wikitext_like_lengths():
    cfg = dataset_cfg("wikitext")
    lines = load_texts(cfg, 200, seed=0)
    words = sorted(len(line.split()) for line in lines)
    assert 40 <= words[len(words) // 2] <= 140 and words[0] >= 4 and words[-1] > 150
    assert lines == load_texts(cfg, 200, seed=0) and lines != load_texts(cfg, 200, seed=1)


def test_sample_token_rows_natural_and_pinned():
    cfg = dataset_cfg("wikitext")
    def count(text):
        return [1] * len(text.split())
    natural = load_token_rows(cfg, 4, None, 0, count)
    assert len({len(row) for row in natural}) > 1
    assert [len(row) for row in load_token_rows(cfg, 2, 2048, 0, count)] == [2048, 2048]


# ---- bad data -----------------------------------------------------------------------------------------

def test_missing_root_names_it(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path}/nothing does not exist"):
        load_images(dataset_cfg("imagenet", root=str(tmp_path / "nothing")), 1, 0)


def test_real_source_without_root():
    with pytest.raises(UserError, match="source=real needs dataset.root"):
        load_images(dataset_cfg("coco", source="real"), 1, 0)


def test_empty_imagefolder_names_the_folder(tmp_path):
    (tmp_path / "empty" / "classA").mkdir(parents=True)
    with pytest.raises(UserError, match=f"no images under {tmp_path}/empty"):
        load_images(dataset_cfg("imagenet", root=str(tmp_path / "empty")), 1, 0)


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "imagenet" / "classA" / "broken.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(UserError, match=f"cannot read image {bad}"):
        load_images(dataset_cfg("imagenet", root=str(tmp_path / "imagenet")), 1, 0)


def test_coco_json_that_does_not_parse_names_the_file(coco):
    path = coco / "annotations" / "instances_val2017.json"
    path.write_text("{ not json")
    with pytest.raises(UserError, match=f"annotation file {path} is not valid COCO"):
        load_images(dataset_cfg("coco", root=str(coco)), 1, 0)


@pytest.mark.slow
def test_coco_missing_annotations_and_images(coco):
    (coco / "annotations" / "instances_val2017.json").unlink()
    with pytest.raises(UserError, match="instances_val2017.json does not exist"):
        load_images(dataset_cfg("coco", root=str(coco)), 1, 0)
    with pytest.raises(UserError, match="images directory .*train2017 does not exist"):
        load_images(dataset_cfg("coco", root=str(coco), split="train2017"), 1, 0)


def test_coco_image_listed_but_missing_names_it(coco):
    (coco / "val2017" / "000000000002.jpg").unlink()
    with pytest.raises(UserError, match="000000000002.jpg .* does not exist"):
        load_images(dataset_cfg("coco", root=str(coco)), 2, 0)


def test_text_split_without_usable_lines_names_the_file(wikitext):
    with pytest.raises(UserError, match="validation-00000-of-00001.parquet: split 'validation' has no usable"):
        load_texts(dataset_cfg("wikitext", root=str(wikitext), split="validation"), 1, 0)


def test_text_split_with_no_file(wikitext):
    with pytest.raises(UserError, match="no data file for split 'train'"):
        load_texts(dataset_cfg("wikitext", root=str(wikitext), split="train"), 1, 0)


def test_corrupt_parquet_names_it(tmp_path):
    path = tmp_path / "test.parquet"
    path.write_bytes(b"PAR1 garbage")
    with pytest.raises(UserError, match=f"cannot load {path}"):
        load_texts(dataset_cfg("wikitext", root=str(path)), 1, 0)


@pytest.mark.slow
def test_wrong_kind_of_dataset():
    with pytest.raises(UserError, match="holds no text"):
        load_texts(dataset_cfg("coco"), 1, 0)
    with pytest.raises(UserError, match="holds no images"):
        load_images(dataset_cfg("wikitext"), 1, 0)


@pytest.mark.parametrize("module,name,loader", [("pycocotools.coco", "coco", load_images),
                                                 ("datasets", "wikitext", load_texts)])
@pytest.mark.slow
def test_missing_optional_library_names_the_pip_package(module, name, loader, monkeypatch, coco, wikitext):
    monkeypatch.setitem(sys.modules, module, None)
    root = coco if name == "coco" else wikitext
    with pytest.raises(MissingDependency, match=f"pip install {module.split('.')[0]}"):
        loader(dataset_cfg(name, root=str(root)), 1, 0)


@pytest.mark.parametrize("name", ["imagenet", "coco", "wikitext"])
@pytest.mark.slow
def test_dataset_files_compose(name):
    cfg = dataset_cfg(name)
    assert cfg.name == name and cfg.root is None and cfg.source == "auto" and cfg.split and cfg.format
