"""Fault injection, stale inputs: every file a task reads is part of its key.

For each data kind (``nsd``, ``virtual``, ``rdms``) one small study runs once; then each kind of
input (captions, categories, the image brick, betas, ROI labels, behavioural files, surfaces, RDM
files, stimulus tables, images of an RDM set) is edited in turn, the study rerun, and the tasks
that computed again must be exactly those that read the edited file and their dependents (the
pipeline's own ``computed`` list). Putting the original bytes back reuses everything again (a
file is keyed by its content; a touch alone reruns nothing). Edits replace a file (copy on
write), never the bytes of a hard-linked original.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from brainalign.pipeline.config import load_config, validate_config
from brainalign.pipeline.study import run_study
from tests.faults.conftest import FS, FSAV, OTHER_ANALYSES_OFF, STIM

NSD_STUDY = (
    """\
name = "stale inputs"
[data]
kind = "nsd"
root = "{root}"
[features]
spaces = ["multihot", "glove_all"]
[analyses.roi_rsa]
subset_size = 8
rois = ["early", "ventral"]
[analyses.model_comparison]
rois = ["ventral"]
[analyses.searchlight]
models = ["multihot"]
radius = 5.0
chunk_size = 20484
[output]
dir = "{out}"
formats = ["csv"]
"""
    + OTHER_ANALYSES_OFF
)

VIRTUAL_STUDY = (
    """\
name = "stale virtual inputs"
[data]
kind = "virtual"
n_subjects = 2
random_state = 5
options = {{ n_shared = 8, n_unique = 8, n_sessions = 4, voxel_size = 10.0 }}
[features]
spaces = ["multihot"]
[analyses.roi_rsa]
subset_size = 8
rois = ["early", "ventral"]
[analyses.model_comparison]
rois = ["ventral"]
[analyses.searchlight]
enabled = false
[output]
dir = "{out}"
formats = ["csv"]
"""
    + OTHER_ANALYSES_OFF
)


# ------------------------------------------------------------------------------------ helpers
def rewrite(path: Path, edit: Callable[[bytes], bytes]) -> bytes:
    """Replace ``path`` by ``edit(its bytes)`` (a new file: hard-linked originals untouched);
    return the original bytes."""
    before = path.read_bytes()
    after = edit(before)
    assert after != before
    path.unlink()
    path.write_bytes(after)
    return before


def restore(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def rerun(cfg) -> set[str]:
    """Run the study again; the labels of the tasks it computed."""
    res = run_study(cfg, report=False)
    assert not set(res.run.computed) & set(res.run.reused)
    return set(res.run.computed)


def edit_json(edit: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    def apply(data: bytes) -> bytes:
        doc = json.loads(data)
        edit(doc)
        return json.dumps(doc).encode()

    return apply


def edit_via_file(path: Path, edit: Callable[[Path], None]) -> bytes:
    """Copy ``path`` to a new file, let ``edit`` change it in place, and put it at ``path``."""
    before = path.read_bytes()
    tmp = path.with_name(f"edit.{path.name}")
    tmp.write_bytes(before)
    edit(tmp)
    path.unlink()
    os.replace(tmp, path)
    assert path.read_bytes() != before
    return before


def new_captions(doc: dict) -> None:
    for ann in doc["annotations"]:
        ann["caption"] = "A photograph of a kitchen table with bowls of fruit."


def new_categories(doc: dict) -> None:
    ids = sorted({c["id"] for c in doc["categories"]})
    for ann in doc["annotations"]:
        ann["category_id"] = ids[(ids.index(ann["category_id"]) + 1) % len(ids)]


def edit_brick(path: Path) -> None:
    """One pixel of the first image of the stimulus table."""
    import h5py
    import pandas as pd

    table = pd.read_csv(path.parents[3] / "nsddata/experiments/nsd/nsd_stim_info_merged.csv")
    i = int(table["nsdId"].iloc[0])
    with h5py.File(path, "r+") as f:
        f["imgBrick"][i, 0, 0, 0] = 255 - int(f["imgBrick"][i, 0, 0, 0])


def edit_mgh(path: Path) -> None:
    """Same size, other values: one unit's betas of every trial changed."""
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asarray(img.dataobj).copy()
    data[0] = data[0] + 7
    nib.save(nib.MGHImage(data, img.affine, img.header), str(path))


