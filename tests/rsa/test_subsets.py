import numpy as np
import pytest

from brainalign.errors import DataFormatError, InputError
from brainalign.rsa import load_subsets, make_subsets, save_subsets


def test_disjoint_seeded_and_saved(tmp_path):
    s = make_subsets(1037, 100, random_state=3)
    assert s.shape == (10, 100)
    assert np.unique(s).size == 1000  # disjoint, the 37 left-overs dropped
    np.testing.assert_array_equal(s, make_subsets(1037, 100, random_state=3))
    assert not np.array_equal(s, make_subsets(1037, 100, random_state=4))
    path = save_subsets(tmp_path / "subj01_subsets.npy", s)
    np.testing.assert_array_equal(load_subsets(path), s)
    assert (
        path.read_bytes()
        == save_subsets(tmp_path / "again.npy", make_subsets(1037, 100, 3)).read_bytes()
    )


def test_bad(tmp_path):
    with pytest.raises(InputError):
        make_subsets(50, 100)
    (tmp_path / "bad.npy").write_text("not numpy")
    with pytest.raises(DataFormatError):
        load_subsets(tmp_path / "bad.npy")
    with pytest.raises(InputError, match="twice"):
        save_subsets(tmp_path / "x.npy", np.array([[1, 1, 2]]))
