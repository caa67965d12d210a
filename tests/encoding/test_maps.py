"""Encoding maps, their surface files and interparticipant agreement."""

import numpy as np
import pytest

from brainalign.datasets import SubjectResponses
from brainalign.datasets.surfaces import (
    read_hemisphere_maps,
    split_hemispheres,
    write_hemisphere_maps,
)
from brainalign.encoding import (
    agreement_relation,
    encoding_map,
    interparticipant_agreement,
    pearson_r,
    plot_agreement_relation,
)
from brainalign.errors import InputError


def _subject(rng, n=160, d=16, units=(30, 30), n_shared=40, noise=0.5):
    E = rng.standard_normal((n, d)).astype(np.float32)
    n_units = sum(units)
    W = rng.standard_normal((d, n_units))
    W[:, : n_units // 2] = 0  # null region: first half of the units
    betas = (E @ W + noise * rng.standard_normal((n, n_units))).astype(np.float32)
    shared = np.zeros(n, bool)
    shared[:n_shared] = True
    rois = {"signal": np.arange(n_units) >= n_units // 2, "null": np.arange(n_units) < n_units // 2}
    sub = SubjectResponses(
        betas=betas,
        image_ids=np.arange(n),
        shared=shared,
        rois=rois,
        space="fsaverage",
        subject=1,
        hemi_sizes=units,
    )
    return sub, E


def test_encoding_map_planted_signal(rng):
    sub, E = _subject(rng)
    emap = encoding_map(sub, E, alphas=np.logspace(-2, 4, 7))
    assert emap.r.shape == (sub.n_units,)
    assert np.nanmean(emap.r[sub.rois["signal"]]) > 0.8
    assert abs(np.nanmean(emap.r[sub.rois["null"]])) < 0.15
    np.testing.assert_array_equal(emap.test_ids, np.arange(40))
    # same as fitting by hand on the paper split
    manual = emap.model.predict(E[sub.shared])
    np.testing.assert_allclose(emap.r, pearson_r(manual, sub.betas[sub.shared]), atol=1e-6)


def test_encoding_map_reads_memmapped_betas_without_copying(rng, tmp_path):
    """A memory-mapped subject gives the same map as in-memory betas fitted on copied rows."""
    from brainalign.encoding import RidgeEncoder

    sub, E = _subject(rng)
    np.save(tmp_path / "betas.npy", sub.betas)
    mm = SubjectResponses(
        betas=np.load(tmp_path / "betas.npy", mmap_mode="r"),
        image_ids=sub.image_ids,
        shared=sub.shared,
        rois=sub.rois,
        space=sub.space,
        subject=1,
        hemi_sizes=sub.hemi_sizes,
    )
    params = dict(alphas=np.logspace(-2, 4, 7), block_size=7)
    emap = encoding_map(mm, E, **params)
    copied = RidgeEncoder(**params).fit(E[~sub.shared], sub.betas[~sub.shared])
    np.testing.assert_array_equal(emap.model.coef_, copied.coef_)
    expected = pearson_r(copied.predict(E[sub.shared]), sub.betas[sub.shared])
    np.testing.assert_allclose(emap.r, expected, rtol=0, atol=1e-6)
    part = encoding_map(mm, E, units=np.flatnonzero(sub.rois["signal"])[::-1], **params)
    np.testing.assert_allclose(part.r[sub.rois["signal"]], emap.r[sub.rois["signal"]], atol=1e-6)
    assert np.isnan(part.r[sub.rois["null"]]).all()


def test_encoding_map_matches_by_id_and_subset(rng):
    sub, E = _subject(rng)
    perm = rng.permutation(len(E))
    emap = encoding_map(sub, E[perm], image_ids=sub.image_ids[perm], units=sub.rois["signal"])
    ref = encoding_map(sub, E, units=sub.rois["signal"])
    np.testing.assert_allclose(emap.r, ref.r, atol=1e-5)
    assert np.isnan(emap.r[sub.rois["null"]]).all()
    with pytest.raises(InputError, match="no row for image id"):
        encoding_map(sub, E[1:], image_ids=sub.image_ids[1:])
    with pytest.raises(InputError, match="rows for"):
        encoding_map(sub, E[1:])
    with pytest.raises(InputError, match="both"):
        encoding_map(sub, E, train=np.arange(50), test=np.arange(40, 60))


@pytest.mark.parametrize("fmt", ["gifti", "mgz"])
def test_surface_map_roundtrip(rng, tmp_path, fmt):
    values = rng.standard_normal((2, 30)).astype(np.float32)
    lh, rh = split_hemispheres(values, (12, 18))
    paths = write_hemisphere_maps(tmp_path / "maps" / "sub01", lh, rh, formats=(fmt,))
    assert [p.name.split(".")[1] for p in paths] == ["lh", "rh"]
    both = np.concatenate(read_hemisphere_maps(tmp_path / "maps" / "sub01"), axis=-1)
    np.testing.assert_array_equal(both, values)
    with pytest.raises(InputError, match="hemi_sizes"):
        split_hemispheres(values, (10, 10))


def test_interparticipant_agreement_reference(rng):
    shared_signal = rng.standard_normal((50, 20))
    subs = [shared_signal + rng.standard_normal((50, 20)) for _ in range(4)]
    subs[2][:, 3] = np.nan
    agr = interparticipant_agreement(subs)
    clean = [np.nan_to_num(s) for s in subs]
    for s in range(4):
        others = np.mean([clean[k] for k in range(4) if k != s], axis=0)
        for u in range(20):
            if s == 2 and u == 3:
                assert np.isnan(agr[s, u])
                continue
            assert agr[s, u] == pytest.approx(
                np.corrcoef(clean[s][:, u], others[:, u])[0, 1], abs=1e-6
            )
    assert np.nanmean(agr) > 0.5
    with pytest.raises(InputError, match="at least 2"):
        interparticipant_agreement(subs[:1])


def test_agreement_relation_table_and_plot(rng, tmp_path):
    agr = rng.uniform(0, 0.8, 100)
    enc = 0.5 * agr + 0.05 * rng.standard_normal(100)
    rois = {"ventral": np.arange(100) < 40}
    units, summary = agreement_relation(enc, agr, rois)
    assert set(units["roi"]) == {"ventral", "other"}
    row = summary.set_index("roi").loc["ventral"]
    assert row["n_units"] == 40 and row["slope"] == pytest.approx(
        np.polyfit(agr[:40], enc[:40], 1)[0]
    )
    ax = plot_agreement_relation(units)
    ax.figure.savefig(tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 0


def test_encoding_on_virtual_nsd(virtual_nsd_root, bow_encoder, tmp_path):
    """Caption embeddings predict the ROIs whose planted representation is caption-like
    (ventral: objects, lateral: events) and not the null region (outside nsdgeneral)."""
    from brainalign.datasets import load_nsd, load_stimuli

    sub = load_nsd(virtual_nsd_root, 1)
    stim = load_stimuli(virtual_nsd_root, sub.image_ids)
    E = np.stack([bow_encoder.encode(caps).mean(0) for caps in stim.captions])
    with pytest.warns(UserWarning, match="NaN"):  # the virtual NSD's dead vertices
        emap = encoding_map(sub, E, alphas=np.logspace(-1, 5, 7))
    null = ~sub.rois["nsdgeneral"] & np.isfinite(emap.r)
    null_mean = emap.r[null].mean()
    null_se = emap.r[null].std() / np.sqrt(null.sum())
    assert abs(null_mean) < 0.03
    for roi in ("ventral", "lateral"):
        r = np.nanmean(emap.r[sub.rois[roi]])
        assert r > 0.1 and r > null_mean + 10 * null_se, roi
    write_hemisphere_maps(tmp_path / "sub01", *sub.split_hemispheres(emap.r))
    np.testing.assert_array_equal(np.concatenate(read_hemisphere_maps(tmp_path / "sub01")), emap.r)


def test_split_half_reliability_is_the_spearman_brown_corrected_odd_even_r(rng):
    from brainalign.encoding import split_half_reliability

    signal = rng.standard_normal((30, 4))
    R = signal[None] + np.array([0.3, 1.0, 3.0, 10.0]) * rng.standard_normal((5, 30, 4))
    rel = split_half_reliability(R)
    for u in range(4):
        r = np.corrcoef(R[0::2, :, u].mean(0), R[1::2, :, u].mean(0))[0, 1]
        assert rel[u] == pytest.approx(2 * r / (1 + r), abs=1e-12)
    assert rel[0] > 0.9 and rel[0] > rel[2]  # less noise, more reliable
    with pytest.raises(InputError, match="n_repetitions >= 2"):
        split_half_reliability(R[:1])
