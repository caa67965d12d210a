"""In-silico contrasts: planted selectivity recovered, statistics equal scipy's."""

import numpy as np
import pytest
from scipy import stats

from brainalign.encoding import (
    DEFAULT_SENTENCES,
    RidgeEncoder,
    insilico_contrast,
    paper_contrasts,
    predict_maps,
    sentence_vector,
)
from brainalign.errors import InputError


def test_paper_sentences_built_in():
    assert set(DEFAULT_SENTENCES) == {"people", "places", "food"}
    assert all(len(v) == 5 and len(set(v)) == 5 for v in DEFAULT_SENTENCES.values())


def _models(rng, encoder, n_subjects=5, n_units=40):
    """Encoders trained on data where units 0-9 respond to 'people' words, 10-19 to 'food'."""
    people = sentence_vector("people", encoder)
    food = sentence_vector("food", encoder)
    models = []
    for _ in range(n_subjects):
        E = rng.standard_normal((200, encoder.dim)).astype(np.float32) / np.sqrt(encoder.dim)
        W = 0.2 * rng.standard_normal((encoder.dim, n_units))
        W[:, :10] += 3 * people[:, None]
        W[:, 10:20] += 3 * food[:, None]
        Y = E @ W + 0.05 * rng.standard_normal((200, n_units))
        models.append(RidgeEncoder(alphas=np.logspace(-3, 2, 6)).fit(E, Y))
    return models


def test_contrast_recovers_planted_selectivity(rng, bow_encoder):
    models = _models(rng, bow_encoder)
    res = paper_contrasts(models, bow_encoder)
    pp = res["people-places"]
    assert np.all(pp.t[:10] > 0) and pp.significant()[:10].all()
    fp = res["food-people"]
    assert np.all(fp.mean[10:20] > 0) and np.all(fp.mean[:10] < 0)
    # the statistics are the paired one-sample t-test of the per-subject differences
    diff = predict_maps(models, sentence_vector("food", bow_encoder)) - predict_maps(
        models, sentence_vector("people", bow_encoder)
    )
    t, p = stats.ttest_1samp(diff, 0, axis=0)
    np.testing.assert_allclose(fp.t, t, rtol=1e-4)
    np.testing.assert_allclose(fp.p, p, rtol=1e-3, atol=1e-12)


def test_user_sentences_and_vectors(rng, bow_encoder):
    models = _models(rng, bow_encoder, n_subjects=3)
    res = insilico_contrast(models, ["A man and a woman talking."], "places", encoder=bow_encoder)
    assert res.differences.shape == (3, 40)
    v = sentence_vector(["A man and a woman talking."], bow_encoder)
    res2 = insilico_contrast(models, v, sentence_vector("places", bow_encoder))
    np.testing.assert_allclose(res.t, res2.t)
    with pytest.raises(InputError, match="encoder"):
        insilico_contrast(models, ["a dog"], "food")
    with pytest.raises(InputError, match="built-in"):
        sentence_vector("animals", bow_encoder)
    with pytest.raises(InputError, match="at least 2"):
        insilico_contrast(models[:1], v, v)


# ------------------------------------------------------------------ sentence sets from a file
def test_the_papers_own_sentences_read_from_its_json(shared_data):
    from brainalign.encoding import read_sentence_sets

    sets = read_sentence_sets(shared_data / "visuo_llm_captions" / "insilico_sentences.json")
    assert {"people", "places", "food"} <= set(sets) and "_source" not in sets
    assert all(len(sets[k]) == 5 for k in ("people", "places", "food"))
    assert sets["people"][0] == "Man with a beard smiling at the camera."


def test_sentence_sets_from_tsv_and_bad_files(tmp_path):
    import pytest

    from brainalign.encoding import read_sentence_sets
    from brainalign.errors import InputError

    tsv = tmp_path / "s.tsv"
    tsv.write_text("category\tsentence\npeople\tA man.\npeople\tA woman.\nfood\tA pie.\n")
    assert read_sentence_sets(tsv) == {"people": ["A man.", "A woman."], "food": ["A pie."]}
    bad = tmp_path / "bad.tsv"
    bad.write_text("cat\tsent\npeople\tA man.\n")
    with pytest.raises(InputError, match="bad.tsv: expected a tab-separated header"):
        read_sentence_sets(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="broken.json: not valid JSON"):
        read_sentence_sets(broken)
    empty = tmp_path / "empty.json"
    empty.write_text('{"people": []}')
    with pytest.raises(InputError, match="empty.json: no sentences"):
        read_sentence_sets(empty)
