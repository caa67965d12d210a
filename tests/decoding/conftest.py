import zlib

import numpy as np
import pytest


class BagOfWordsEncoder:
    """A small deterministic sentence encoder for tests: mean of per-word random unit vectors."""

    def __init__(self, dim=32, seed=0):
        self.dim = dim
        self.seed = seed
        self.identity = f"bag-of-words-{dim}@{seed}"

    def _word(self, w):
        v = np.random.default_rng(zlib.crc32(w.encode()) + self.seed).standard_normal(self.dim)
        return v / np.linalg.norm(v)

    def encode(self, texts, verbose=None):
        out = []
        for t in texts:
            words = [w.strip(".,!?").lower() for w in t.split()] or [""]
            v = np.mean([self._word(w) for w in words], axis=0)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


@pytest.fixture(scope="session")
def bow_encoder():
    return BagOfWordsEncoder()
