"""The RDM folder format: a hand-written folder read back, every bad input a clear error naming
the file, atomic writes, and the two importers of the 92-object data (real data)."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from brainalign.datasets import load_rdm_dataset, write_rdm_dataset
from brainalign.datasets.rdms import import_cichy92, import_kriegeskorte92
from brainalign.errors import DataFormatError, InputError
from brainalign.rsa import compute_rdm, noise_ceiling_bounds
from tests.datasets.rdm_folder import CATEGORIES, LABELS, break_folder, write_by_hand


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
    name = break_folder(root, case)
    with pytest.raises(DataFormatError, match=BAD[case]) as err:
        load_rdm_dataset(root)
    assert name in str(err.value)


def test_writes_are_atomic_and_never_half_done(tiny, tmp_path):
    root, truth = tiny
    ds = load_rdm_dataset(root)
    images = {rel: root / rel for rel in ds.stimuli["image"]}
    out = tmp_path / "copy"
    good = write_rdm_dataset(
        out,
        name="copy",
        stimuli=ds.stimuli,
        images=images,
        rdms={"IT": truth["IT"]},
        models={"size": truth["size"]},
    )
    np.testing.assert_allclose(good.rdms["IT"], truth["IT"])
    bad_rdm = truth["IT"].copy()
    bad_rdm[0, 0, 1] = 9.0  # asymmetric
    with pytest.raises(InputError, match="already exists"):
        write_rdm_dataset(out, name="x", stimuli=ds.stimuli, images=images, rdms={"IT": bad_rdm})
    with pytest.raises(DataFormatError, match="not symmetric"):
        write_rdm_dataset(
            out, name="x", stimuli=ds.stimuli, images=images, rdms={"IT": bad_rdm}, overwrite=True
        )
    # the existing folder is untouched and no temporary folder is left behind
    assert load_rdm_dataset(out).name == "copy"
    with pytest.raises(DataFormatError):
        write_rdm_dataset(
            tmp_path / "new", name="x", stimuli=ds.stimuli, images=images, rdms={"IT": bad_rdm}
        )
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


def test_cli_import_check_and_errors(tmp_path, shared_data, monkeypatch, capsys):
    from brainalign.cli import _register, app, main

    source = shared_data / "real_rdms"
    if not (source / "cichy92").exists():
        pytest.skip(f"real RDM data not found at {source}")
    _register()
    runner = CliRunner()
    out = tmp_path / "c92"
    res = runner.invoke(app, ["rdms", "import", "cichy92", str(source), str(out)])
    assert res.exit_code == 0, res.output
    assert "cichy92" in res.output and "EVC (15 subjects)" in res.output
    res = runner.invoke(app, ["rdms", "check", str(out)])
    assert res.exit_code == 0 and "92 stimuli" in res.output
    # a broken folder: a clean one-line error naming the file, exit code 2
    shutil.rmtree(out / "images")
    monkeypatch.setattr(sys, "argv", ["brainalign", "rdms", "check", str(out)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "stimuli.tsv" in capsys.readouterr().err
    # an existing OUT is never replaced without --overwrite
    (out / "images").mkdir()
    monkeypatch.setattr(
        sys, "argv", ["brainalign", "rdms", "import", "cichy92", str(source), str(out)]
    )
    with pytest.raises(SystemExit):
        main()
    assert "already exists" in capsys.readouterr().err


def test_responses_with_repetitions_give_the_rdm_of_their_mean(tmp_path):
    """responses/<ROI>.npy may hold repetitions, (n_subjects, n_repetitions, n_stimuli,
    n_units): the ROI's RDMs are those of the mean over repetitions; one repetition is refused."""
    from brainalign.datasets.rdms import mean_patterns

    root = tmp_path / "tiny"
    write_by_hand(root)
    reps = np.random.default_rng(3).standard_normal((3, 4, 6, 10))
    np.save(root / "responses" / "V1.npy", reps)
    ds = load_rdm_dataset(root, ["V1"])
    want = np.stack([compute_rdm(reps[s].mean(0)) for s in range(3)])
    np.testing.assert_allclose(ds.condensed("V1"), want, atol=1e-12)
    np.testing.assert_allclose(mean_patterns(reps, 1), reps[1].mean(0))
    np.save(root / "responses" / "V1.npy", reps[:, :1])
    with pytest.raises(DataFormatError, match="1 repetition"):
        load_rdm_dataset(root, ["V1"])