def edit_labels(path: Path) -> None:
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asarray(img.dataobj).copy()
    labelled = np.flatnonzero(data.ravel() > 0)
    data.ravel()[labelled[:20]] = 0
    nib.save(nib.MGHImage(data, img.affine, img.header), str(path))


def edit_surface(path: Path) -> None:
    import nibabel as nib

    coords, faces = nib.freesurfer.read_geometry(str(path))
    nib.freesurfer.write_geometry(str(path), coords * 1.05, faces)


# ------------------------------------------------------------------------------- kind = nsd
@pytest.fixture(scope="module")
def nsd_study(tiny_nsd, tmp_path_factory):
    """A study of a private (hard-linked) copy of the tiny NSD, run once."""
    folder = tmp_path_factory.mktemp("stale_nsd")
    root = Path(shutil.copytree(tiny_nsd, folder / "nsd", copy_function=os.link))
    path = folder / "study.toml"
    path.write_text(NSD_STUDY.format(root=root, out=folder / "run"))
    cfg = load_config(path)
    first = run_study(cfg, report=False)
    assert first.run.computed and not first.run.reused
    labels = set(first.run.computed)
    assert rerun(cfg) == set()  # nothing changed: nothing computed
    return root, cfg, labels


def _subject(s):
    return lambda label: f"sub-{s:02d}" in label or label.split(":")[0].endswith("_group")


def _model(m):
    def depends(label):
        stage, _, name = label.partition(":")
        # the group and each subject's model-to-model similarity read every model
        return m in name.split("/") or stage in ("roi_group", "model_similarity")

    return depends


def _any_subject(label):
    stage = label.split(":")[0]
    return "sub-" in label or stage.endswith("_group")


def _searchlight(label):
    return label.split(":")[0] in ("neighbourhoods", "searchlight", "searchlight_group")


NSD_CASES = {
    # captions are read by every feature space (load_stimuli reads them for any space)
    "captions": (
        f"{STIM}/annotations/captions_val2017.json",
        lambda p: rewrite(p, edit_json(new_captions)),
        lambda label: _model("multihot")(label) or _model("glove_all")(label),
    ),
    # categories only by the spaces that use them: glove_all (captions alone) is kept
    "categories": (
        f"{STIM}/annotations/instances_val2017.json",
        lambda p: rewrite(p, edit_json(new_categories)),
        _model("multihot"),
    ),
    # no task of this study reads pixels: nothing reruns
    "image brick": (f"{STIM}/nsd_stimuli.hdf5", lambda p: edit_via_file(p, edit_brick), None),
    # one session of one subject: that subject's tasks, the group tasks
    "betas": (f"{FS}/lh.betas_session02.mgh", lambda p: edit_via_file(p, edit_mgh), _subject(1)),
    # the surface ROI labels belong to every subject
    "ROI labels": (
        f"{FSAV}/label/lh.streams.mgz",
        lambda p: edit_via_file(p, edit_labels),
        _any_subject,
    ),
    # every subject's behavioural file defines the shared test set of every subject
    "behaviour": (
        "nsddata/ppdata/subj02/behav/responses.tsv",
        lambda p: rewrite(p, lambda b: b + b"\n"),
        _any_subject,
    ),
    # the surface the searchlight's discs are measured on
    "surface": (f"{FSAV}/surf/lh.white", lambda p: edit_via_file(p, edit_surface), _searchlight),
}


@pytest.mark.parametrize("case", list(NSD_CASES))
def test_an_edited_nsd_input_reruns_its_dependents_only(nsd_study, case):
    root, cfg, labels = nsd_study
    rel, edit, depends = NSD_CASES[case]
    path = root / rel
    original = edit(path)
    try:
        computed = rerun(cfg)
        expected = {label for label in labels if depends is not None and depends(label)}
        assert expected or depends is None
        assert computed == expected, (
            f"{case}: computed again {sorted(computed - expected)} needlessly, "
            f"missed {sorted(expected - computed)}"
        )
    finally:
        restore(path, original)
    # the original bytes back: every result of the first run is reused
    assert rerun(cfg) == set()


