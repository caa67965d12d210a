import warnings

import numpy as np
import pytest

from brainalign.backend import BACKENDS
from brainalign.errors import InputError
from brainalign.rsa import (
    compare_rdms,
    compute_rdm,
    make_subsets,
    searchlight,
    surface_neighbourhoods,
    volume_neighbourhoods,
)


def brute_force(betas, models, nb, method="pearson", subsets=None):
    """A plain per-centre loop with scipy-equivalent RDMs (the reference)."""
    blocks = [np.arange(betas.shape[0])] if subsets is None else list(subsets)
    out = np.zeros((len(models), len(nb)))
    for c in range(len(nb)):
        units = nb[c]
        units = units[np.isfinite(betas[:, units]).all(0)]
        for m, model in enumerate(models):
            vals = []
            for rows in blocks:
                brain = compute_rdm(betas[np.ix_(rows, units)].astype(np.float64))
                if model.ndim == 2:
                    mod = compute_rdm(model[rows])
                else:
                    from scipy.spatial.distance import squareform

                    mod = squareform(squareform(model)[np.ix_(rows, rows)], checks=False)
                vals.append(compare_rdms(brain, mod, method))
            out[m, c] = np.mean(vals)
    return out


@pytest.fixture(scope="module")
def surface_case(two_hemi_mesh, tmp_path_factory):
    nb = surface_neighbourhoods(two_hemi_mesh, radius=4.5, cache_dir=tmp_path_factory.mktemp("nb"))
    rng = np.random.default_rng(1)
    n = 40
    betas = rng.standard_normal((n, nb.n_units)).astype(np.float32)
    feats = rng.standard_normal((n, 12))
    betas[:, :60] += 0.7 * (feats @ rng.standard_normal((12, 60))).astype(np.float32)
    big_feats = rng.standard_normal((n, 70))  # d > n exercises the factor path
    rdm = compute_rdm(rng.standard_normal((n, 5)))
    return betas, [feats, big_feats, rdm], nb


@pytest.fixture(scope="module")
def volume_case(ball_mask):
    nb = volume_neighbourhoods(ball_mask, radius=2.5, min_fraction=0.5)
    rng = np.random.default_rng(2)
    n = 30
    betas = rng.standard_normal((n, nb.n_units)).astype(np.float32)
    return betas, [rng.standard_normal((n, 8)), compute_rdm(rng.standard_normal((n, 3)))], nb


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", ["rdm_free", "materialised"])
@pytest.mark.parametrize("case", ["surface_case", "volume_case"])
def test_full_mode_equals_brute_force(request, case, path, backend):
    betas, models, nb = request.getfixturevalue(case)
    expected = brute_force(betas, models, nb)
    got64 = searchlight(
        betas, models, nb, path=path, backend=backend, dtype="float64", batch_size=17
    )
    np.testing.assert_allclose(got64, expected, atol=1e-10)
    got32 = searchlight(betas, models, nb, path=path, backend=backend)
    np.testing.assert_allclose(got32, expected, atol=1e-5)
    # betas too large to copy with a zero column take the masked-sum route
    masked = searchlight(
        betas, models, nb, path=path, backend=backend, dtype="float64", zero_pad_limit=0
    )
    np.testing.assert_allclose(masked, expected, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", ["rdm_free", "materialised"])
def test_subset_mode_equals_brute_force(surface_case, path, backend):
    betas, models, nb = surface_case
    subsets = make_subsets(betas.shape[0], 12, random_state=0)
    expected = brute_force(betas, models, nb, subsets=subsets)
    got = searchlight(
        betas,
        models,
        nb,
        mode="subsets",
        subsets=subsets,
        path=path,
        backend=backend,
        dtype="float64",
    )
    np.testing.assert_allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["spearman", "cosine", "kendall_tau_a"])
def test_other_methods_equal_brute_force(volume_case, method, backend):
    betas, models, nb = volume_case
    keep = np.flatnonzero(nb.sizes >= 3)[:40]  # 2-unit centres give tied ±1 correlations
    from brainalign.rsa import Neighbourhoods

    sub = Neighbourhoods.from_lists([nb[c] for c in keep], nb.n_units)
    expected = brute_force(betas, models, sub, method=method)
    got = searchlight(betas, models, sub, method=method, backend=backend, dtype="float64")
    np.testing.assert_allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize("path", ["rdm_free", "materialised"])
def test_threads_give_identical_maps(surface_case, path):
    betas, models, nb = surface_case
    one = searchlight(betas, models, nb, path=path, batch_size=7)
    two = searchlight(betas, models, nb, path=path, batch_size=7, n_jobs=2)
    np.testing.assert_array_equal(two, one)
    with pytest.raises(InputError, match="n_jobs"):
        searchlight(betas, models, nb, n_jobs=0)


def test_many_models_equal_separate_runs(surface_case):
    betas, models, nb = surface_case
    together = searchlight(betas, {"a": models[0], "b": models[1], "c": models[2]}, nb)
    for m, model in enumerate(models):
        np.testing.assert_allclose(together[m], searchlight(betas, model, nb)[0], atol=1e-6)


