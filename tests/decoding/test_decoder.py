"""EmbeddingDecoder: conformance, dual solver, decoding a virtual NSD."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from brainalign.decoding import EmbeddingDecoder, decode_subject, select_units
from brainalign.errors import InputError


# All applicable checks; check_array_api_input skips itself (SCIPY_ARRAY_API unset).
@parametrize_with_checks([EmbeddingDecoder()])
def test_sklearn_conformance(estimator, check):
    check(estimator)


def test_decoder_many_units_equals_sklearn_and_identifies(rng):
    n, units, dim = 120, 600, 24  # more units than images: the dual (kernel) solver
    E = rng.standard_normal((n, dim)).astype(np.float32)
    brain = (E @ rng.standard_normal((dim, units)) + 2.0 * rng.standard_normal((n, units))).astype(
        np.float32
    )
    dec = EmbeddingDecoder(alphas=np.logspace(0, 5, 6)).fit(brain[:90], E[:90])
    for j in (0, 5):
        ref = Ridge(alpha=dec.alpha_[j]).fit(brain[:90].astype(float), E[:90, j].astype(float))
        np.testing.assert_allclose(
            dec.predict(brain[90:])[:, j],
            ref.predict(brain[90:].astype(float)),
            rtol=1e-3,
            atol=1e-3,
        )
    scores = dec.score(brain[90:], E[90:])
    assert scores.shape == (30,) and scores.mean() > 0.5


def test_decode_virtual_nsd(virtual_nsd_root, bow_encoder):
    from brainalign.datasets import load_nsd, load_stimuli

    sub = load_nsd(virtual_nsd_root, 1)
    stim = load_stimuli(virtual_nsd_root, sub.image_ids)
    E = np.stack([bow_encoder.encode(caps).mean(0) for caps in stim.captions])
    res = decode_subject(sub, E, alphas=np.logspace(0, 6, 7))
    assert "2" in res.identification and "all" in res.identification
    two = res.identification["2"]
    allway = res.identification["all"]
    assert two["top1"] > 0.7  # chance 0.5
    assert allway["top1"] > 5 * allway["chance_top1"]
    assert res.scores.shape == (sub.shared.sum(),)
    # the units are all streams ROIs, NaN units dropped
    assert np.isfinite(np.asarray(sub.betas[:, res.units])).all()
    with pytest.raises(InputError, match="not among"):
        select_units(sub, rois=["fusiform"])


def test_nearest_training_captions(bow_encoder):
    from brainalign.decoding import nearest_training_captions

    train = [
        ["a dog on a beach", "a brown dog running"],
        ["a plate of pasta", "spaghetti with sauce"],
    ]
    pred = bow_encoder.encode(["spaghetti with sauce", "a dog on a beach"])
    assert nearest_training_captions(pred, train, encoder=bow_encoder) == [
        "spaghetti with sauce",
        "a dog on a beach",
    ]
    means = np.stack([bow_encoder.encode(c).mean(0) for c in train])
    assert nearest_training_captions(means[::-1], train, train_embeddings=means) == [
        "a plate of pasta",
        "a dog on a beach",
    ]
    with pytest.raises(InputError, match="encoder"):
        nearest_training_captions(pred, train)
