"""End-to-end checks on the virtual NSD (planted representations per streams ROI)."""

import json

import numpy as np
import pytest
from scipy import stats

from brainalign.rsa import Neighbourhoods, searchlight, surface_neighbourhoods
from brainalign.stats import fdr, one_sample_t, sign_flip

PLANTED = {"early": "lowlevel", "ventral": "objects", "lateral": "events", "parietal": "layout"}


@pytest.fixture(scope="module")
def vnsd(virtual_nsd_root, tmp_path_factory):
    from brainalign.datasets import load_fsaverage, load_nsd

    truth = np.load(virtual_nsd_root / "virtual_truth.npz", allow_pickle=False)
    meta = json.loads((virtual_nsd_root / "virtual_truth.json").read_text())
    nb = surface_neighbourhoods(
        load_fsaverage("fsaverage5", "white"), radius=10.0, cache_dir=tmp_path_factory.mktemp("nb")
    )
    row_of = {int(i): k for k, i in enumerate(truth["nsd_ids"])}
    subjects = [load_nsd(virtual_nsd_root, subject=s, space="fsaverage") for s in range(1, 9)]
    return truth, meta, nb, row_of, subjects


def _features(truth, meta, row_of, sub, rep):
    rows = [row_of[int(i)] for i in sub.image_ids]
    return truth[meta["representations"][rep]["npz_key"]][rows]


def test_planted_representation_peaks_in_its_roi(vnsd):
    truth, meta, nb, row_of, subjects = vnsd
    sub = subjects[0]
    models = {roi: _features(truth, meta, row_of, sub, rep) for roi, rep in PLANTED.items()}
    # the virtual dead vertices are NaN: dropped from their neighbourhoods, no NaN in the map
    assert np.isnan(sub.betas).any()
    maps = searchlight(sub.betas, models, nb)
    assert np.isfinite(maps).all()
    for m, roi in enumerate(models):
        peak = int(np.nanargmax(maps[m]))
        assert sub.rois[roi][peak], f"{PLANTED[roi]} peaks outside {roi}"
        assert (
            np.nanmean(maps[m][sub.rois[roi]]) > np.nanmean(maps[m][~sub.rois["nsdgeneral"]]) + 0.05
        )


def test_null_model_group_fdr_and_sign_flip(vnsd):
    truth, meta, nb, row_of, subjects = vnsd
    rng = np.random.default_rng(0)
    # every 8th centre keeps the test quick; the tests below need no spatial structure
    every = Neighbourhoods.from_lists([nb[c] for c in range(0, len(nb), 8)], nb.n_units)
    maps = []
    for sub in subjects:
        null_feats = rng.standard_normal((sub.betas.shape[0], 30))  # unrelated to any image
        maps.append(searchlight(sub.betas, null_feats, every)[0])
    maps = np.stack(maps)
    ok = np.isfinite(maps).all(0)
    _, p = one_sample_t(maps[:, ok])
    reject, _ = fdr(p, 0.05)
    assert reject.mean() <= 0.05
    # neighbouring centres share units; test uniformity on well-separated centres
    far = np.flatnonzero(ok)[::5]
    res = sign_flip(maps[:, far])
    assert res.exact and res.n_flips == 256
    jitter = rng.uniform(0, 2 / 256, size=far.size)  # exact p-values sit on a 2/256 grid
    assert stats.kstest(res.p - jitter, "uniform").pvalue > 0.01
