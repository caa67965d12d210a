"""Sentence encoders and the caption → image rule on real COCO captions."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from brainalign.errors import BrainAlignError, InputError, IntegrityError, ModelNotFoundError
from brainalign.features import (
    MPNET_SHA256,
    EmbeddingStore,
    SentenceEncoder,
    caption_embeddings,
    embed_texts,
    mpnet_folder,
)


@pytest.fixture(scope="session")
def val_captions(shared_data) -> dict[int, list[str]]:
    """COCO val2017 captions by image id (25,014 captions, 5–7 per image)."""
    data = json.loads((shared_data / "coco_val2017_captions/captions_val2017.json").read_text())
    out: dict[int, list[str]] = {}
    for a in data["annotations"]:
        out.setdefault(a["image_id"], []).append(a["caption"])
    return out


@pytest.fixture(scope="session")
def odd_images(val_captions) -> list[list[str]]:
    """Real images with 5, 6 and 7 captions."""
    by_count = {}
    for caps in val_captions.values():
        by_count.setdefault(len(caps), caps)
    return [by_count[5], by_count[6], by_count[7]]


@pytest.fixture(scope="session")
def odd_embeddings(mpnet, odd_images) -> np.ndarray:
    """``mpnet.encode`` of every caption of ``odd_images`` (one forward run for several tests)."""
    return mpnet.encode([c for caps in odd_images for c in caps])


def test_mpnet_offline_matches_sentence_transformers(mpnet, odd_images, odd_embeddings):
    from sentence_transformers import SentenceTransformer

    texts = [c for caps in odd_images for c in caps]
    assert mpnet.dim == 768
    assert mpnet.identity.startswith("all-mpnet-base-v2@") and MPNET_SHA256[:16] in mpnet.identity
    ours = odd_embeddings
    ref = SentenceTransformer(mpnet.path, device="cpu").encode(texts)
    assert ours.dtype == np.float32 and ours.shape == (len(texts), 768)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_model_loaded_once_per_process(mpnet):
    again = SentenceEncoder("all-mpnet-base-v2")
    assert again.model is mpnet.model
    assert again.identity == mpnet.identity


def test_width_from_the_folder_equals_the_models(mpnet):
    from brainalign.features.sentence import _folder_dim, resolve_model

    for enc in (mpnet, SentenceEncoder("all-MiniLM-L6-v2")):
        folder, _ = resolve_model(enc.name)
        assert _folder_dim(folder) == enc.dim == enc.model.get_embedding_dimension()


def test_folder_width_from_dense_and_unknown_modules(tmp_path):
    from brainalign.features.sentence import _folder_dim

    def module(i, kind, path, cfg=None):
        if cfg is not None:
            (tmp_path / path).mkdir()
            (tmp_path / path / "config.json").write_text(json.dumps(cfg))
        return {
            "idx": i,
            "name": str(i),
            "path": path,
            "type": f"sentence_transformers.models.{kind}",
        }

    pooling = {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True,
               "pooling_mode_max_tokens": True}  # fmt: skip
    modules = [module(0, "Transformer", ""), module(1, "Pooling", "1_Pooling", pooling)]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert _folder_dim(tmp_path) == 768  # two pooling modes side by side
    modules.append(module(2, "Dense", "2_Dense", {"in_features": 768, "out_features": 256}))
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert _folder_dim(tmp_path) == 256
    modules.append(module(3, "LayerNorm", "3_LayerNorm"))
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert _folder_dim(tmp_path) is None  # not known here: the loaded model is asked


def test_cached_texts_need_no_model(mpnet, monkeypatch, tmp_path):
    """A rerun (or a worker process) whose texts are all in the cache never loads the model."""
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path))
    texts = ["A dog runs on the beach.", "Two people ride bicycles."]
    first = embed_texts(texts, mpnet)
    again = SentenceEncoder("all-mpnet-base-v2")
    np.testing.assert_array_equal(embed_texts(texts, again), first)
    assert again._model is None and again.n_forward == 0


def test_related_captions_closer_than_unrelated(mpnet, val_captions):
    images = [
        val_captions[i][:2] for i in sorted(val_captions)[:6]
    ]  # 6 real images, 2 captions each
    emb = mpnet.encode([c for caps in images for c in caps]).reshape(6, 2, -1)
    same = np.einsum("id,id->i", emb[:, 0], emb[:, 1])
    sims = emb[:, 0] @ emb[:, 1].T
    other = sims[~np.eye(6, dtype=bool)].reshape(6, 5)
    assert (same > other.max(axis=1)).sum() >= 5  # paraphrases beat every other image's caption
    assert same.mean() > other.mean() + 0.2


def test_caption_embeddings_is_plain_mean(mpnet, odd_images, odd_embeddings):
    E = caption_embeddings(odd_images, mpnet)
    assert E.shape == (3, 768) and E.dtype == np.float32
    rows = np.split(odd_embeddings.astype(np.float64), np.cumsum([len(c) for c in odd_images])[:-1])
    for row, ref in zip(E, rows, strict=True):
        assert len(ref) in (5, 6, 7)
        np.testing.assert_allclose(row, ref.mean(0), atol=1e-5)
    # the paper's rule: not re-normalised
    assert np.all(np.linalg.norm(E, axis=1) < 0.999)


class _Counting:
    """Wraps an encoder's forward path and records the texts it embeds."""

    def __init__(self, encoder, monkeypatch):
        self.texts: list[str] = []
        real = encoder._encode_unique

        def spy(texts, verbose=None):
            self.texts.extend(texts)
            return real(texts, verbose=verbose)

        monkeypatch.setattr(encoder, "_encode_unique", spy)


