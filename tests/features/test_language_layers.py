"""Every hidden layer of a sentence encoder as a feature space (``mpnet@k``): the last layer is
plain sentence-transformers, the others Hugging Face's hidden states pooled the same way, all
from one forward pass and cached per layer."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.datasets import Stimuli
from brainalign.errors import InputError
from brainalign.features import (
    SentenceEncoder,
    caption_embeddings,
    caption_layer_embeddings,
    encode_layers,
    feature_space,
    layer_space_names,
    list_feature_spaces,
)
from brainalign.features.language_layers import embed_text_layers, parse_layer_space

TEXTS = [
    "A brown dog lies on an old sofa.",
    "Two cats sleep in the sun on a red blanket near the window.",
    "a man rides a wave",
]


@pytest.fixture(scope="module")
def layers(mpnet):
    """Every layer of TEXTS, computed once for the module."""
    return encode_layers(TEXTS, mpnet)


def _reference_layers(encoder, texts):
    """Hugging Face's hidden states of one padded batch, mean-pooled over the attention mask
    and L2-normalised (the model's head), written out here."""
    import torch

    st = encoder.model
    tok = st.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        out = st[0].auto_model(**tok, output_hidden_states=True)
    mask = tok["attention_mask"].unsqueeze(-1).float()
    pooled = [(h * mask).sum(1) / mask.sum(1) for h in out.hidden_states]
    return np.stack([torch.nn.functional.normalize(p, dim=1).numpy() for p in pooled])


def test_last_layer_is_plain_sentence_transformers_and_others_are_hidden_states(mpnet, layers):
    assert layers.shape == (13, len(TEXTS), 768) and layers.dtype == np.float32
    plain = mpnet.model.encode(TEXTS, convert_to_numpy=True, batch_size=len(TEXTS))
    np.testing.assert_allclose(layers[-1], plain, atol=1e-5)
    np.testing.assert_allclose(layers, _reference_layers(mpnet, TEXTS), atol=1e-5)
    # the layers differ (a layer index that were ignored would give 13 equal copies)
    assert not np.allclose(layers[0], layers[6], atol=1e-2)


def test_one_pass_gives_every_layer_and_the_rest_is_read_from_the_cache(mpnet):
    texts = [f"{t} (cache test)" for t in TEXTS]
    before = mpnet.n_forward
    first = embed_text_layers(texts, mpnet, layers=[12])
    passes = mpnet.n_forward - before
    assert 1 <= passes <= len(texts)  # one forward per length batch, all layers at once
    rest = embed_text_layers(texts, mpnet, layers=range(13))
    assert mpnet.n_forward - before == passes  # 13 layers: no further pass
    np.testing.assert_array_equal(rest[12], first[12])
    assert not np.allclose(rest[4], rest[12], atol=1e-2)


def test_layer_spaces_are_registered_and_pool_captions_per_image(mpnet, layers):
    assert layer_space_names("mpnet") == [f"mpnet@{k}" for k in range(13)]
    assert set(layer_space_names("mpnet")) <= set(list_feature_spaces())
    assert parse_layer_space("mpnet@6") == ("mpnet", 6) and parse_layer_space("mpnet@13") is None
    stim = Stimuli(image_ids=np.array([3, 7]), captions=[TEXTS[:2], TEXTS[2:]])
    by_layer = caption_layer_embeddings(stim.captions, mpnet, layers=[2, 12])
    np.testing.assert_allclose(by_layer[2][0], layers[2, :2].mean(0), atol=1e-6)
    np.testing.assert_allclose(by_layer[2][1], layers[2, 2], atol=1e-6)
    np.testing.assert_allclose(by_layer[12], caption_embeddings(stim.captions, mpnet), atol=1e-5)
    fs = feature_space("mpnet@2", stim, encoder=mpnet)
    assert fs.X.shape == (2, 768)
    np.testing.assert_allclose(fs.X, by_layer[2], atol=1e-6)


def test_minilm_last_layer(mpnet):
    minilm = SentenceEncoder("all-MiniLM-L6-v2")
    layers = encode_layers(TEXTS, minilm)
    assert layers.shape == (7, len(TEXTS), 384)
    np.testing.assert_allclose(layers[-1], minilm.encode(TEXTS), atol=1e-5)


def test_bad_layers(mpnet):
    with pytest.raises(InputError, match="layers 0–12"):
        embed_text_layers(TEXTS, mpnet, layers=[13])
    with pytest.raises(InputError, match="family"):
        layer_space_names("glove")
