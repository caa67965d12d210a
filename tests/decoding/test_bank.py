"""Caption bank: build from real corpora, exact search, integrity, resume, encoder identity."""

import json

import numpy as np
import pytest

from brainalign.decoding import CaptionBank, read_corpus, search_embeddings
from brainalign.errors import DataFormatError, InputError, IntegrityError


@pytest.fixture(scope="session")
def gcc_captions(shared_data):
    return read_corpus(
        shared_data / "google_conceptual_captions_val" / "Validation_GCC-1.1.0-Validation.tsv"
    )


def test_read_corpus_formats(shared_data, tmp_path):
    gcc = read_corpus(
        shared_data / "google_conceptual_captions_val" / "Validation_GCC-1.1.0-Validation.tsv"
    )
    assert len(gcc) > 15000 and all("\t" not in c and "http" not in c for c in gcc[:100])
    coco = read_corpus(shared_data / "coco_val2017_captions" / "captions_val2017.json")
    assert 24000 < len(coco) <= 25014
    txt = tmp_path / "c.txt"
    txt.write_text("a dog\n\n  a   cat \na dog\n")
    assert read_corpus(txt) == ["a dog", "a cat"]
    with pytest.raises(DataFormatError, match="not found"):
        read_corpus(tmp_path / "missing.tsv")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataFormatError, match="could not read captions"):
        read_corpus(bad)


def test_bank_real_mpnet_retrieves_own_caption(mpnet, gcc_captions, tmp_path):
    captions = gcc_captions[:300]
    bank = CaptionBank.build(captions, mpnet, tmp_path / "bank", dtype="float16")
    assert len(bank) == 300 and bank.dim == mpnet.dim and bank.identity == mpnet.identity
    bank = CaptionBank.open(tmp_path / "bank")
    own = mpnet.encode(captions[:20])
    scores, idx = bank.search(own, k=5, encoder=mpnet)
    np.testing.assert_array_equal(idx[:, 0], np.arange(20))
    assert np.all(scores[:, 0] > 0.99) and np.all(np.diff(scores, axis=1) <= 0)
    # text queries, and excluding the exact captions (e.g. the training captions)
    assert bank.search_captions(captions[3], k=1, encoder=mpnet)[0][0] == captions[3]
    _, idx2 = bank.search(own, k=5, exclude=captions[:20], encoder=mpnet)
    assert not np.isin(idx2, np.arange(20)).any()


def test_search_equals_brute_force_float16_close(rng):
    E = rng.standard_normal((5000, 64)).astype(np.float32)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    E[1000:1500] = E[1000] + 0.05 * E[1000:1500]  # near-duplicates crowd the bf16 window
    Q = E[rng.choice(5000, 40)] + 0.1 * rng.standard_normal((40, 64)).astype(np.float32)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    En = E / np.linalg.norm(E, axis=1, keepdims=True)
    S = Qn @ En.T
    ref = np.argsort(-S, axis=1, kind="stable")[:, :5]
    for method in ("float32", "bf16"):
        s, i = search_embeddings(En, Q, k=5, method=method, block_size=700)
        np.testing.assert_array_equal(i, ref)
        np.testing.assert_allclose(s, np.take_along_axis(S, ref, 1), atol=1e-5)
    bank16 = CaptionBank.from_embeddings(E, [f"c{j}" for j in range(5000)], "x", dtype="float16")
    bank32 = CaptionBank.from_embeddings(E, [f"c{j}" for j in range(5000)], "x", dtype="float32")
    s16, i16 = bank16.search(Q, k=5)
    s32, i32 = bank32.search(Q, k=5)
    np.testing.assert_array_equal(i16[:, 0], i32[:, 0])
    assert np.abs(s16 - s32).max() < 1e-3


def test_bank_refuses_other_encoder_and_corrupt_file(bow_encoder, tmp_path):
    from tests.conftest import BagOfWordsEncoder

    caps = [
        f"a photo of {w} number {k}" for k, w in enumerate(["dogs", "cats", "cars", "trees"] * 5)
    ]
    bank = CaptionBank.build(caps, bow_encoder, tmp_path / "b", dtype="float32", chunk_size=7)
    other = BagOfWordsEncoder(dim=32, seed=1)
    with pytest.raises(InputError, match="bank was built with"):
        bank.search(["a photo of dogs"], encoder=other)
    with pytest.raises(InputError, match="bank was built with"):
        bank.search(np.zeros((1, 32)), identity=other.identity)
    with pytest.raises(InputError, match=r"\(m, 32\)"):
        bank.search(np.zeros((1, 31)))
    with pytest.raises(InputError, match="already exists"):
        CaptionBank.build(caps, bow_encoder, tmp_path / "b")
    # corrupt the embeddings: the stored hash no longer matches
    E = np.load(tmp_path / "b" / "embeddings.npy", mmap_mode="r+")
    E[0, 0] += 0.5
    E.flush()
    del E
    with pytest.raises(IntegrityError, match="sha256"):
        CaptionBank.open(tmp_path / "b")
    meta = tmp_path / "b" / "meta.json"
    meta.write_text("{}")
    with pytest.raises(DataFormatError, match="metadata"):
        CaptionBank.open(tmp_path / "b")
    with pytest.raises(DataFormatError, match="not a caption bank"):
        CaptionBank.open(tmp_path / "nothing")


class _FailingEncoder:
    """Wraps an encoder and fails after a number of calls (a killed build)."""

    def __init__(self, inner, fail_after):
        self.inner, self.fail_after, self.calls = inner, fail_after, 0
        self.identity, self.dim = inner.identity, inner.dim

    def encode(self, texts, verbose=None):
        self.calls += 1
        if self.calls > self.fail_after:
            raise KeyboardInterrupt
        return self.inner.encode(texts)


def test_bank_build_resumes(bow_encoder, tmp_path):
    caps = [f"caption number {k} about {w}" for k, w in enumerate(["sea", "hill", "road"] * 10)]
    failing = _FailingEncoder(bow_encoder, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        CaptionBank.build(caps, failing, tmp_path / "bank", chunk_size=4)
    assert not (tmp_path / "bank").exists()
    with pytest.raises(DataFormatError, match="resume"):
        CaptionBank.open(tmp_path / "bank")
    state = json.loads((tmp_path / "bank.partial" / "state.json").read_text())
    assert state["n_done"] == 8
    counting = _FailingEncoder(bow_encoder, fail_after=10**6)
    bank = CaptionBank.build(caps, counting, tmp_path / "bank", chunk_size=4)
    assert counting.calls == 6  # 22 remaining captions in chunks of 4
    ref = CaptionBank.build(caps, bow_encoder, None, dtype="float16")
    np.testing.assert_array_equal(np.asarray(bank.embeddings), ref.embeddings)
    assert not (tmp_path / "bank.partial").exists()