def test_a_large_input_is_keyed_by_size_nanosecond_mtime_and_inode(nsd_study, monkeypatch):
    """Files above the content-hash limit: a rewrite within the same second and with the same
    size (the old key held whole-second mtimes) still reruns the tasks that read it."""
    import brainalign.utils.hashing as hashing

    root, cfg, labels = nsd_study
    monkeypatch.setattr(hashing, "CONTENT_HASH_LIMIT", 0)
    rerun(cfg)  # keys by stat now
    assert rerun(cfg) == set()
    path = root / FS / "lh.betas_session03.mgh"
    st = path.stat()
    original = edit_via_file(path, edit_mgh)
    try:
        assert path.stat().st_size == st.st_size
        # the same whole second as before, another nanosecond
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns // 10**9 * 10**9 + 123))
        assert int(path.stat().st_mtime) == int(st.st_mtime)
        computed = rerun(cfg)
        assert computed == {label for label in labels if _subject(1)(label)}
    finally:
        restore(path, original)
        monkeypatch.undo()
    rerun(cfg)
    assert rerun(cfg) == set()


# --------------------------------------------------------------------------- kind = virtual
@pytest.fixture(scope="module")
def virtual_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stale_virtual")
    path = folder / "study.toml"
    path.write_text(VIRTUAL_STUDY.format(out=folder / "run"))
    cfg = load_config(path)
    first = run_study(cfg, report=False)
    labels = set(first.run.computed)
    # the study planned again once the virtual NSD was written: a rerun reuses everything
    assert rerun(cfg) == set()
    return Path(cfg.data.root), cfg, labels


VIRTUAL_CASES = {
    "captions": (
        f"{STIM}/annotations/captions_train2017.json",
        lambda p: rewrite(p, edit_json(new_captions)),
        _model("multihot"),
    ),
    "betas": (f"{FS}/rh.betas_session01.mgh", lambda p: edit_via_file(p, edit_mgh), _subject(1)),
    "ROI labels": (
        f"{FSAV}/label/rh.streams.mgz",
        lambda p: edit_via_file(p, edit_labels),
        _any_subject,
    ),
}


@pytest.mark.parametrize("case", list(VIRTUAL_CASES))
def test_an_edit_inside_a_virtual_nsd_reruns_its_dependents_only(virtual_study, case):
    root, cfg, labels = virtual_study
    rel, edit, depends = VIRTUAL_CASES[case]
    path = root / rel
    if not path.exists():  # the tiny virtual NSD may put its images in the other split
        path = path.with_name(path.name.replace("train2017", "val2017"))
    original = edit(path)
    try:
        computed = rerun(cfg)
        expected = {label for label in labels if depends(label)}
        assert expected and computed == expected, case
    finally:
        restore(path, original)
    assert rerun(cfg) == set()


# ------------------------------------------------------------------------------ kind = rdms
@pytest.fixture(scope="module")
def rdm_study(tmp_path_factory):
    from tests.datasets.rdm_folder import write_by_hand

    folder = tmp_path_factory.mktemp("stale_rdms")
    roots = {}
    for name, seed in (("a", 0), ("b", 1)):
        roots[name] = folder / name
        write_by_hand(roots[name], np.random.default_rng(seed))
    cfg = validate_config(
        {
            "data": {
                "kind": "rdms",
                "sets": [{"root": str(roots[n]), "name": n} for n in roots],
            },
            "features": {"spaces": ["multihot", "animacy"]},
            "analyses": {"rdm_rsa": {"vision": [], "n_bootstrap": 20, "n_permutations": 100}},
            "output": {"dir": str(folder / "run"), "formats": ["csv"]},
        }
    )
    first = run_study(cfg, report=False)
    labels = set(first.run.computed)
    assert rerun(cfg) == set()
    return roots, cfg, labels


def _set(name, *stages):
    def depends(label):
        stage, _, rest = label.partition(":")
        if stage in ("rdm_data", "rdm_summary"):
            return True  # the data task checks every set; the summary gathers them
        return stage in stages and rest.split("/")[-1] == name

    return depends