def test_cache_second_call_runs_no_model_and_changed_caption_recomputes_only_it(
    mpnet, val_captions, monkeypatch, tmp_path
):
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path))
    captions = [val_captions[i][:3] for i in sorted(val_captions)[10:13]]
    spy = _Counting(mpnet, monkeypatch)
    first = caption_embeddings(captions, mpnet)
    assert len(spy.texts) == 9
    spy.texts.clear()
    second = caption_embeddings(captions, mpnet)
    assert spy.texts == []
    np.testing.assert_array_equal(first, second)
    changed = [list(c) for c in captions]
    changed[1][2] = "A purple giraffe plays the violin on the moon."
    third = caption_embeddings(changed, mpnet)
    assert spy.texts == ["A purple giraffe plays the violin on the moon."]
    np.testing.assert_array_equal(third[[0, 2]], first[[0, 2]])
    assert not np.allclose(third[1], first[1])


def test_duplicates_embedded_once(mpnet, monkeypatch, tmp_path):
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path))
    spy = _Counting(mpnet, monkeypatch)
    caps = [
        ["A dog on a beach.", "A dog on a beach."],
        ["A dog on a beach.", "Two cats on a sofa."],
    ]
    E = caption_embeddings(caps, mpnet, cache=False)
    assert sorted(spy.texts) == ["A dog on a beach.", "Two cats on a sofa."]
    ref = mpnet.encode(["A dog on a beach.", "Two cats on a sofa."])
    np.testing.assert_allclose(E[0], ref[0], atol=1e-6)
    np.testing.assert_allclose(E[1], ref.mean(0), atol=1e-6)


def test_length_batches_bound_padding(mpnet, monkeypatch):
    lengths = np.array([5, 9, 5, 9, 7, 5, 12, 11, 12, 30])
    monkeypatch.setattr(mpnet, "pad_slack", 0.0)
    batches = mpnet._batches(lengths)
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    for b in batches:
        assert len(set(lengths[b].tolist())) == 1  # no padding at all
    monkeypatch.setattr(mpnet, "pad_slack", 0.1)
    batches = mpnet._batches(lengths)
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    for b in batches:
        assert lengths[b].max() * len(b) <= 1.1 * lengths[b].sum()
    assert len(batches) < len(set(lengths.tolist()))  # near lengths merged


def test_embed_texts_resumes_in_chunks(mpnet, monkeypatch, tmp_path):
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path))
    texts = ["a red bus", "a green tram", "a yellow taxi"]
    out = embed_texts(texts, mpnet, chunk_size=1)
    store = EmbeddingStore(mpnet.identity, mpnet.dim)
    assert len(list(store.path.glob("*.keys.npy"))) == 3  # one committed shard per chunk
    np.testing.assert_allclose(out, mpnet.encode(texts), atol=1e-6)


def test_minilm_from_package(odd_images):
    enc = SentenceEncoder("all-MiniLM-L6-v2")
    assert enc.dim == 384 and enc.identity.startswith("all-MiniLM-L6-v2@")
    E = caption_embeddings(odd_images[:1], enc)
    assert E.shape == (1, 384)


def test_local_folder_and_corrupt_weights(tmp_path):
    from brainalign.features.sentence import _minilm_folder

    folder = tmp_path / "my-minilm"
    shutil.copytree(_minilm_folder(), folder)
    good = SentenceEncoder(folder)
    assert good.name == "my-minilm" and good.dim == 384
    with open(folder / "model.safetensors", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00corrupt")
    with pytest.raises(IntegrityError, match="expected sha256"):
        SentenceEncoder(folder, sha256=good.identity.split("@")[1] + "0" * 48)


def test_corrupt_mpnet_cache_folder_is_reported(tmp_path):
    folder = mpnet_folder(cache_dir=tmp_path)
    assert mpnet_folder(cache_dir=tmp_path) == folder  # second call: no re-extraction
    with open(folder / "model.safetensors", "r+b") as f:
        f.seek(12345)
        f.write(b"\xff\xfe")
    with pytest.raises(IntegrityError, match="corrupt"):
        mpnet_folder(cache_dir=tmp_path)


@pytest.mark.parametrize(
    "captions, match",
    [
        ([["A dog."], []], r"captions_per_image\[1\]: image has no captions"),
        ([["A dog.", ""]], r"captions_per_image\[0\]\[1\]: empty text"),
        ([["A dog.", 3]], r"captions_per_image\[0\]\[1\]: expected a string, got int"),
        (["A dog.", "A cat."], "got a single string"),
        ("A dog.", "expected a list"),
        ([], "no images"),
    ],
)
def test_bad_captions(mpnet, captions, match):
    with pytest.raises(InputError, match=match):
        caption_embeddings(captions, mpnet)


def test_missing_model_names_the_package(tmp_path):
    with pytest.raises(ModelNotFoundError, match="pip install"):
        SentenceEncoder("no-such-model-xyz")
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(ModelNotFoundError, match="sentence-transformers model folder"):
        SentenceEncoder(tmp_path / "notamodel")
    with pytest.raises(BrainAlignError):
        SentenceEncoder("")
