"""The n²-free model path: sums from moments, blocked Gram matrices, no n × n model arrays."""

import tracemalloc

import numpy as np
import pytest

from brainalign.backend import BACKENDS, get_backend
from brainalign.rsa import Neighbourhoods, compare_rdms, compute_rdm, roi_rsa, searchlight
from brainalign.rsa import _kernels as K
from brainalign.rsa.models import parse_models
from brainalign.rsa.rdm import standardise_rows


def _explicit_pair_sums(E):
    """The materialised reference: sums over the upper triangle of E Eᵀ."""
    iu, ju = np.triu_indices(E.shape[0], k=1)
    k = (E @ E.T)[iu, ju]
    return k.sum(), k @ k


@pytest.mark.parametrize("d", [5, 300])
@pytest.mark.parametrize("block_entries", [K.GRAM_BLOCK_ENTRIES, 97])
def test_feature_pair_sums_equal_explicit(monkeypatch, d, block_entries):
    monkeypatch.setattr(K, "GRAM_BLOCK_ENTRIES", block_entries)
    E = standardise_rows(np.random.default_rng(0).standard_normal((120, d)))
    got = K.feature_pair_sums(E)
    np.testing.assert_allclose(got, _explicit_pair_sums(E), rtol=1e-11, atol=1e-9)


@pytest.mark.parametrize("w", [7, 90])
def test_blocked_gram_equals_full(monkeypatch, w):
    xp = get_backend("numpy")
    Z = np.random.default_rng(1).standard_normal((40, 3, w))
    full = K.gram_sq(xp, Z)
    monkeypatch.setattr(K, "GRAM_BLOCK_ENTRIES", 50)
    np.testing.assert_allclose(K.gram_sq(xp, Z), full, rtol=1e-12)
    expected = [np.sum((Z[:, b].T @ Z[:, b]) ** 2) for b in range(3)]
    np.testing.assert_allclose(full, expected, rtol=1e-12)


def test_block_constants_equal_materialised_rdms():
    """S_K and var_K from moments equal those of the explicit model RDMs (the former path)."""
    rng = np.random.default_rng(2)
    n = 60
    models = {"narrow": rng.standard_normal((n, 4)), "wide": rng.standard_normal((n, 200))}
    _, parsed = parse_models(models, n)
    rows = rng.permutation(n)[:45]
    block = K.prepare_block(get_backend("numpy"), parsed, n, rows, need_rdm_free=True)
    for m, X in enumerate(models.values()):
        d = compute_rdm(X[rows])
        assert block.S_K[m] == pytest.approx((1 - d).sum(), rel=1e-12)
        assert block.var_K[m] == pytest.approx(d.var(), rel=1e-9)
        np.testing.assert_allclose(block.condensed[m], d, atol=1e-12)


def test_large_blocks_hold_no_n_by_n_model_array():
    """Model setup memory grows with n · d, not n²: at n = 4,000 an n × n float64 array is 128 MB."""
    rng = np.random.default_rng(3)
    n = 4000
    feats = rng.standard_normal((n, 16))
    _, parsed = parse_models({"m": feats}, n)
    xp = get_backend("numpy")
    tracemalloc.start()
    block = K.prepare_block(xp, parsed, n, np.arange(n), need_rdm_free=True, dtype=np.float32)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * n * n / 20
    # dense n × n similarities are never formed, however wide the centres
    assert not K.explicit_route_cheaper(n, 10**6, [16], 0)
    assert block.feature_factors[0].shape == (16, n)


def test_wide_features_over_many_images_keep_their_columns(monkeypatch):
    """d > n: the QR factor (n × n) is used only for small blocks; larger ones keep Ê."""
    E = standardise_rows(np.random.default_rng(4).standard_normal((50, 80)))
    assert K.feature_factor(E).shape == (50, 50)
    monkeypatch.setattr(K, "DENSE_MODEL_BYTES", 50 * 50 * 8 - 1)
    assert K.feature_factor(E) is E


@pytest.mark.parametrize("backend", BACKENDS)
def test_n_squared_free_searchlight_equals_materialised(monkeypatch, backend):
    """Large-block route (no dense models, blocked Grams) = the materialised brain RDMs."""
    rng = np.random.default_rng(5)
    n, U = 90, 500
    betas = rng.standard_normal((n, U)).astype(np.float32)
    feats = rng.standard_normal((n, 10))
    betas[:, :200] += (feats @ rng.standard_normal((10, 200))).astype(np.float32)
    models = {"f": feats, "wide": rng.standard_normal((n, 150)), "rdm": compute_rdm(feats[:, :3])}
    nb = Neighbourhoods.from_lists(
        [np.arange(s, s + w) for s, w in [(0, 40), (50, 300), (100, 400)]], U
    )
    expected = searchlight(betas, models, nb, path="materialised", backend=backend, dtype="float64")
    monkeypatch.setattr(K, "DENSE_MODEL_BYTES", 0)
    monkeypatch.setattr(K, "GRAM_BLOCK_ENTRIES", 1000)
    got = searchlight(betas, models, nb, backend=backend, dtype="float32")
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_roi_rsa_reads_only_roi_columns_from_a_memmap(tmp_path):
    """roi_rsa on a memory-mapped brain: the ROI columns in float32, same as float64 to 1e-6."""
    rng = np.random.default_rng(6)
    n, U = 80, 5000
    path = tmp_path / "betas.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, U))
    feats = rng.standard_normal((n, 6))
    mm[:] = rng.standard_normal((n, U))
    mm[:, 100:160] += (feats @ rng.standard_normal((6, 60))).astype(np.float32)
    mm.flush()
    betas = np.load(path, mmap_mode="r")
    rois = {"a": np.arange(100, 160), "b": np.arange(4000, 4100)}
    got = roi_rsa(betas, {"m": feats}, rois, sampling="full")
    for roi, idx in rois.items():
        r = compare_rdms(compute_rdm(np.asarray(betas[:, idx], np.float64)), compute_rdm(feats))
        assert got.loc[roi, "m"] == pytest.approx(r, abs=1e-6)
    tracemalloc.start()
    roi_rsa(betas, {"m": feats}, {"a": rois["a"]}, sampling="full")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < betas.nbytes / 4  # the whole brain is never copied