def _new_rdms(data: bytes) -> bytes:
    """Other (valid) RDMs of the same shape: subjects in another order."""
    import io

    rdms = np.load(io.BytesIO(data))
    buf = io.BytesIO()
    np.save(buf, rdms[::-1].copy())
    return buf.getvalue()


def _new_category(data: bytes) -> bytes:
    return data.replace(b"\tvehicle", b"\tanimal")


def _new_pixels(path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.full((12, 16, 3), 200, np.uint8)).save(path)


RDM_CASES = {
    "RDM file": ("rdms/IT.npy", lambda p: rewrite(p, _new_rdms), _set("a", "rdm_evaluate")),
    "response patterns": (
        "responses/V1.npy",
        lambda p: rewrite(p, _new_rdms),
        _set("a", "rdm_evaluate"),
    ),
    "stimulus table": (
        "stimuli.tsv",
        lambda p: rewrite(p, _new_category),
        _set("a", "rdm_features", "rdm_evaluate"),
    ),
    # with no vision model nothing reads the pixels (the reader checks that the file exists)
    "image": ("images/s2.png", lambda p: edit_via_file(p, _new_pixels), lambda label: False),
}


@pytest.mark.parametrize("case", list(RDM_CASES))
def test_an_edited_rdm_set_reruns_its_dependents_only(rdm_study, case):
    roots, cfg, labels = rdm_study
    rel, edit, depends = RDM_CASES[case]
    path = roots["a"] / rel
    original = edit(path)
    try:
        computed = rerun(cfg)
        expected = {label for label in labels if depends(label)}
        assert computed == expected, (
            f"{case}: computed again {sorted(computed - expected)} needlessly, "
            f"missed {sorted(expected - computed)}"
        )
    finally:
        restore(path, original)
    assert rerun(cfg) == set()


# ------------------------------------------------- every analysis, by plan keys (no task runs)
PLAN_STUDY = """\
name = "stale inputs, every analysis"
[data]
kind = "nsd"
root = "{root}"
[features]
spaces = ["multihot", "minilm"]
[analyses.roi_rsa]
subset_size = 8
[analyses.searchlight]
space = "func1pt8mm"
models = ["multihot"]
[analyses.searchlight_contrasts]
contrasts = []
[analyses.encoding]
feature_space = "minilm"
[analyses.insilico]
enabled = false
[analyses.decoding]
feature_space = "minilm"
[analyses.networks]
targets = []
zoo = ["efficientnet-lite0"]
[output]
dir = "{out}"
"""

VOL = "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"


def _readers(*stages, subject=None, space=None):
    def reads(task):
        return (
            task.stage in stages
            and (subject is None or task.id.subject == subject)
            and (space is None or task.id.space == space)
        )

    return reads


PLAN_CASES = {
    "captions": (
        f"{STIM}/annotations/captions_val2017.json",
        lambda p: rewrite(p, edit_json(new_captions)),
        _readers("features", "caption_embeddings", "caption_bank", "zoo_features"),
    ),
    "categories": (
        f"{STIM}/annotations/instances_val2017.json",
        lambda p: rewrite(p, edit_json(new_categories)),
        lambda t: (
            _readers("caption_bank", "zoo_features")(t)
            or (t.stage == "features" and t.id.model == "multihot")
        ),
    ),
    "image brick": (
        f"{STIM}/nsd_stimuli.hdf5",
        lambda p: edit_via_file(p, edit_brick),
        _readers("zoo_features"),
    ),
    "volume betas": (
        f"{VOL}/betas_session02.nii.gz",
        lambda p: rewrite(p, lambda b: b + b"\0"),  # a changed file is enough for the plan
        _readers("responses", subject=1, space="func1pt8mm"),
    ),
    "volume ROIs": (
        "nsddata/ppdata/subj01/func1pt8mm/roi/streams.nii.gz",
        lambda p: rewrite(p, lambda b: b + b"\0"),
        _readers("responses", subject=1, space="func1pt8mm"),
    ),
    "transforms": (
        "nsddata/ppdata/subj01/transforms/lh.white-to-fsaverage.mgz",
        lambda p: rewrite(p, lambda b: b + b"\0"),
        _readers("volume_projection", subject=1),
    ),
}


