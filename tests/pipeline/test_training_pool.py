"""Networks train on a pool of images no subject sees, and the split is checked (issue: the
leak of networks trained on the images they are scored on)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brainalign.datasets import load_stimuli, nsd_coco_ids
from brainalign.errors import DataFormatError
from brainalign.networks.data import check_training_split
from brainalign.pipeline.analyses.networks import training_pool
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.demo import QUICK_OVERRIDES
from brainalign.pipeline.study import run_study


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    q = copy.deepcopy(QUICK_OVERRIDES)
    cfg = validate_config(
        {
            "data": {"kind": "virtual", **q["data"]},
            "features": {"spaces": ["minilm", "multihot"]},
            "analyses": {
                "roi_rsa": {"enabled": False},
                "model_comparison": {"enabled": False},
                "searchlight": {"enabled": False},
                "encoding": {"enabled": False},
                "insilico": {"enabled": False},
                "decoding": {"enabled": False},
                "networks": {**q["analyses"]["networks"], "epochs": 1},
            },
            "output": {"dir": str(tmp_path_factory.mktemp("pool") / "run")},
        }
    )
    run_study(cfg, report=True)
    return cfg


def test_networks_train_only_on_the_pool(pool_run):
    out = pool_run.output.dir
    table = pd.read_csv(out / "tables" / "network_training_images.csv")
    assert list(table.columns) == ["image_id", "target", "seed"]
    assert set(table["target"]) == {"mpnet", "multihot"} and set(table["seed"]) == {0}
    root = pool_run.data.root
    nsd = nsd_coco_ids(root)
    evaluated = np.asarray(load_stimuli(root, categories=False).metadata["coco_ids"])
    assert not np.isin(table["image_id"], nsd).any()
    assert not np.isin(table["image_id"], evaluated).any()
    pool = json.loads((out / "network_training_pool.json").read_text())
    assert pool["n_found"] == 48 and pool["n_kept"] == 48 and pool["n_overlap_with_evaluated"] == 0
    # 10 % held out for validation: the rest trained
    assert len(table[table["target"] == "multihot"]) == 48 - max(8, 48 // 10)
    html = (out / "report.html").read_text()
    assert "None of them is an image the study evaluates (checked)" in html


def _nsd_images_as_coco_folder(root, folder, n=10):
    """A 'training pool' that is really NSD images (what the leak check must catch)."""
    stim = load_stimuli(root)
    coco = np.asarray(stim.metadata["coco_ids"])[:n]
    (folder / "train2017").mkdir(parents=True)
    (folder / "annotations").mkdir()
    images = stim.images(stim.image_ids[:n])
    for cid, img in zip(coco, images, strict=True):
        Image.fromarray(img).save(folder / "train2017" / f"{cid:012d}.jpg")
    doc = {
        "images": [{"id": int(c), "file_name": f"{c:012d}.jpg"} for c in coco],
        "annotations": [
            {"image_id": int(c), "id": k + 1, "caption": stim.captions[k][0]}
            for k, c in enumerate(coco)
        ],
    }
    (folder / "annotations" / "captions_train2017.json").write_text(json.dumps(doc))
    return coco


def test_a_pool_of_evaluated_images_fails_loudly_unless_allowed(pool_run, tmp_path):
    root = str(pool_run.data.root)
    coco = _nsd_images_as_coco_folder(pool_run.data.root, tmp_path / "leaky")
    params = {"root": root, "pool": str(tmp_path / "leaky"), "split": "train2017"}
    with pytest.raises(DataFormatError, match="no image of .* is left once the NSD images"):
        training_pool({**params, "allow_overlap": False}, {}, {})
    res = training_pool({**params, "allow_overlap": True}, {}, {})
    assert res["n_overlap"] == len(coco) and res["n_nsd_excluded"] == 0


def test_the_split_check_names_the_overlap():
    with pytest.raises(DataFormatError, match="2 of them are images the study evaluates"):
        check_training_split([1, 2, 3], [2, 3, 4])
    np.testing.assert_array_equal(check_training_split([1, 2], [2], allow_overlap=True), [2])
    assert len(check_training_split([1], [2])) == 0