def test_model_similarity_from_moments_equals_rdms():
    from brainalign.rsa import model_similarity

    rng = np.random.default_rng(7)
    n = 70
    feats = {"a": rng.standard_normal((n, 5)), "b": rng.standard_normal((n, 90))}
    feats["c"] = feats["a"] @ rng.standard_normal((5, 8)) + 0.3 * rng.standard_normal((n, 8))
    got = model_similarity(feats, n, sampling="full")
    for x in feats:
        for y in feats:
            r = compare_rdms(compute_rdm(feats[x]), compute_rdm(feats[y]))
            assert got.loc[x, y] == pytest.approx(r, abs=1e-10)


def test_route_rule_prefers_explicit_rdms_for_small_blocks():
    """The paper's 100-image subsets form brain RDMs; thousands of images never do."""
    assert K.explicit_route_cheaper(100, 123, [], 1)  # rsatoolbox's settings
    assert K.explicit_route_cheaper(100, 895, [768], 0)  # the paper's radius-6 spheres
    assert not K.explicit_route_cheaper(100, 5, [3], 0)  # narrow centres, a narrow model
    assert not K.explicit_route_cheaper(10_000, 895, [768], 0)  # all of a subject's images


def _reference(betas, models, nb, subsets):
    """Per centre and block: brain RDM from centred, unit-length rows (constant rows zero),
    Pearson r with the model RDM, mean over blocks; units with a non-finite beta dropped."""
    from scipy.spatial.distance import squareform

    out = np.zeros((len(models), len(nb)))
    for c in range(len(nb)):
        units = nb[c][np.isfinite(betas[:, nb[c]]).all(0)]
        for m, model in enumerate(models):
            vals = []
            for rows in subsets:
                X = betas[np.ix_(rows, units)].astype(np.float64)
                Z = X - X.mean(1, keepdims=True)
                norm = np.linalg.norm(Z, axis=1)
                ok = norm > 1e-8 * np.linalg.norm(X, axis=1)
                Z = np.divide(Z, norm[:, None], out=np.zeros_like(Z), where=ok[:, None])
                brain = 1 - (Z @ Z.T)[np.triu_indices(rows.size, 1)]
                if model.ndim == 2:
                    mod = compute_rdm(model[rows])
                else:
                    mod = squareform(squareform(model)[np.ix_(rows, rows)], checks=False)
                vals.append(compare_rdms(brain, mod))
            out[m, c] = np.mean(vals)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path", ["rdm_free", "materialised", "auto"])
def test_both_routes_equal_the_reference(backend, dtype, path):
    """Explicit brain RDMs and the RDM-free sums give the same values: subsets, NaN units, a
    constant unit, an image constant over a centre, centres of different widths (padding) and
    betas too large to copy (``zero_pad_limit=0``)."""
    from brainalign.rsa import make_subsets

    rng = np.random.default_rng(9)
    n, U = 36, 90
    betas = rng.standard_normal((n, U)) + 3.0  # an offset: the means matter
    feats = rng.standard_normal((n, 5))
    betas[:, :30] += feats @ rng.standard_normal((5, 30))
    betas[:, 4] = np.nan
    betas[2, 11] = np.inf
    betas[:, 7] = 1.5  # a constant unit
    betas[5, 40:52] = -0.5  # image 5 constant over the centre at 40
    models = [feats, rng.standard_normal((n, 50)), compute_rdm(rng.standard_normal((n, 3)))]
    widths = [3, 9, 12, 12, 20, 31]
    nb = Neighbourhoods.from_lists(
        [np.arange(s, s + w) for s, w in zip([0, 2, 40, 60, 10, 55], widths, strict=True)], U
    )
    subsets = make_subsets(n, 12, random_state=1)
    expected = _reference(betas, models, nb, subsets)
    atol = 1e-10 if dtype == "float64" else 2e-5
    for limit in (4 << 30, 0):
        got = searchlight(
            betas.astype(dtype),
            models,
            nb,
            mode="subsets",
            subsets=subsets,
            path=path,
            backend=backend,
            dtype=dtype,
            batch_size=4,
            zero_pad_limit=limit,
        )
        np.testing.assert_allclose(got, expected, atol=atol)
