"""RDM data sets read as memory maps and checked in tiles (issue 23, case 7 and the RDM data
checks): the same values as reading them whole, bounded memory, and negative or constant
dissimilarities refused with the file (and subject) named."""

from __future__ import annotations

import json
import mmap
import tracemalloc

import numpy as np
import pytest

import brainalign.datasets.rdms as rdms_mod
from brainalign.datasets import load_rdm_dataset
from brainalign.errors import DataFormatError
from tests.datasets.rdm_folder import random_rdms, write_by_hand


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of 7 stimuli, so small data sets cross many tile borders (partial tiles too)."""
    monkeypatch.setattr(rdms_mod, "_TILE", 7)
    monkeypatch.setattr(rdms_mod._tile_pairs, "__defaults__", (7,))


def _whole(raw: np.ndarray) -> np.ndarray:
    """What the reader did before (issue 23): the whole stack as float64, symmetrised."""
    R = np.asarray(raw, dtype=np.float64)
    R = (R + R.transpose(0, 2, 1)) / 2
    idx = np.arange(R.shape[1])
    R[:, idx, idx] = 0.0
    return R


def _folder(tmp_path, n, rdms=None, model=None, subjects=None):
    """A minimal RDM folder over ``n`` stimuli (images not checked)."""
    root = tmp_path / "set"
    (root / "rdms").mkdir(parents=True)
    lines = ["stimulus\timage\tlabel"] + [f"s{i}\timages/s{i}.png\tthing {i}" for i in range(n)]
    (root / "stimuli.tsv").write_text("\n".join(lines) + "\n")
    meta = {"name": "set"}
    if subjects:
        meta["subjects"] = subjects
    (root / "dataset.json").write_text(json.dumps(meta))
    np.save(root / "rdms" / "IT.npy", rdms)
    if model is not None:
        (root / "models").mkdir()
        np.save(root / "models" / "m.npy", model)
    return root


def _noisy_rdms(rng, n_subjects, n):
    """float32 RDMs with a small asymmetry (within tolerance): symmetrising must matter."""
    R = random_rdms(rng, n_subjects, n).astype(np.float32)
    eps = rng.uniform(-1e-7, 1e-7, R.shape).astype(np.float32)
    R = R + eps
    idx = np.arange(n)
    R[:, idx, idx] = 0.0
    return R


@pytest.mark.parametrize("n", [5, 7, 20, 50])
def test_tiled_reading_gives_the_values_of_the_whole_array(tmp_path, small_tiles, n):
    rng = np.random.default_rng(n)
    raw = _noisy_rdms(rng, 3, n)
    size = np.abs(np.subtract.outer(np.arange(n), np.arange(n))).astype(float)
    root = _folder(tmp_path, n, raw, model=size[np.triu_indices(n, 1)])
    ds = load_rdm_dataset(root, check_images=False)
    whole = _whole(raw)
    iu, ju = np.triu_indices(n, 1)
    np.testing.assert_array_equal(ds.condensed("IT"), whole[:, iu, ju])  # bit-identical
    np.testing.assert_array_equal(np.asarray(ds.rdms["IT"]), whole)
    np.testing.assert_array_equal(ds.rdms["IT"][1], whole[1])
    np.testing.assert_allclose(ds.group_rdm("IT"), whole.mean(0), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ds.group_condensed("IT"), whole.mean(0)[iu, ju])
    np.testing.assert_array_equal(ds.models["m"].condensed(), size[iu, ju])
    np.testing.assert_array_equal(np.asarray(ds.models["m"]), size)
    assert ds.rdms["IT"].shape == (3, n, n) and ds.models["m"].shape == (n, n)


def _set(R, s, i, j, v, mirror=False):
    R[s, i, j] = v
    if mirror:
        R[s, j, i] = v


def _correlations(R):
    """Correlations saved with a zero diagonal instead of 1 - r."""
    R[:] = (1.0 - R) * (1 - np.eye(R.shape[1]))


BAD = {
    # case: (change to the RDMs (subject 1 unless said), error text)
    "asymmetric": (lambda R: _set(R, 1, 3, 15, R[1, 3, 15] + 0.5), "not symmetric"),
    "diagonal": (lambda R: _set(R, 1, 12, 12, 0.3), "non-zero diagonal"),
    "nan": (lambda R: _set(R, 1, 2, 16, np.nan), "NaN"),
    "negative": (
        lambda R: _set(R, 1, 4, 17, -0.2, mirror=True),
        r"subject 1 \(bob\) holds negative dissimilarities \(d\[(4,17|17,4)\] = -0.2\)",
    ),
    "correlations": (_correlations, "negative dissimilarities"),
    "constant": (lambda R: R.__setitem__(1, 0.7 - 0.7 * np.eye(20)), "is constant"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_rdms_are_found_across_tiles_and_named(tmp_path, small_tiles, case):
    rng = np.random.default_rng(1)
    raw = random_rdms(rng, 3, 20)
    change, text = BAD[case]
    change(raw)
    root = _folder(tmp_path, 20, raw, subjects=["ann", "bob", "cy"])
    with pytest.raises(DataFormatError, match=text) as err:
        load_rdm_dataset(root, check_images=False)
    assert str(root / "rdms" / "IT.npy") in str(err.value)


def test_a_constant_brain_rdm_names_the_subject_and_roi(tmp_path):
    """Issue 23: a constant RDM scored 0.0 with CI [0, 0] silently."""
    raw = random_rdms(np.random.default_rng(2), 3, 8)
    raw[2] = 1.0 - np.eye(8)
    root = _folder(tmp_path, 8, raw, subjects=["ann", "bob", "cy"])
    with pytest.raises(DataFormatError, match=r"subject 2 \(cy\) of ROI 'IT' is constant"):
        load_rdm_dataset(root, check_images=False)


def test_constant_rdm_from_responses_is_refused(tmp_path):
    root = tmp_path / "tiny"
    write_by_hand(root)
    v1 = np.load(root / "responses" / "V1.npy")
    v1[1] = v1[1, :1]  # every stimulus the same pattern: every distance 0
    np.save(root / "responses" / "V1.npy", v1)
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**meta, "metric": "euclidean"}))
    with pytest.raises(DataFormatError, match=r"V1.npy.*subject 1 \(b\) of ROI 'V1' is constant"):
        load_rdm_dataset(root)


@pytest.mark.parametrize("form", ["condensed", "square"])
def test_negative_model_rdm_is_refused(tmp_path, form):
    n = 6
    raw = random_rdms(np.random.default_rng(3), 2, n)
    model = raw[0] - 0.5
    np.fill_diagonal(model, 0.0)
    model = model[np.triu_indices(n, 1)] if form == "condensed" else model
    root = _folder(tmp_path, n, raw, model=model)
    with pytest.raises(DataFormatError, match="m.npy.*negative dissimilarities"):
        load_rdm_dataset(root, check_images=False)


def test_rdms_check_refuses_negative_dissimilarities(tmp_path, monkeypatch, capsys):
    """``brainalign rdms check``: exit status 2 and one line naming the file."""
    import sys

    from brainalign.cli import main

    raw = random_rdms(np.random.default_rng(4), 2, 6)
    raw[0, 1, 2] = raw[0, 2, 1] = -0.1
    root = _folder(tmp_path, 6, raw)
    (root / "images").mkdir()
    for i in range(6):
        (root / "images" / f"s{i}.png").write_bytes(b"")
    monkeypatch.setattr(sys, "argv", ["brainalign", "rdms", "check", str(root)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "IT.npy" in err and "negative dissimilarities" in err and "1 - r" in err


def test_reading_and_condensing_take_no_whole_float64_copy(tmp_path, monkeypatch):
    """A 2 × 1500 × 1500 float32 set (18 MB on disk) checked in tiles of 256²: the check
    allocates a few tiles' worth (not the 6.5 × the file the issue measured); the condensed
    RDMs take 8 bytes per pair and little more."""
    monkeypatch.setattr(rdms_mod._tile_pairs, "__defaults__", (256,))
    tile_bytes = 256 * 256 * 8
    n = 1500
    rng = np.random.default_rng(5)
    raw = np.empty((2, n, n), np.float32)
    for s in range(2):
        X = rng.standard_normal((n, 4)).astype(np.float32)
        raw[s] = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    root = _folder(tmp_path, n, raw)
    tracemalloc.start()
    ds = load_rdm_dataset(root, check_images=False)
    _, check_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    cond = ds.condensed("IT")
    _, cond_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    file_bytes = raw.nbytes
    assert check_peak < 16 * tile_bytes < file_bytes / 2, check_peak
    assert cond_peak < cond.nbytes + 16 * tile_bytes, cond_peak
    assert isinstance(ds.rdms["IT"]._square.base, mmap.mmap)  # the file, mapped, not read in
