import numpy as np
import pytest

from brainalign.errors import InputError
from brainalign.rsa import (
    compare_rdms,
    compute_rdm,
    noise_ceiling,
    normalise_by_ceiling,
    split_half_ceiling,
)


def test_leave_one_subject_out(rng):
    truth = rng.standard_normal((25, 6))
    subjects = np.stack(
        [compute_rdm(truth + s * 0.3 * rng.standard_normal(truth.shape)) for s in range(1, 6)]
    )
    c = noise_ceiling(subjects)
    assert c.shape == (5,)
    for s in range(5):
        others = np.delete(subjects, s, 0).mean(0)
        assert c[s] == pytest.approx(compare_rdms(subjects[s], others))
    assert c[0] > c[-1]  # the least noisy subject agrees best with the others


def test_normalise(rng):
    scores = rng.uniform(0, 0.2, size=(4, 3))
    ceil = np.array([0.5, 0.4, 0.3, 0.6])
    np.testing.assert_allclose(normalise_by_ceiling(scores, ceil), scores / ceil[:, None])
    with pytest.raises(InputError):
        normalise_by_ceiling(scores, np.array([0.5, 0.0, 0.3, 0.6]))
    with pytest.raises(InputError):
        normalise_by_ceiling(scores, np.ones(3))


def test_split_half(rng):
    signal = rng.standard_normal((30, 20))
    clean = np.stack([signal + 0.2 * rng.standard_normal(signal.shape) for _ in range(4)])
    noisy = np.stack([signal + 3.0 * rng.standard_normal(signal.shape) for _ in range(4)])
    hi, lo = split_half_ceiling(clean), split_half_ceiling(noisy)
    assert 0.8 < hi <= 1.0 and lo < hi
    raw = split_half_ceiling(clean, spearman_brown=False)
    assert hi == pytest.approx(2 * raw / (1 + raw))
    three = split_half_ceiling(clean[:3])  # NSD's 3 repetitions
    assert np.isfinite(three)
    with pytest.raises(InputError):
        split_half_ceiling(clean[0])


def test_bad():
    with pytest.raises(InputError):
        noise_ceiling(np.ones((1, 10)))