def _keys(cfg) -> dict:
    from brainalign.pipeline.core import all_tasks
    from brainalign.pipeline.plan import build_plan

    return {t.label: t for t in all_tasks(build_plan(cfg).targets)}


def _dependents(tasks: dict, readers: set[str]) -> set[str]:
    """``readers`` and every task whose inputs come from them, directly or not."""
    out = set(readers)
    changed = True
    while changed:
        changed = False
        for label, t in tasks.items():
            if label not in out and any(d.label in out for d in t.deps.values()):
                out.add(label)
                changed = True
    return out


@pytest.mark.parametrize("case", list(PLAN_CASES))
def test_every_task_that_reads_an_input_has_it_in_its_key(nsd_copy, tmp_path, case):
    """The analyses the run tests above leave off (encoding, decoding and its caption bank, the
    zoo's vision features, the volume searchlight and its projection): an edited input changes
    the keys of the tasks that read it and of their dependents, and of no other task."""
    path = tmp_path / "study.toml"
    path.write_text(PLAN_STUDY.format(root=nsd_copy, out=tmp_path / "run"))
    cfg = load_config(path)
    before = _keys(cfg)
    rel, edit, reads = PLAN_CASES[case]
    edit(nsd_copy / rel)
    after = _keys(cfg)
    assert set(after) == set(before)
    changed = {label for label in before if before[label].key != after[label].key}
    readers = {label for label, t in before.items() if reads(t)}
    assert readers and changed == _dependents(before, readers), (
        f"{case}: changed needlessly {sorted(changed - _dependents(before, readers))}, "
        f"missed {sorted(_dependents(before, readers) - changed)}"
    )


def test_a_feature_spaces_word_vector_file_is_in_its_key(nsd_copy, tmp_path):
    """A file an option names (``features.options.<space>.vectors``) was keyed by its path alone:
    new vectors under the same name served the old space."""
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("cow 0.1 0.2 0.3\ncar 0.3 0.2 0.1\n")
    path = tmp_path / "study.toml"
    path.write_text(
        NSD_STUDY.format(root=nsd_copy, out=tmp_path / "run")
        .replace("[analyses.searchlight]\n", "[analyses.searchlight]\nenabled = false\n")
        .replace(
            "[analyses.roi_rsa]",
            f'[features.options.glove_all]\nvectors = "{vectors}"\n[analyses.roi_rsa]',
        )
    )
    cfg = load_config(path)
    before = _keys(cfg)
    rewrite(vectors, lambda b: b.replace(b"0.1 0.2 0.3", b"0.9 0.2 0.3"))
    after = _keys(cfg)
    changed = {label for label in before if before[label].key != after[label].key}
    assert changed == _dependents(before, {"features:glove_all"})


def test_a_rerun_after_an_edit_gives_what_a_fresh_folder_gives(nsd_study, tmp_path):
    """The issue's symptom: after every caption was rewritten the rerun kept the old
    ``roi_rsa.csv`` byte for byte while a fresh folder gave other numbers."""
    root, cfg, _ = nsd_study
    out = cfg.output.dir
    old = (out / "tables" / "roi_rsa.csv").read_bytes()
    path = root / f"{STIM}/annotations/captions_val2017.json"
    original = rewrite(path, edit_json(new_captions))
    try:
        run_study(cfg, report=False)
        rerun_table = (out / "tables" / "roi_rsa.csv").read_bytes()
        fresh = tmp_path / "study.toml"
        fresh.write_text(NSD_STUDY.format(root=root, out=tmp_path / "fresh"))
        run_study(load_config(fresh), report=False)
        assert rerun_table == (tmp_path / "fresh" / "tables" / "roi_rsa.csv").read_bytes()
        assert rerun_table != old
    finally:
        restore(path, original)
    run_study(cfg, report=False)
    assert (out / "tables" / "roi_rsa.csv").read_bytes() == old


def test_a_deleted_virtual_nsd_is_written_again_and_its_results_reused(virtual_study):
    """Its data task was cached, so nothing rewrote the folder and every task failed on the
    missing root; written again (the same bytes), every other result is reused."""
    root, cfg, _ = virtual_study
    shutil.rmtree(root)
    assert rerun(cfg) == {"virtual_nsd:all"}
    assert rerun(cfg) == set()
