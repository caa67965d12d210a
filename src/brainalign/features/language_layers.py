"""Every hidden layer of a sentence encoder as a feature space: ``mpnet@0`` … ``mpnet@12``.

A layer's caption embedding is the encoder's own head (its pooling — mean over tokens with the
attention mask for MPNet and MiniLM — and its normalisation, when it has one) applied to that
layer's token states instead of the last layer's; an image's row is the mean of its captions'
embeddings, not re-normalised, as the paper pools the last layer (paper_methods §2). Layer 0 is
the embeddings' output (before the first transformer block); the last layer with the model's
head is the plain sentence embedding (:class:`~brainalign.features.SentenceEncoder.encode`).

One forward pass gives every layer: :func:`embed_text_layers` runs the texts none of the
requested layers has cached, once, and stores every layer's rows (one
:class:`~brainalign.features.cache.EmbeddingStore` per layer), so a profile over 13 layers costs
one pass and its other 12 spaces are cache reads.

>>> enc = SentenceEncoder("all-mpnet-base-v2")
>>> E = caption_layer_embeddings(stim.captions, enc, layers=[0, 6, 12])   # {layer: (n, 768)}
>>> F = feature_space("mpnet@6", stim)                                      # a registered space
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainalign.errors import InputError
from brainalign.features.cache import EmbeddingStore, text_keys
from brainalign.features.sentence import SentenceEncoder, _check_captions, _check_texts, _dedup
from brainalign.features.spaces import register_feature_space
from brainalign.utils import progress

LAYER_SEP = "@"

#: the encoders whose layers are registered feature spaces (``<family>@<layer>``): family →
#: (packaged model, number of transformer layers)
LAYER_FAMILIES: dict[str, tuple[str, int]] = {
    "mpnet": ("all-mpnet-base-v2", 12),
    "minilm": ("all-MiniLM-L6-v2", 6),
}


def layer_space_names(family: str) -> list[str]:
    """The feature spaces of every hidden layer of ``family`` (``["mpnet@0", …, "mpnet@12"]``)."""
    if family not in LAYER_FAMILIES:
        raise InputError(
            f"family: expected one of {sorted(LAYER_FAMILIES)} (sentence encoders read layer by "
            f"layer), got {family!r}"
        )
    return [f"{family}{LAYER_SEP}{k}" for k in range(LAYER_FAMILIES[family][1] + 1)]


def parse_layer_space(name: str) -> tuple[str, int] | None:
    """``(family, layer)`` of a layer space name (``"mpnet@6"`` → ``("mpnet", 6)``), else None."""
    family, sep, layer = str(name).partition(LAYER_SEP)
    if not sep or family not in LAYER_FAMILIES or not layer.isdigit():
        return None
    k = int(layer)
    return (family, k) if k <= LAYER_FAMILIES[family][1] else None


def n_layers(encoder: SentenceEncoder) -> int:
    """Hidden layers of ``encoder`` counted as :func:`encode_layers` returns them: the
    embeddings' output plus one per transformer block."""
    config = getattr(_transformer(encoder), "auto_model", None)
    config = getattr(config, "config", None)
    if config is None or not hasattr(config, "num_hidden_layers"):
        raise InputError(
            f"encoder {encoder.name!r}: its first module is not a Hugging Face transformer with "
            "hidden layers; layer spaces need a sentence-transformers model whose first module "
            "is a Transformer"
        )
    return int(config.num_hidden_layers) + 1


def _transformer(encoder: SentenceEncoder):
    return encoder.model[0]


def encode_layers(
    texts: Sequence[str], encoder: SentenceEncoder, verbose: bool | None = None
) -> np.ndarray:
    """Every hidden layer's embedding of each text, in one forward pass per batch.

    Parameters
    ----------
    texts : sequence of str, length n
    encoder : SentenceEncoder
    verbose : bool, optional
        Progress bar (default: only on a terminal).

    Returns
    -------
    (n_layers, n, dim) float32
        Layer 0 is the embeddings' output, layer ``n_layers - 1`` the last transformer block;
        each through the encoder's head (pooling with the attention mask, then normalisation
        or any other module the model has after its transformer).
    """
    import torch
    from sentence_transformers.util import batch_to_device

    texts = _check_texts(texts, "texts")
    L = n_layers(encoder)
    out = np.empty((L, len(texts), encoder.dim), dtype=np.float32)
    if not texts:
        return out
    model = encoder.model
    head = list(model)[1:]
    bar = progress(total=len(texts), desc=f"layers ({encoder.name})", verbose=verbose, unit="text")
    with torch.inference_mode():
        for idx in encoder._batches(encoder._token_lengths(texts)):
            prepare = getattr(model, "preprocess", None) or model.tokenize
            features = batch_to_device(prepare([texts[i] for i in idx]), model.device)
            states = _hidden_states(model[0], dict(features))
            if len(states) != L:
                raise InputError(
                    f"encoder {encoder.name!r}: {len(states)} hidden states, expected {L}"
                )
            for k, h in enumerate(states):
                f = {**features, "token_embeddings": h}
                for module in head:
                    f = module(f)
                out[k, idx] = f["sentence_embedding"].float().cpu().numpy()
            encoder.n_forward += 1
            bar.update(len(idx))
    bar.close()
    return out


