"""The RDM folder format: a hand-written folder read back, every bad input a clear error naming
the file, atomic writes, and the two importers of the 92-object data (real data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from brainalign.datasets import load_rdm_dataset, write_rdm_dataset
from brainalign.datasets.rdms import import_cichy92, import_kriegeskorte92
from brainalign.errors import DataFormatError, InputError
from brainalign.rsa import compute_rdm, noise_ceiling_bounds
from brainalign.rsa.rdm import squareform_rdm

LABELS = ["cat_1", "cat_2", "dog", "car", "pine cone", "apple"]
CATEGORIES = ["animal", "animal", "animal", "vehicle", "plant", "fruit"]


def random_rdms(rng, n_subjects, n):
    out = []
    for _ in range(n_subjects):
        X = rng.standard_normal((n, 8))
        out.append(squareform_rdm(compute_rdm(X)))
    return np.stack(out)


def write_by_hand(root: Path, rng=None) -> dict:
    """A data set written the way the docs say a user would: numpy, PIL and plain text."""
    rng = rng or np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "rdms").mkdir()
    (root / "responses").mkdir()
    (root / "models").mkdir()
    lines = ["stimulus\timage\tlabel\tcategory"]
    for i, (label, cat) in enumerate(zip(LABELS, CATEGORIES, strict=True)):
        img = np.full((12, 16, 3), 40 * i, np.uint8)
        Image.fromarray(img).save(root / "images" / f"s{i}.png")
        lines.append(f"s{i}\timages/s{i}.png\t{label}\t{cat}")
    (root / "stimuli.tsv").write_text("\n".join(lines) + "\n")
    it = random_rdms(rng, 3, 6)
    v1 = rng.standard_normal((3, 6, 10))
    np.save(root / "rdms" / "IT.npy", it.astype(np.float32))
    np.save(root / "responses" / "V1.npy", v1)
    size = np.abs(np.subtract.outer(np.arange(6.0), np.arange(6.0)))
    np.save(root / "models" / "size.npy", size[np.triu_indices(6, 1)])
    (root / "dataset.json").write_text(
        json.dumps({"name": "tiny", "source": "hand-written", "subjects": ["a", "b", "c"]})
    )
    return {"IT": it, "V1": v1, "size": size}


@pytest.fixture
def tiny(tmp_path):
    root = tmp_path / "tiny"
    return root, write_by_hand(root)


def test_a_hand_written_folder_reads_back(tiny):
    root, truth = tiny
    ds = load_rdm_dataset(root)
    assert ds.name == "tiny" and ds.rois == ["IT", "V1"] and ds.n_stimuli == 6
    assert list(ds.stimuli["stimulus"]) == [f"s{i}" for i in range(6)]
    assert ds.labels == LABELS and ds.categories == CATEGORIES
    assert ds.subjects == {"IT": ["a", "b", "c"], "V1": ["a", "b", "c"]}
    assert ds.rdms["IT"].dtype == np.float64 and ds.rdms["IT"].shape == (3, 6, 6)
    np.testing.assert_allclose(ds.rdms["IT"], truth["IT"], atol=1e-6)
    # responses become correlation-distance RDMs, subject by subject
    for s in range(3):
        np.testing.assert_allclose(ds.condensed("V1")[s], compute_rdm(truth["V1"][s]), atol=1e-12)
    assert ds.origin == {"IT": "rdms", "V1": "responses:correlation"}
    np.testing.assert_allclose(ds.models["size"], truth["size"])
    np.testing.assert_allclose(ds.group_rdm("IT"), ds.rdms["IT"].mean(0))
    assert ds.read_images().shape == (6, 12, 16, 3)
    assert ds.read_images([1], size=8).shape == (1, 8, 8, 3)
    # category order: categories in order of first appearance, file order within
    assert list(ds.category_order()) == [0, 1, 2, 3, 4, 5]
    stim = ds.to_stimuli([[lab] for lab in LABELS])
    assert stim.category_names == ["animal", "vehicle", "plant", "fruit"]
    assert stim.categories.sum(1).tolist() == [1] * 6 and stim.metadata["labels"] == LABELS


def test_rois_are_selected_by_name_and_unknown_names_fail(tiny):
    root, _ = tiny
    assert load_rdm_dataset(root, rois=["V1"]).rois == ["V1"]
    with pytest.raises(DataFormatError, match=r"unknown ROI name\(s\) \['V4'\].*IT, V1"):
        load_rdm_dataset(root, rois=["V4"])


def _break(root: Path, case: str) -> str:
    """Damage the folder one way; return the file the error must name."""
    it = np.load(root / "rdms" / "IT.npy")
    if case == "non-square":
        np.save(root / "rdms" / "IT.npy", it[:, :, :5])
        return "IT.npy"
    if case == "asymmetric":
        it[1, 0, 3] += 0.5
        np.save(root / "rdms" / "IT.npy", it)
        return "IT.npy"
    if case == "diagonal":
        it[2, 4, 4] = 0.3
        np.save(root / "rdms" / "IT.npy", it)
        return "IT.npy"
    if case == "nan":
        it[0, 1, 2] = it[0, 2, 1] = np.nan
        np.save(root / "rdms" / "IT.npy", it)
        return "IT.npy"
    if case == "single-matrix":
        np.save(root / "rdms" / "IT.npy", it[0])
        return "IT.npy"
    if case == "size-mismatch":
        lines = (root / "stimuli.tsv").read_text().splitlines()
        (root / "stimuli.tsv").write_text("\n".join(lines[:-1]) + "\n")
        return "IT.npy"
    if case == "missing-image":
        (root / "images" / "s3.png").unlink()
        return "stimuli.tsv"
    if case == "missing-column":
        text = (root / "stimuli.tsv").read_text().replace("\tlabel\t", "\tname\t", 1)
        (root / "stimuli.tsv").write_text(text)
        return "stimuli.tsv"
    if case == "duplicate-id":
        text = (root / "stimuli.tsv").read_text().replace("s4\t", "s3\t", 1)
        (root / "stimuli.tsv").write_text(text)
        return "stimuli.tsv"
    if case == "subjects":
        (root / "dataset.json").write_text(json.dumps({"name": "tiny", "subjects": ["a", "b"]}))
        return "dataset.json"
    if case == "pickle":
        np.save(root / "rdms" / "IT.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return "IT.npy"
    if case == "response-nan":
        v1 = np.load(root / "responses" / "V1.npy")
        v1[1, 2, 3] = np.nan
        np.save(root / "responses" / "V1.npy", v1)
        return "V1.npy"
    if case == "no-json":
        (root / "dataset.json").unlink()
        return "dataset.json"
    if case == "twice":
        np.save(root / "rdms" / "V1.npy", it)
        return "V1.npy"
    raise AssertionError(case)


BAD = {
    "non-square": "not square",
    "asymmetric": "not symmetric",
    "diagonal": "non-zero diagonal",
    "nan": "NaN",
    "single-matrix": r"rdm\[None\]",
    "size-mismatch": "lists 5 stimuli",
    "missing-image": "image 'images/s3.png' not found",
    "missing-column": r"missing column\(s\) \['label'\]",
    "duplicate-id": "duplicate stimulus id",
    "subjects": "names 2 subject",
    "pickle": "unpickling",
    "response-nan": "NaN",
    "no-json": "missing",
    "twice": "given twice",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_every_bad_input_is_a_clear_error_naming_the_file(tiny, case):
    root, _ = tiny
    name = _break(root, case)
    with pytest.raises(DataFormatError, match=BAD[case]) as err:
        load_rdm_dataset(root)
    assert name in str(err.value)


def test_writes_are_atomic_and_never_half_done(tiny, tmp_path):
    root, truth = tiny
    ds = load_rdm_dataset(root)
    images = {rel: root / rel for rel in ds.stimuli["image"]}
    out = tmp_path / "copy"
    good = write_rdm_dataset(out, name="copy", stimuli=ds.stimuli, images=images,
                             rdms={"IT": truth["IT"]}, models={"size": truth["size"]})  # fmt: skip
    np.testing.assert_allclose(good.rdms["IT"], truth["IT"])
    bad_rdm = truth["IT"].copy()
    bad_rdm[0, 0, 1] = 9.0  # asymmetric
    with pytest.raises(InputError, match="already exists"):
        write_rdm_dataset(out, name="x", stimuli=ds.stimuli, images=images, rdms={"IT": bad_rdm})
    with pytest.raises(DataFormatError, match="not symmetric"):
        write_rdm_dataset(out, name="x", stimuli=ds.stimuli, images=images,
                          rdms={"IT": bad_rdm}, overwrite=True)  # fmt: skip
    # the existing folder is untouched and no temporary folder is left behind
    assert load_rdm_dataset(out).name == "copy"
    with pytest.raises(DataFormatError):
        write_rdm_dataset(tmp_path / "new", name="x", stimuli=ds.stimuli, images=images,
                          rdms={"IT": bad_rdm})  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "tiny"]


def test_captions_columns_are_read_and_must_cover_every_stimulus(tiny):
    root, _ = tiny
    lines = (root / "stimuli.tsv").read_text().splitlines()
    lines = [lines[0] + "\tcaption_2\tcaption_1"] + [
        line + f"\t\ta thing number {i}" for i, line in enumerate(lines[1:])
    ]
    (root / "stimuli.tsv").write_text("\n".join(lines) + "\n")
    ds = load_rdm_dataset(root)
    assert ds.captions == [[f"a thing number {i}"] for i in range(6)]
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\t"
    (root / "stimuli.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"row\(s\) \[4\] have no caption"):
        load_rdm_dataset(root)


# ------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def imported(tmp_path_factory, request):
    shared = request.getfixturevalue("shared_data")
    source = shared / "real_rdms"
    if not (source / "cichy92" / "target_fmri_92.mat").exists():
        pytest.skip(f"real RDM data not found at {source}")
    out = tmp_path_factory.mktemp("objects92")
    return (
        source,
        import_kriegeskorte92(source, out / "k92"),
        import_cichy92(source, out / "c92"),
    )


def test_kriegeskorte92_import(imported):
    import scipy.io as sio

    source, k92, _ = imported
    assert k92.name == "kriegeskorte92" and k92.n_stimuli == 92
    assert k92.rdms["IT"].shape == (4, 92, 92) and k92.subjects["IT"] == ["BE", "KO", "SN", "TI"]
    assert k92.rdms["judgements"].shape == (16, 92, 92)
    raw = sio.loadmat(source / "kriegeskorte92" / "92_brainRDMs.mat")["RDMs"]
    np.testing.assert_allclose(
        k92.rdms["IT"][2], (raw[0, 2, 0]["RDM"] + raw[0, 2, 1]["RDM"]) / 2, atol=1e-6
    )
    assert sorted(k92.models) == sorted(
        ["animacy", "FaceBodyManmadeNatobj", "monkeyIT", "EVA", "HMAX", "V1", "Silhouette", "RADON"]
    )
    assert k92.read_images().shape == (92, 175, 175, 3)
    assert k92.labels[:3] == ["hand_1", "ear", "hand_2"] and k92.categories[0] == "human bodypart"
    assert k92.categories.count("natural inanimate") == 23


def test_cichy92_import_and_the_published_algonauts_ceilings(imported):
    import h5py

    source, k92, c92 = imported
    assert c92.rois == ["EVC", "IT"] and c92.rdms["IT"].shape == (15, 92, 92)
    with h5py.File(source / "cichy92" / "target_fmri_92.mat") as f:
        raw = np.asarray(f["IT_RDMs"])
    np.testing.assert_allclose(c92.rdms["IT"][7], raw[:, :, 7].T, atol=1e-12)
    # same stimuli, ids, labels and categories in both data sets
    assert c92.stimulus_ids == k92.stimulus_ids and c92.categories == k92.categories
    # the Algonauts 2019 noise ceilings (mean squared Spearman with the mean RDM of all)
    for roi, published in (("EVC", 0.1589), ("IT", 0.3075)):
        nc = noise_ceiling_bounds(c92.rdms[roi], method="spearman", pool="mean")
        assert abs(nc.upper_r2 - published) < 5e-5, (roi, nc.upper_r2)
        assert nc.lower_mean < nc.upper_mean


def test_cli_import_check_and_errors(tmp_path, shared_data):
    from brainalign.cli import _register, app

    _register()
    runner = CliRunner()
    out = tmp_path / "c92"
    source = shared_data / "real_rdms"
    if not (source / "cichy92").exists():
        pytest.skip(f"real RDM data not found at {source}")
    res = runner.invoke(app, ["rdms", "import", "cichy92", str(source), str(out)])
    assert res.exit_code == 0, res.output
    assert "cichy92" in res.output and "EVC (15 subjects)" in res.output
    res = runner.invoke(app, ["rdms", "check", str(out)])
    assert res.exit_code == 0 and "92 stimuli" in res.output
    shutil.rmtree(out / "images")
    import sys

    from brainalign.cli import main

    argv = sys.argv
    sys.argv = ["brainalign", "rdms", "check", str(out)]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = argv
    assert exc.value.code == 2
