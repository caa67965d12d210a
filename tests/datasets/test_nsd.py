"""load_nsd / load_stimuli on a virtual NSD, against a plain in-memory recomputation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import SubjectResponses, load_nsd, load_stimuli, special_ids
from tests.datasets.nsd_reference import reference_betas


@pytest.mark.parametrize(
    ("space", "subject"), [("fsaverage", 1), ("fsaverage", 4), ("func1pt8mm", 3)]
)
def test_load_nsd_equals_plain_recomputation(virtual_nsd_root, tmp_path, space, subject):
    sub = load_nsd(virtual_nsd_root, subject, space, cache_dir=tmp_path)
    expected, ids = reference_betas(virtual_nsd_root, subject, space)
    assert isinstance(sub, SubjectResponses)
    assert isinstance(sub.betas, np.memmap) or isinstance(sub.betas.base, np.memmap)
    assert sub.betas.dtype == np.float32
    np.testing.assert_array_equal(sub.image_ids, ids)
    assert np.all(np.diff(sub.image_ids) > 0)
    np.testing.assert_array_equal(np.isnan(sub.betas), np.isnan(expected))
    np.testing.assert_allclose(sub.betas, expected, atol=1e-6, rtol=0, equal_nan=True)


def test_surface_layout_rois_and_shared(virtual_nsd_root, tmp_path):
    truth = json.loads((virtual_nsd_root / "virtual_truth.json").read_text())
    sub = load_nsd(virtual_nsd_root, 1, cache_dir=tmp_path)
    assert sub.hemi_sizes == (10242, 10242)
    assert sub.n_units == 20484
    assert sub.space == "fsaverage" and sub.subject == 1
    assert sub.metadata["n_sessions"] == truth["subjects"]["1"]["n_sessions"]
    expected_rois = set(truth["rois"]) | {"nsdgeneral"}
    assert set(sub.rois) == expected_rois
    for name, info in truth["rois"].items():
        assert sub.rois[name].sum() == sum(info["n_vertices"])
    # the streams ROIs are disjoint and inside nsdgeneral
    streams = np.array([sub.rois[n] for n in truth["rois"]])
    assert streams.sum(axis=0).max() == 1
    assert np.all(sub.rois["nsdgeneral"][streams.any(axis=0)])
    # shared = special set, identical for every subject
    special = np.asarray(truth["special_nsd_ids"])
    np.testing.assert_array_equal(sub.image_ids[sub.shared], special)
    np.testing.assert_array_equal(special_ids(virtual_nsd_root), special)
    # dead vertices are NaN, everything else finite
    dead = np.asarray(truth["dead_vertices"])
    assert np.isnan(sub.betas[:, dead]).all()
    others = np.setdiff1d(np.arange(sub.n_units), dead)
    assert np.isfinite(sub.betas[:, others]).all()


def test_subjects_with_fewer_sessions_keep_fewer_images(virtual_nsd_root, tmp_path):
    truth = json.loads((virtual_nsd_root / "virtual_truth.json").read_text())
    full = load_nsd(virtual_nsd_root, 1, cache_dir=tmp_path)
    short = load_nsd(virtual_nsd_root, 4, cache_dir=tmp_path)
    assert short.metadata["n_sessions"] < full.metadata["n_sessions"]
    assert short.n_images < full.n_images
    assert short.n_images == truth["subjects"]["4"]["n_images_3x"]
    # some shared images were not seen 3 times by subject 4 (as in NSD)
    shared_all = np.asarray(truth["shared_nsd_ids"])
    assert np.isin(shared_all, short.image_ids).sum() < len(shared_all)
    np.testing.assert_array_equal(short.image_ids[short.shared], full.image_ids[full.shared])


def test_volume_space(virtual_nsd_root, tmp_path):
    sub = load_nsd(virtual_nsd_root, 2, "func1pt8mm", cache_dir=tmp_path)
    assert sub.mask is not None and sub.mask.ndim == 3
    assert sub.n_units == int(sub.mask.sum())
    assert sub.affine.shape == (4, 4)
    assert sub.hemi_sizes == ()
    for name in ("early", "ventral", "lateral", "parietal", "nsdgeneral"):
        assert sub.rois[name].any(), name
    streams = np.array([m for k, m in sub.rois.items() if k != "nsdgeneral"])
    assert streams.sum(axis=0).max() == 1


def test_cache_is_reused(virtual_nsd_root, tmp_path, monkeypatch):
    import brainalign.datasets.nsd as nsd

    load_nsd(virtual_nsd_root, 1, cache_dir=tmp_path)
    calls = []
    monkeypatch.setattr(nsd, "_read_session", lambda *a, **k: calls.append(a))
    again = load_nsd(virtual_nsd_root, 1, cache_dir=tmp_path)
    assert calls == []
    assert again.n_images > 0


def test_load_stimuli(virtual_nsd_root):
    from brainalign.datasets.scenes import make_scenes

    truth = json.loads((virtual_nsd_root / "virtual_truth.json").read_text())
    npz = np.load(virtual_nsd_root / "virtual_truth.npz", allow_pickle=False)
    # default: every image shown to at least one subject (from the tsv files, plainly)
    shown = np.unique(
        np.concatenate(
            [
                pd.read_csv(p / "behav/responses.tsv", sep="\t")["73KID"].to_numpy() - 1
                for p in sorted((virtual_nsd_root / "nsddata/ppdata").glob("subj*"))
            ]
        )
    )
    np.testing.assert_array_equal(load_stimuli(virtual_nsd_root).image_ids, shown)
    stim = load_stimuli(virtual_nsd_root, image_ids=npz["nsd_ids"])
    np.testing.assert_array_equal(stim.image_ids, npz["nsd_ids"])
    assert all(len(c) == 5 for c in stim.captions)
    assert stim.categories is not None and stim.categories.dtype == np.uint8
    assert stim.categories.shape[0] == len(stim)
    # captions, categories and pixels are those of the generating scenes
    n = len(stim)
    scenes = make_scenes(n, random_state=truth["stimuli"]["random_state"])
    for row in (0, 7, n - 1):
        scene = int(npz["scene_index"][row])
        assert stim.captions[row] == scenes.captions[scene]
        np.testing.assert_array_equal(stim.categories[row], scenes.categories[scene])
    rows = [5, 2]
    imgs = stim.images(stim.image_ids[rows])
    assert imgs.shape == (2, 425, 425, 3) and imgs.dtype == np.uint8
    np.testing.assert_array_equal(
        imgs, scenes.render([int(npz["scene_index"][r]) for r in rows], size=425)
    )
    assert stim.images.shape == (73000, 425, 425, 3)
    # shared1000 PNGs hold the same pixels
    from PIL import Image

    pngs = sorted((virtual_nsd_root / "nsddata/stimuli/nsd/shared1000").glob("*.png"))
    assert len(pngs) == len(truth["shared_nsd_ids"])
    first_id = int(pngs[0].stem.split("_nsd")[1]) - 1
    assert first_id == truth["shared_nsd_ids"][0]
    np.testing.assert_array_equal(np.asarray(Image.open(pngs[0])), stim.images([first_id])[0])


def test_load_stimuli_subset(virtual_nsd_root, tmp_path):
    sub = load_nsd(virtual_nsd_root, 1, cache_dir=tmp_path)
    stim = load_stimuli(virtual_nsd_root, image_ids=sub.image_ids[::-1])
    np.testing.assert_array_equal(stim.image_ids, sub.image_ids)
    shared_all = json.loads((virtual_nsd_root / "virtual_truth.json").read_text())["shared_nsd_ids"]
    assert stim.metadata["shared"].sum() == np.isin(shared_all, sub.image_ids).sum()
