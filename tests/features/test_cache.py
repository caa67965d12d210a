"""On-disk caches: the per-model text-embedding store and the feature-space cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainalign.errors import IntegrityError
from brainalign.features import EmbeddingStore, FeatureSpaceCache
from brainalign.features.cache import text_keys


def test_embedding_store_interrupted_and_concurrent_writers(tmp_path):
    rng = np.random.default_rng(0)
    a = EmbeddingStore("toy@1", 4, root=tmp_path)
    b = EmbeddingStore("toy@1", 4, root=tmp_path)  # a second process, in effect
    ka, kb = text_keys(["x", "y"]), text_keys(["z"])
    va, vb = rng.random((2, 4), dtype=np.float32), rng.random((1, 4), dtype=np.float32)
    a.add(ka, va)
    b.add(kb, vb)
    # a killed writer leaves vectors without their keys file: ignored
    np.save(a.path / "999-killed.vecs.npy", np.ones((3, 4), np.float32))
    got, found = a.lookup(text_keys(["x", "z", "w"]))
    assert found.tolist() == [True, True, False]
    np.testing.assert_array_equal(got[0], va[0])
    np.testing.assert_array_equal(got[1], vb[0])
    a.merge()
    assert len(list(a.path.glob("*.keys.npy"))) == 1
    got, found = b.lookup(text_keys(["y", "z"]))
    assert found.all()
    np.testing.assert_array_equal(got, np.stack([va[1], vb[0]]))
    other = EmbeddingStore("toy@2", 4, root=tmp_path)  # another model never sees these rows
    assert not other.lookup(ka)[1].any()


def test_store_lookup_matches_a_dict(tmp_path):
    rng = np.random.default_rng(1)
    texts = [f"caption number {i}" for i in range(3000)]
    vecs = rng.random((3000, 3), dtype=np.float32)
    store = EmbeddingStore("toy@3", 3, root=tmp_path)
    for lo in range(0, 3000, 700):
        store.add(text_keys(texts[lo : lo + 700]), vecs[lo : lo + 700])
    queries = [texts[i] for i in rng.integers(0, 3000, 500)] + ["never seen"]
    got, found = EmbeddingStore("toy@3", 3, root=tmp_path).lookup(text_keys(queries))
    ref = dict(zip(texts, vecs, strict=True))
    assert found.tolist() == [True] * 500 + [False]
    np.testing.assert_array_equal(got[:500], np.stack([ref[q] for q in queries[:500]]))
    assert len(store) == 3000


def test_store_rejects_a_wrong_width(tmp_path):
    EmbeddingStore("toy@4", 4, root=tmp_path).add(text_keys(["a"]), np.ones((1, 4), np.float32))
    with pytest.raises(IntegrityError, match="delete"):
        EmbeddingStore("toy@4", 5, root=tmp_path).lookup(text_keys(["a"]))


def test_feature_space_cache_roundtrip_and_corruption(tmp_path):
    cache = FeatureSpaceCache(tmp_path)
    assert cache.load("space", "k1") is None
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    folder = cache.save("space", "k1", X, {"params": {"a": 1}})
    got, meta = cache.load("space", "k1")
    np.testing.assert_array_equal(got, X)
    assert meta["params"] == {"a": 1}
    (folder / "meta.json").write_text(json.dumps({"shape": [4, 2]}))
    # a damaged entry is named, removed and recomputed by the caller (issue 23), never used
    with pytest.warns(UserWarning, match=r"meta\.json says shape \[4, 2\].*computed again"):
        assert cache.load("space", "k1") is None
    assert not folder.exists()
