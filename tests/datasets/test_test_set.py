"""The shared test set as the paper defines it: shared images seen 3 times by all subjects."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from brainalign.datasets import design_subjects, list_subjects, load_nsd, special_ids
from brainalign.datasets.nsd import read_responses, read_shared_ids
from brainalign.errors import DataFormatError


def _reference(root, subjects):
    shared = read_shared_ids(root)
    keep = np.ones(len(shared), bool)
    for s in subjects:
        ids, counts = np.unique(read_responses(root, s)["73KID"].to_numpy() - 1, return_counts=True)
        keep &= np.isin(shared, ids[counts == 3])
    return shared[keep]


@pytest.fixture(scope="module")
def partial_root(virtual_nsd_root, tmp_path_factory):
    """The shared virtual NSD with only subjects 1 and 2 present (betas and behaviour)."""
    root = tmp_path_factory.mktemp("partial") / "nsd"
    shutil.copytree(virtual_nsd_root, root, symlinks=True)
    for s in range(3, len(design_subjects(root)) + 1):
        shutil.rmtree(root / "nsddata" / "ppdata" / f"subj{s:02d}")
    return root


def test_all_subjects_define_the_test_set(virtual_nsd_root):
    subjects = design_subjects(virtual_nsd_root)
    assert subjects == list_subjects(virtual_nsd_root) == list(range(1, 9))
    np.testing.assert_array_equal(
        special_ids(virtual_nsd_root), _reference(virtual_nsd_root, subjects)
    )


def test_missing_behaviour_files_are_an_error_naming_them(partial_root):
    with pytest.raises(DataFormatError, match=r"all 8 subjects.*subj03/behav/responses.tsv"):
        special_ids(partial_root)
    with pytest.raises(DataFormatError, match="data.test_set = 'present'"):
        load_nsd(partial_root, 1, cache_dir=partial_root.parent / "cache", verbose=False)


def test_present_subjects_give_their_own_test_set(partial_root, virtual_nsd_root):
    present = special_ids(partial_root, "present")
    np.testing.assert_array_equal(present, _reference(partial_root, [1, 2]))
    assert set(special_ids(virtual_nsd_root)) <= set(present)
    sub = load_nsd(
        partial_root, 1, cache_dir=partial_root.parent / "cache", verbose=False, test_set="present"
    )
    np.testing.assert_array_equal(sub.image_ids[sub.shared], np.intersect1d(sub.image_ids, present))
