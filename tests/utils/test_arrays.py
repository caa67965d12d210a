"""RowView: lazy row (and column) selections of memory-mapped arrays."""

import numpy as np
import pytest

from brainalign.datasets import SubjectResponses
from brainalign.errors import InputError
from brainalign.utils.arrays import RowView, as_targets, row_view


@pytest.fixture
def mm(rng, tmp_path):
    """A (12, 9) float32 memory map on disk and its values in memory."""
    values = rng.standard_normal((12, 9)).astype(np.float32)
    np.save(tmp_path / "a.npy", values)
    return np.load(tmp_path / "a.npy", mmap_mode="r"), values


ROWS = [
    np.arange(12) % 3 != 0,  # bool mask
    np.array([7, 2, 11, 0]),  # unsorted indices
    np.array([-1, 3]),  # negative indices
    np.arange(4, 9),  # a contiguous run (read as a slice)
    slice(2, 10, 3),
    None,
]


@pytest.mark.parametrize("rows", ROWS, ids=["mask", "unsorted", "negative", "run", "slice", "all"])
def test_indexing_equals_the_copy(mm, rows):
    arr, values = mm
    v = RowView(arr, rows)
    ref = values[np.arange(12)[rows] if rows is not None else slice(None)]
    assert v.shape == ref.shape and len(v) == ref.shape[0] and v.ndim == 2
    for key in [
        (slice(None), slice(2, 5)),
        (slice(None), 4),
        (slice(None), np.array([8, 0, 3])),
        (slice(None), np.arange(9) > 5),
        (slice(1, None), slice(None)),
        (np.array([0, 1]), np.array([2, 3])),
        1,
        (Ellipsis, 2),
    ]:
        got = v[key]
        outer = isinstance(key, tuple) and all(isinstance(k, np.ndarray) for k in key)
        expected = ref[np.ix_(*key)] if outer else ref[key]  # two index arrays: outer indexing
        np.testing.assert_array_equal(got, expected)
        assert type(got) is np.ndarray and got.dtype == np.float32
        assert not np.shares_memory(got, arr)
    np.testing.assert_array_equal(np.asarray(v), ref)


def test_columns_and_dtype(mm):
    arr, values = mm
    v = row_view(arr, [1, 5, 6], columns=np.arange(9) % 2 == 0, dtype=np.float64)
    ref = values[[1, 5, 6]][:, ::2].astype(np.float64)
    assert v.shape == (3, 5) and v.dtype == np.float64 and v.nbytes == 3 * 5 * 8
    np.testing.assert_array_equal(v[:, 1:3], ref[:, 1:3])
    np.testing.assert_array_equal(v[:, [4, 0]], ref[:, [4, 0]])
    np.testing.assert_array_equal(np.asarray(v, dtype=np.float32), ref.astype(np.float32))


def test_in_memory_array_is_not_aliased(rng):
    a = rng.standard_normal((6, 4)).astype(np.float32)
    block = RowView(a, np.arange(1, 4))[:, :]  # a contiguous run: read as a slice, then copied
    block[:] = 0
    assert np.all(a[1:4] != 0)


def test_as_targets_keeps_views_and_memmaps(mm):
    arr, _ = mm
    v = RowView(arr, [0, 1])
    assert as_targets(v) is v and as_targets(arr) is arr
    assert isinstance(as_targets([[1, 2], [3, 4]]), np.ndarray)


def test_subject_betas_view(mm):
    arr, values = mm
    shared = np.arange(12) < 4
    sub = SubjectResponses(
        betas=arr, image_ids=np.arange(12), shared=shared, rois={}, space="fsaverage", subject=1
    )
    v = sub.betas_view(~shared)
    assert isinstance(v, RowView) and v.array is arr
    np.testing.assert_array_equal(v[:, 3:7], values[~shared][:, 3:7])


def test_bad_inputs(mm):
    arr, _ = mm
    with pytest.raises(InputError, match="2-D"):
        RowView(np.zeros(5), [0])
    with pytest.raises(InputError, match=r"\(12,\) mask"):
        RowView(arr, np.ones(3, bool))
    with pytest.raises(InputError, match="outside"):
        RowView(arr, [0, 12])
    with pytest.raises(InputError, match="integer"):
        RowView(arr, [0.5])
    with pytest.raises(InputError, match="at most 2"):
        RowView(arr, [0])[0, 1, 2]
    with pytest.raises(ValueError, match="copies"):
        np.asarray(RowView(arr, [0]), copy=False)
