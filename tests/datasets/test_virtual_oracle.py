"""virtual_planted_signal: the virtual NSD's noiseless planted responses, rebuilt from its seed."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import _nsdpaths as P
from brainalign.datasets import load_nsd, make_virtual_nsd, virtual_planted_signal
from brainalign.datasets._formats import load_mgh
from brainalign.errors import DataFormatError, InputError


@pytest.fixture(scope="module")
def loud_nsd(tmp_path_factory):
    """A tiny virtual NSD whose signal is 1000 × the trial noise (one hemisphere-sized check)."""
    root = tmp_path_factory.mktemp("loud") / "nsd"
    return make_virtual_nsd(
        root, n_subjects=2, n_shared=12, n_unique=12, n_sessions=3, spaces=("fsaverage",), snr=1e3
    )


def _ncsnr(root):
    with np.load(root / "virtual_truth.npz") as z:
        return z["ncsnr"].astype(np.float64)


def test_written_trials_are_gain_times_planted_plus_unit_noise(loud_nsd):
    """Each written trial beta is psc·gain·(planted + noise) + psc·offset per session and
    vertex: regressed on the planted signal (trial units), the residual is the unit-SD noise."""
    subject = 2
    trials = pd.read_csv(P.responses(loud_nsd, subject), sep="\t")
    sub = load_nsd(loud_nsd, subject, verbose=False)
    roi = np.flatnonzero(sub.rois["ventral"])
    ids = np.unique(trials["73KID"] - 1)
    planted = virtual_planted_signal(loud_nsd, subject, ids, "ventral", units="trial")
    noise_sd = []
    for session, block in trials.groupby("SESSION"):
        y = np.concatenate(
            [
                load_mgh(P.fsaverage_betas(loud_nsd, subject, h, session)).reshape(-1, len(block))
                for h in ("lh", "rh")
            ]
        ).T[:, roi]  # (trials, ROI vertices)
        x = planted[np.searchsorted(ids, block["73KID"].to_numpy() - 1)]
        x_c, y_c = x - x.mean(0), y - y.mean(0)
        slope = (x_c * y_c).sum(0) / (x_c**2).sum(0)  # psc · gain per vertex
        resid = y_c - slope * x_c
        noise_sd.append(resid.std(0, ddof=2) / slope)
    noise_sd = np.concatenate(noise_sd)
    # the planted signal is 1000 noise SDs: any other signal would leave residuals of that size
    assert np.median(noise_sd) == pytest.approx(1.0, abs=0.05)
    assert noise_sd.max() < 2.0


def test_correlation_with_betas_rises_with_ncsnr_as_the_noise_predicts(virtual_nsd_root):
    """Per vertex, r(planted, betas averaged over 3 repetitions) ≈ ncsnr / √(ncsnr² + 1/3)."""
    sub = load_nsd(virtual_nsd_root, 1, verbose=False)
    nc = _ncsnr(virtual_nsd_root)
    r, expected = [], []
    for roi in ("early", "ventral", "lateral"):
        mask = np.asarray(sub.rois[roi])
        B = np.asarray(sub.betas)[:, mask].astype(np.float64)
        X = virtual_planted_signal(virtual_nsd_root, 1, sub.image_ids, roi)
        Bc, Xc = B - B.mean(0), X - X.mean(0)
        r.append((Bc * Xc).sum(0) / np.sqrt((Bc**2).sum(0) * (Xc**2).sum(0)))
        expected.append(nc[mask] / np.sqrt(nc[mask] ** 2 + 1 / 3))
    r, expected = np.concatenate(r), np.concatenate(expected)
    edges = np.quantile(expected, [0, 0.25, 0.5, 0.75, 1.0])
    means = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (expected >= lo) & (expected <= hi)
        means.append(r[sel].mean())
        # small-sample correlations shrink a little (about 1/n), hence the tolerance
        assert r[sel].mean() == pytest.approx(expected[sel].mean(), abs=0.06)
    assert np.all(np.diff(means) > 0)
    # the null region carries no signal: its betas do not follow any ROI's planted signal
    null = ~np.asarray(sub.rois["nsdgeneral"])
    assert not virtual_planted_signal(virtual_nsd_root, 1, sub.image_ids[:5])[:, null].any()


def test_rows_columns_and_units(virtual_nsd_root):
    sub = load_nsd(virtual_nsd_root, 3, verbose=False)
    ids = sub.image_ids[:20]
    dense = virtual_planted_signal(virtual_nsd_root, 3, ids)
    assert dense.shape == (20, sub.betas.shape[1])
    ventral = virtual_planted_signal(virtual_nsd_root, 3, ids, "ventral")
    np.testing.assert_array_equal(ventral, dense[:, np.asarray(sub.rois["ventral"])])
    # rows follow the ids given, in their order
    perm = np.random.default_rng(0).permutation(20)
    np.testing.assert_array_equal(
        virtual_planted_signal(virtual_nsd_root, 3, ids[perm], "ventral"), ventral[perm]
    )
    nc = _ncsnr(virtual_nsd_root)[np.asarray(sub.rois["ventral"])]
    signal = virtual_planted_signal(virtual_nsd_root, 3, ids, "ventral", units="signal")
    trial = virtual_planted_signal(virtual_nsd_root, 3, ids, "ventral", units="trial")
    np.testing.assert_allclose(trial, signal * nc, rtol=1e-6)  # npz ncsnr: float32
    np.testing.assert_allclose(ventral, signal * nc / np.sqrt(1 + nc**2), rtol=1e-6)
    # each subject has its own voxel weights (compared on images both saw)
    shared = sub.image_ids[sub.shared][:3]
    other = virtual_planted_signal(virtual_nsd_root, 1, shared, "ventral")
    assert not np.allclose(other, virtual_planted_signal(virtual_nsd_root, 3, shared, "ventral"))


def test_bad_requests_are_named(virtual_nsd_root):
    sub = load_nsd(virtual_nsd_root, 1, verbose=False)
    unseen = np.setdiff1d(np.arange(73000), sub.image_ids)[:1]
    with pytest.raises(InputError, match="never saw"):
        virtual_planted_signal(virtual_nsd_root, 1, unseen)
    with pytest.raises(InputError, match="planted ROIs"):
        virtual_planted_signal(virtual_nsd_root, 1, sub.image_ids[:2], "nsdgeneral")
    with pytest.raises(InputError, match="subjects 1..8"):
        virtual_planted_signal(virtual_nsd_root, 9, sub.image_ids[:2])
    with pytest.raises(InputError, match="units"):
        virtual_planted_signal(virtual_nsd_root, 1, sub.image_ids[:2], units="psc")


def test_a_dataset_it_cannot_rebuild_is_refused(virtual_nsd_root, tmp_path):
    """Only the truth files and the design are read; a stored ncsnr the rebuild does not
    reproduce (other code, edited files) is an error, never a silently wrong signal."""
    copy = tmp_path / "nsd"
    for name in ("virtual_truth.json", "virtual_truth.npz"):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(virtual_nsd_root / name, copy / name)
    P.expdesign(copy).parent.mkdir(parents=True)
    shutil.copy(P.expdesign(virtual_nsd_root), P.expdesign(copy))
    ids = load_nsd(virtual_nsd_root, 1, verbose=False).image_ids[:4]
    np.testing.assert_array_equal(
        virtual_planted_signal(copy, 1, ids, "early"),
        virtual_planted_signal(virtual_nsd_root, 1, ids, "early"),
    )
    with np.load(copy / "virtual_truth.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["ncsnr"] = arrays["ncsnr"] * 1.01
    np.savez(copy / "virtual_truth.npz", **arrays)
    with pytest.raises(DataFormatError, match="ncsnr"):
        virtual_planted_signal(copy, 1, ids, "early")