def test_equals_rsatoolbox_searchlight(ball_mask):
    sl = pytest.importorskip("rsatoolbox.util.searchlight")
    from rsatoolbox.inference import eval_fixed
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    rng = np.random.default_rng(5)
    centres, neighbours = sl.get_volume_searchlight(ball_mask, radius=2.5, threshold=0.5)
    n = 20
    data = rng.standard_normal((n, ball_mask.size))
    model_rdm = compute_rdm(rng.standard_normal((n, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sl_rdms = sl.get_searchlight_RDMs(
            data, centres, neighbours, np.arange(n), method="correlation", verbose=False
        )
        evals = sl.evaluate_models_searchlight(
            sl_rdms, ModelFixed("m", RDMs(model_rdm[None])), eval_fixed, method="corr"
        )
    theirs = np.array([e.evaluations.ravel()[0] for e in evals])
    from brainalign.rsa import Neighbourhoods

    nb = Neighbourhoods.from_lists([np.sort(np.asarray(x)) for x in neighbours], ball_mask.size)
    ours = searchlight(data.astype(np.float32), model_rdm, nb)[0]
    assert np.abs(ours - theirs).max() < 1e-5


def test_nan_units_dropped_per_centre(surface_case):
    betas, models, nb = surface_case
    bad = betas.copy()
    bad[:, [3, 50, 51]] = np.nan
    bad[7, 100] = np.nan  # one NaN image is enough to drop the unit, as the paper does
    got = searchlight(bad, models, nb, dtype="float64")
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, brute_force(bad, models, nb), atol=1e-10)


def test_too_few_units_gives_nan_with_warning(make_mesh):
    coords, faces = make_mesh()
    nb = surface_neighbourhoods((coords, faces), radius=0.5, cache=False)  # one vertex each
    betas = np.random.default_rng(0).standard_normal((10, nb.n_units)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="fewer than 2 valid units"):
        got = searchlight(betas, betas[:, :5], nb)
    assert np.isnan(got).all()


def test_constant_image_pattern_documented(volume_case):
    betas, models, nb = volume_case
    b = betas.copy().astype(np.float64)
    b[4] = 2.5  # image 4 constant everywhere: its correlation with every image is taken as 0
    got = searchlight(b, models, nb, dtype="float64")
    expected = np.zeros_like(got)
    for c in range(len(nb)):
        X = b[:, nb[c]]
        Z = X - X.mean(1, keepdims=True)
        norm = np.linalg.norm(Z, axis=1)
        Z = np.divide(Z, norm[:, None], out=np.zeros_like(Z), where=norm[:, None] > 1e-8)
        brain = 1 - (Z @ Z.T)[np.triu_indices(len(b), 1)]
        for m, model in enumerate(models):
            mod = compute_rdm(model) if model.ndim == 2 else model
            expected[m, c] = compare_rdms(brain, mod)
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_checkpoint_resume(surface_case, tmp_path):
    betas, models, nb = surface_case
    full = searchlight(betas, models, nb, checkpoint_dir=tmp_path, chunk_size=50)
    folder = next(tmp_path.glob("searchlight_*"))
    chunks = sorted(folder.glob("chunk_*.npy"))
    assert len(chunks) == -(-len(nb) // 50)
    # a rerun reads the chunks: prove it by planting a marker in one of them
    marked = np.load(chunks[1])
    marked[:] = 7.0
    np.save(chunks[1], marked)
    chunks[2].unlink()  # as if killed before this chunk was written
    again = searchlight(betas, models, nb, checkpoint_dir=tmp_path, chunk_size=50)
    assert (again == 7.0).sum() == marked.size
    changed = again != 7.0
    np.testing.assert_allclose(again[changed], full[changed], atol=1e-12)
    # other inputs never reuse these chunks
    other = searchlight(betas + 1.0, models, nb, checkpoint_dir=tmp_path, chunk_size=50)
    assert not (other == 7.0).any()


def test_bad_inputs(surface_case):
    betas, models, nb = surface_case
    with pytest.raises(InputError, match="units"):
        searchlight(betas[:, :-1], models, nb)
    with pytest.raises(InputError, match="betas have 40 images"):
        searchlight(betas, compute_rdm(np.random.default_rng(0).standard_normal((39, 3))), nb)
    with pytest.raises(InputError, match="subsets"):
        searchlight(betas, models, nb, mode="subsets")
    with pytest.raises(InputError, match="method"):
        searchlight(betas, models, nb, method="kendall")
    with pytest.raises(InputError, match="rdm_free"):
        searchlight(betas, models, nb, method="spearman", path="rdm_free")
    with pytest.raises(InputError, match="constant"):
        searchlight(betas, np.ones((40, 3)), nb)
    with pytest.raises(InputError, match="min_units"):
        searchlight(betas, models, nb, min_units=1)
    with pytest.raises(InputError, match="batch_size"):
        searchlight(betas, models, nb, batch_size=0)
    with pytest.raises(TypeError):
        searchlight(betas, models, nb, "pearson")  # the options are keyword-only


@pytest.mark.parametrize("backend", BACKENDS)
def test_wide_centres_use_the_n_space_route(backend):
    """Centres wider than the number of images take the n × n Gram route; same numbers."""
    rng = np.random.default_rng(8)
    n, U = 15, 400
    betas = rng.standard_normal((n, U))
    from brainalign.rsa import Neighbourhoods

    nb = Neighbourhoods.from_lists([np.arange(s, s + 60) for s in range(0, 300, 25)], U)
    models = [
        rng.standard_normal((n, 4)),
        rng.standard_normal((n, 40)),
        compute_rdm(rng.standard_normal((n, 3))),
    ]
    expected = brute_force(betas, models, nb)
    got = searchlight(betas, models, nb, backend=backend, dtype="float64")
    np.testing.assert_allclose(got, expected, atol=1e-10)
