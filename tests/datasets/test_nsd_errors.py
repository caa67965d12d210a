"""Bad input (issue 2 §4): each raises a BrainAlignError subclass naming the file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import load_nsd, load_stimuli, make_virtual_nsd, prepare_nsd
from brainalign.datasets._formats import load_mgh, write_mgh
from brainalign.errors import BrainAlignError, DataFormatError, InputError

TINY = dict(n_subjects=2, n_shared=8, n_unique=8, n_sessions=4, voxel_size=10.0)
FS = "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
VOL = "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return make_virtual_nsd(tmp_path_factory.mktemp("tiny") / "nsd", random_state=5, **TINY)


@pytest.fixture
def root(tiny_root, tmp_path):
    return shutil.copytree(tiny_root, tmp_path / "nsd")


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _no_final_cache(cache):
    assert not list(cache.rglob("betas.npy")) and not list(cache.rglob("manifest.json"))


@pytest.mark.parametrize("rel", [f"{FS}/lh.betas_session02.mgh", f"{FS}/rh.betas_session03.mgh"])
def test_truncated_mgh(root, tmp_path, rel):
    _truncate(root / rel)
    with pytest.raises(DataFormatError, match=rel.split("/")[-1]):
        load_nsd(root, 1, cache_dir=tmp_path / "c")
    _no_final_cache(tmp_path / "c")


def test_garbage_mgh(root, tmp_path):
    (root / FS / "lh.betas_session01.mgh").write_bytes(b"not an mgh file at all" * 10)
    with pytest.raises(DataFormatError, match="lh.betas_session01.mgh"):
        load_nsd(root, 1, cache_dir=tmp_path)


@pytest.mark.parametrize("keep", [0.5, 0.001])
def test_truncated_nifti(root, tmp_path, keep):
    _truncate(root / VOL / "betas_session02.nii.gz", keep)
    with pytest.raises(DataFormatError, match="betas_session02.nii.gz"):
        load_nsd(root, 1, "func1pt8mm", cache_dir=tmp_path / "c")
    _no_final_cache(tmp_path / "c")


def test_corrupt_brainmask(root, tmp_path):
    _truncate(root / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz", 0.3)
    with pytest.raises(DataFormatError, match="brainmask.nii.gz"):
        load_nsd(root, 1, "func1pt8mm", cache_dir=tmp_path)


def test_session_with_other_vertex_count(root, tmp_path):
    path = root / FS / "rh.betas_session03.mgh"
    write_mgh(path, load_mgh(path)[:-5])
    with pytest.raises(DataFormatError, match=r"rh.betas_session03.mgh.*expected 10242 vertices"):
        load_nsd(root, 1, cache_dir=tmp_path / "c")
    _no_final_cache(tmp_path / "c")


def test_session_with_other_trial_count(root, tmp_path):
    path = root / FS / "lh.betas_session02.mgh"
    write_mgh(path, load_mgh(path)[:, :-1])
    with pytest.raises(DataFormatError, match=r"lh.betas_session02.mgh.*trials"):
        load_nsd(root, 1, cache_dir=tmp_path)


def test_responses_point_at_missing_sessions(root, tmp_path):
    (root / FS / "lh.betas_session04.mgh").unlink()
    with pytest.raises(DataFormatError, match=r"responses.tsv.*sessions \[4\]"):
        load_nsd(root, 1, cache_dir=tmp_path)
    (root / VOL / "betas_session01.nii.gz").unlink()
    with pytest.raises(DataFormatError, match=r"sessions \[1\]"):
        prepare_nsd(root, 1, "func1pt8mm", cache_dir=tmp_path)


def test_fewer_sessions_on_disk_than_in_an_old_download(root, tmp_path):
    """Sessions are taken from responses.tsv: dropping the last session's rows just works."""
    path = root / "nsddata/ppdata/subj01/behav/responses.tsv"
    tsv = pd.read_csv(path, sep="\t")
    tsv[tsv["SESSION"] < 4].to_csv(path, sep="\t", index=False, na_rep="NaN")
    for h in ("lh", "rh"):
        (root / FS / f"{h}.betas_session04.mgh").unlink()
    sub = load_nsd(root, 1, cache_dir=tmp_path)
    assert sub.metadata["n_sessions"] == 3


def test_unknown_subject_and_space(root, tmp_path):
    with pytest.raises(InputError, match=r"subject: 9 not found.*subjects present: \[1, 2\]"):
        load_nsd(root, 9, cache_dir=tmp_path)
    with pytest.raises(InputError, match="subject"):
        load_nsd(root, "one", cache_dir=tmp_path)
    with pytest.raises(InputError, match=r"space: expected one of \['fsaverage', 'func1pt8mm'\]"):
        load_nsd(root, 1, space="MNI", cache_dir=tmp_path)
    with pytest.raises(InputError, match="not an NSD root"):
        load_nsd(tmp_path, 1, cache_dir=tmp_path)


def test_corrupt_expdesign(root, tmp_path):
    _truncate(root / "nsddata/experiments/nsd/nsd_expdesign.mat", 0.2)
    with pytest.raises(DataFormatError, match="nsd_expdesign.mat"):
        load_nsd(root, 1, cache_dir=tmp_path)


def test_corrupt_responses(root, tmp_path):
    path = root / "nsddata/ppdata/subj02/behav/responses.tsv"
    path.write_text("SUBJECT\tRUN\n1\t1\n")
    with pytest.raises(
        DataFormatError, match=r"subj02/behav/responses.tsv.*missing \['SESSION', '73KID'\]"
    ):
        load_nsd(root, 2, cache_dir=tmp_path)


def test_duplicate_ids(root, tiny_root):
    path = root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv"
    table = pd.read_csv(path, index_col=0)
    table.loc[5, "nsdId"] = 4
    table.to_csv(path)
    with pytest.raises(DataFormatError, match=r"nsd_stim_info_merged.csv.*duplicate nsdId"):
        load_stimuli(root)
    with pytest.raises(InputError, match="duplicate"):
        load_stimuli(tiny_root, image_ids=[3, 3])


def test_captions_do_not_cover_the_images(root):
    stim = load_stimuli(root)
    path = root / "nsddata_stimuli/stimuli/nsd/annotations/captions_train2017.json"
    doc = json.loads(path.read_text())
    dropped = doc["images"][0]["id"]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != dropped]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError, match=r"captions_train2017.json.*does not cover"):
        load_stimuli(root)
    assert len(stim) > 0


def test_corrupt_caption_json(root):
    (root / "nsddata_stimuli/stimuli/nsd/annotations/captions_val2017.json").write_text("{oops")
    with pytest.raises(DataFormatError, match="captions_val2017.json"):
        load_stimuli(root)


def test_corrupt_hdf5(root):
    stim = load_stimuli(root)
    _truncate(root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", 0.01)
    with pytest.raises(DataFormatError, match="nsd_stimuli.hdf5"):
        stim.images(stim.image_ids[:2])


def test_all_errors_are_brainalign_errors():
    assert issubclass(DataFormatError, BrainAlignError) and issubclass(InputError, BrainAlignError)
    assert np.issubdtype(np.int64, np.integer)