def _hidden_states(transformer, features: dict) -> tuple:
    """The token states of every layer (embeddings first) of a sentence-transformers
    ``Transformer`` module, from the same forward pass it runs for the last layer."""
    out = transformer(features, output_hidden_states=True)
    states = out.get("all_layer_embeddings")
    if states is None:  # releases that do not forward the flag: the Hugging Face model itself
        keys = ("input_ids", "attention_mask", "token_type_ids")
        hf = transformer.auto_model(
            **{k: features[k] for k in keys if k in features},
            output_hidden_states=True,
            return_dict=True,
        )
        states = hf.hidden_states
    return tuple(states)


def layer_identity(encoder: SentenceEncoder, layer: int) -> str:
    """The cache identity of one layer's embeddings (the encoder's weights and the layer)."""
    return f"{encoder.identity}{LAYER_SEP}layer{int(layer)}"


def embed_text_layers(
    texts: Sequence[str],
    encoder: SentenceEncoder,
    layers: Sequence[int],
    cache: bool = True,
    verbose: bool | None = None,
) -> dict[int, np.ndarray]:
    """``{layer: (n, dim) float32}`` for ``texts``, through the persistent per-layer cache.

    Texts that any requested layer lacks are run once (:func:`encode_layers`) and every layer's
    rows are stored, so asking later for other layers of the same texts reads the cache.
    """
    texts = _check_texts(texts, "texts")
    L = n_layers(encoder)
    layers = [int(k) for k in layers]
    bad = [k for k in layers if not 0 <= k < L]
    if bad:
        raise InputError(f"layers: {encoder.name} has layers 0–{L - 1}, got {bad}")
    unique, inverse = _dedup(texts)
    if not cache:
        rows = encode_layers(unique, encoder, verbose=verbose)
        return {k: rows[k][inverse] for k in layers}
    stores = {k: EmbeddingStore(layer_identity(encoder, k), encoder.dim) for k in range(L)}
    keys = text_keys(unique)
    found = {k: stores[k].lookup(keys) for k in layers}
    missing = np.flatnonzero(~np.all([f for _, f in found.values()], axis=0))
    if len(missing):
        rows = encode_layers([unique[i] for i in missing], encoder, verbose=verbose)
        for k in range(L):
            stores[k].add(keys[missing], rows[k])
        for k in layers:
            found[k][0][missing] = rows[k]
    return {k: found[k][0][inverse] for k in layers}


def caption_layer_embeddings(
    captions_per_image: Sequence[Sequence[str]],
    encoder: SentenceEncoder,
    layers: Sequence[int],
    cache: bool = True,
    verbose: bool | None = None,
) -> dict[int, np.ndarray]:
    """Mean caption embedding per image at each of ``layers``: ``{layer: (n_images, dim)}``.

    Each caption is embedded separately at every layer; an image's row is the arithmetic mean
    of its captions' embeddings, not re-normalised (as
    :func:`~brainalign.features.caption_embeddings` for the last layer).
    """
    captions = _check_captions(captions_per_image)
    counts = np.fromiter((len(c) for c in captions), dtype=np.int64, count=len(captions))
    flat = [t for caps in captions for t in caps]
    rows = embed_text_layers(flat, encoder, layers, cache=cache, verbose=verbose)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return {
        k: (np.add.reduceat(r.astype(np.float64), starts, axis=0) / counts[:, None]).astype(
            np.float32
        )
        for k, r in rows.items()
    }


def _layer_space(family: str, layer: int):
    model = LAYER_FAMILIES[family][0]

    def build(stimuli, encoder=model, device="cpu", verbose=None):
        from brainalign.features.spaces import _captions, _encoder

        enc = _encoder(encoder, device)
        return caption_layer_embeddings(_captions(stimuli), enc, [layer], verbose=verbose)[layer]

    build.__doc__ = (
        f"{model} hidden layer {layer} ({'embeddings' if layer == 0 else f'block {layer}'}) "
        "with the model's pooling, mean over the image's captions"
    )
    return build


for _family, (_model, _n) in LAYER_FAMILIES.items():
    for _k in range(_n + 1):
        register_feature_space(f"{_family}{LAYER_SEP}{_k}", _layer_space(_family, _k))


__all__ = [
    "LAYER_FAMILIES",
    "caption_layer_embeddings",
    "embed_text_layers",
    "encode_layers",
    "layer_space_names",
    "n_layers",
    "parse_layer_space",
]
