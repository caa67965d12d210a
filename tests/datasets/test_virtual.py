"""The virtual NSD: NSD's layout and conventions, determinism, and a planted structure that is real."""

from __future__ import annotations

import hashlib
import json
import warnings

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.io as sio
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict

from brainalign.datasets import load_fsaverage, load_nsd, make_virtual_nsd
from brainalign.errors import DataFormatError, InputError
from tests.datasets.nsd_reference import reference_trials

TINY = dict(n_subjects=2, n_shared=8, n_unique=8, n_sessions=4, voxel_size=10.0)


def _digest_tree(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _colcorr(a, b):
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    return (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny")
    a = make_virtual_nsd(base / "a", random_state=0, **TINY)
    b = make_virtual_nsd(base / "b", random_state=0, **TINY)
    c = make_virtual_nsd(base / "c", random_state=1, **TINY)
    return a, b, c


def test_same_seed_same_bytes(tiny_pair):
    a, b, _ = tiny_pair
    da, db = _digest_tree(a), _digest_tree(b)
    assert da == db
    assert any(k.endswith(".nii.gz") for k in da) and any(k.endswith(".mgz") for k in da)
    assert any(k.endswith(".hdf5") for k in da) and any(k.endswith(".mat") for k in da)


def test_different_seed_different_data(tiny_pair):
    a, _, c = tiny_pair
    da, dc = _digest_tree(a), _digest_tree(c)
    betas = [k for k in da if "betas_session" in k]
    assert betas and all(da[k] != dc.get(k) for k in betas)
    assert da["virtual_truth.npz"] != dc["virtual_truth.npz"]


def test_nsd_design_invariants(virtual_nsd_root):
    """nsd_layout.md §5: the id chains hold in the written files."""
    root = virtual_nsd_root
    truth = json.loads((root / "virtual_truth.json").read_text())
    n_shared = truth["parameters"]["n_shared"]
    mat = sio.loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    for name in ("masterordering", "subjectim", "sharedix", "stimpattern", "basiccnt"):
        assert mat[name].dtype == np.float64, name
    master = mat["masterordering"].ravel().astype(int)
    subjectim = mat["subjectim"].astype(int)
    sharedix = mat["sharedix"].ravel().astype(int)
    assert mat["masterordering"].shape[0] == 1 and mat["sharedix"].shape[0] == 1
    assert np.all(np.bincount(master)[1:] == 3)  # each 10k index exactly 3 times
    assert np.all(subjectim[:, :n_shared] == sharedix)  # first columns = shared images
    assert np.all(np.diff(sharedix) > 0)
    csv = pd.read_csv(root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv")
    assert len(csv) == 73000 and csv.columns[0] == "Unnamed: 0"
    assert list(csv.columns[1:9]) == [
        "cocoId", "cocoSplit", "cropBox", "loss", "nsdId", "flagged", "BOLD5000", "shared1000"
    ]  # fmt: skip
    assert list(csv.columns[9:17]) == [f"subject{s}" for s in range(1, 9)]
    assert list(csv.columns[17:]) == [f"subject{s}_rep{r}" for s in range(1, 9) for r in range(3)]
    assert len(csv.columns) == 41
    np.testing.assert_array_equal(csv["nsdId"], np.arange(73000))
    assert set(np.flatnonzero(csv["shared1000"])) == set(sharedix - 1)
    header = (root / "nsddata/ppdata/subj01/behav/responses.tsv").read_text().split("\n")[0]
    assert header.split("\t") == [
        "SUBJECT", "SESSION", "RUN", "TRIAL", "73KID", "10KID", "TIME", "ISOLD", "ISCORRECT",
        "RT", "CHANGEMIND", "MEMORYRECENT", "MEMORYFIRST", "ISOLDCURRENT", "ISCORRECTCURRENT",
        "TOTAL1", "TOTAL2", "BUTTON", "MISSINGDATA",
    ]  # fmt: skip
    for s, info in truth["subjects"].items():
        s = int(s)
        tsv = pd.read_csv(root / f"nsddata/ppdata/subj{s:02d}/behav/responses.tsv", sep="\t")
        n = len(tsv)
        assert n == info["n_sessions"] * info["session_size"]
        np.testing.assert_array_equal(tsv["10KID"], master[:n])
        np.testing.assert_array_equal(tsv["73KID"], subjectim[s - 1, master[:n] - 1])
        # CSV rep columns: 1-based trial numbers pointing back at the image
        for r in range(3):
            col = csv[f"subject{s}_rep{r}"].to_numpy()
            rows = np.flatnonzero(col)
            np.testing.assert_array_equal(tsv["73KID"].to_numpy()[col[rows] - 1], rows + 1)
        # within a session, trials are numbered by run as in NSD
        first = tsv[tsv["SESSION"] == 1]
        assert first["RUN"].min() == 1 and first["TRIAL"].min() == 1
    # shared PNG names carry 1-based 73k ids
    pngs = sorted((root / "nsddata/stimuli/nsd/shared1000").glob("*.png"))
    assert [int(p.stem.split("_nsd")[1]) for p in pngs] == sharedix.tolist()
    assert pngs[0].name.startswith("shared0001_nsd")


def test_file_formats(virtual_nsd_root):
    root = virtual_nsd_root
    beta = root / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    img = nib.load(beta / "lh.betas_session01.mgh")
    assert img.shape == (10242, 1, 1, 45) and img.get_data_dtype() == np.dtype(">f4")
    vol = nib.load(
        root
        / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.nii.gz"
    )
    assert vol.get_data_dtype() == np.int16 and vol.ndim == 4 and vol.shape[3] == 45
    mask = nib.load(root / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz")
    assert mask.shape == vol.shape[:3]
    raw = np.asarray(vol.dataobj)
    assert np.all(raw[np.asarray(mask.dataobj) == 0] == 0)
    roi = np.asarray(nib.load(root / "nsddata/ppdata/subj01/func1pt8mm/roi/streams.nii.gz").dataobj)
    assert set(np.unique(roi)) <= set(range(-1, 8)) and (roi == -1).any()
    label = nib.load(root / "nsddata/freesurfer/fsaverage/label/lh.streams.mgz")
    assert label.shape == (10242, 1, 1)
    ctab = (root / "nsddata/freesurfer/fsaverage/label/streams.mgz.ctab").read_text().splitlines()
    assert ctab[0] == "0 Unknown" and ctab[5] == "5 ventral" and ctab[7] == "7 parietal"
    tr = root / "nsddata/ppdata/subj01/transforms"
    layer = np.asarray(nib.load(tr / "lh.func1pt8-to-layerB2.mgz").dataobj).reshape(10242, 3)
    valid = layer[:, 0] != 9999
    assert (~valid).sum() > 0
    assert layer[valid].min() >= 1 and np.all(layer[valid].max(axis=0) <= np.array(mask.shape))
    w2f = np.asarray(nib.load(tr / "rh.white-to-fsaverage.mgz").dataobj).ravel()
    np.testing.assert_array_equal(w2f, np.arange(1, 10243))
    with h5py.File(root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "r") as f:
        ds = f["imgBrick"]
        assert ds.shape == (73000, 425, 425, 3) and ds.dtype == np.uint8
        assert ds.chunks == (1, 425, 425, 3)
    for kind in ("captions", "instances"):
        for split in ("train2017", "val2017"):
            doc = json.loads(
                (root / f"nsddata_stimuli/stimuli/nsd/annotations/{kind}_{split}.json").read_text()
            )
            assert {"images", "annotations"} <= set(doc)


def test_volume_voxels_follow_their_vertices(virtual_nsd_root):
    """Following the transforms from each vertex into the volume lands in that vertex's ROI."""
    root = virtual_nsd_root
    labels = np.asarray(
        nib.load(root / "nsddata/freesurfer/fsaverage/label/lh.streams.mgz").dataobj
    ).ravel()
    roi = np.asarray(nib.load(root / "nsddata/ppdata/subj02/func1pt8mm/roi/streams.nii.gz").dataobj)
    coords = np.asarray(
        nib.load(root / "nsddata/ppdata/subj02/transforms/lh.func1pt8-to-layerB2.mgz").dataobj
    ).reshape(-1, 3)
    ok = coords[:, 0] != 9999
    ijk = np.rint(coords[ok] - 1).astype(int)
    sampled = roi[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
    in_roi = labels[ok] > 0
    agree = (sampled[in_roi] == labels[ok][in_roi]).mean()
    assert agree > 0.7


def test_planted_structure_is_real(virtual_nsd_root, tmp_path):
    """Split-half reliability is high in the ROIs and ~0 in the null region; each ROI's own
    planted representation predicts its held-out responses best."""
    root = virtual_nsd_root
    npz = np.load(root / "virtual_truth.npz", allow_pickle=False)
    truth = json.loads((root / "virtual_truth.json").read_text())
    Z, tsv = reference_trials(root, 1, "fsaverage")
    ids73 = tsv["73KID"].to_numpy()
    kept = np.unique(ids73)
    first = np.stack([Z[:, np.flatnonzero(ids73 == k)[0]] for k in kept])
    rest = np.stack([Z[:, np.flatnonzero(ids73 == k)[1:]].mean(axis=1) for k in kept])
    alive = np.isfinite(first).all(axis=0) & np.isfinite(rest).all(axis=0)
    r = np.full(Z.shape[0], np.nan)
    r[alive] = _colcorr(first[:, alive], rest[:, alive])
    labels = npz["streams_labels"]
    for name, info in truth["rois"].items():
        assert np.nanmean(r[labels == info["label"]]) > 0.12, name
    null = (labels == 0) & ~npz["nsdgeneral"]
    assert abs(np.nanmean(r[null])) < 0.02
    # NSD's noise-ceiling SNR estimated from the repetitions matches the planted ncsnr
    trials = np.stack([Z[:, ids73 == k] for k in kept])  # (images, units, 3)
    noise_var = np.var(trials[:, alive], axis=2, ddof=1).mean(axis=0)
    labels_alive = labels[alive]
    ncsnr_hat = np.sqrt(np.clip(1 - noise_var, 0, None)) / np.sqrt(noise_var)
    inside = labels > 0
    assert abs(np.median(ncsnr_hat[labels_alive > 0]) - np.median(npz["ncsnr"][inside])) < 0.08
    assert np.median(ncsnr_hat[null[alive]]) < 0.15

    sub = load_nsd(root, 1, cache_dir=tmp_path)
    pos = np.searchsorted(npz["nsd_ids"], sub.image_ids)
    feats = {
        n: npz[f"representation_{n}"][pos] for n in ("lowlevel", "objects", "events", "layout")
    }
    cv = KFold(4, shuffle=True, random_state=0)
    rng = np.random.default_rng(0)
    for roi in ("early", "ventral", "lateral", "parietal"):
        (own,) = truth["rois"][roi]["representations"]
        cols = rng.choice(np.flatnonzero(sub.rois[roi]), 40, replace=False)
        y = np.asarray(sub.betas[:, cols])
        score = {}
        for name, X in feats.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = cross_val_predict(RidgeCV(alphas=np.logspace(-1, 5, 7)), X, y, cv=cv)
            score[name] = float(np.mean(_colcorr(pred, y)))
        others = {k: v for k, v in score.items() if k != own}
        assert score[own] > 0.2 and score[own] > max(others.values()) + 0.05, (roi, score)
    # the null region is not predicted by anything
    cols = rng.choice(np.flatnonzero(null & np.isfinite(sub.betas[0])), 40, replace=False)
    y = np.asarray(sub.betas[:, cols])
    pred = cross_val_predict(RidgeCV(alphas=np.logspace(-1, 5, 7)), feats["objects"], y, cv=cv)
    assert np.mean(_colcorr(pred, y)) < 0.1


def test_truth_files(virtual_nsd_root):
    truth = json.loads((virtual_nsd_root / "virtual_truth.json").read_text())
    npz = np.load(virtual_nsd_root / "virtual_truth.npz", allow_pickle=False)
    assert truth["rois"]["ventral"]["representations"] == {"objects": 1.0}
    assert truth["rois"]["lateral"]["representations"] == {"events": 1.0}
    assert truth["rois"]["early"]["representations"] == {"lowlevel": 1.0}
    assert truth["rois"]["parietal"]["representations"] == {"layout": 1.0}
    assert len(truth["rois"]["midventral"]["representations"]) == 2
    n = len(npz["nsd_ids"])
    assert n == 60 + 8 * 120 and np.all(np.diff(npz["nsd_ids"]) > 0)
    for info in truth["representations"].values():
        assert npz[info["npz_key"]].shape == (n, info["dim"])
    assert npz["streams_labels"].shape == (20484,) and npz["ncsnr"].shape == (20484,)
    inside = npz["streams_labels"] > 0
    assert 0.35 < np.median(npz["ncsnr"][inside]) < 0.55  # NSD-like (0.32–0.54)
    assert np.all(npz["ncsnr"][~inside] == 0)
    # sizes: streams ventral ≈ 350 per hemisphere on fsaverage5, as NSD
    assert 250 < truth["rois"]["ventral"]["n_vertices"][0] < 450


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="n_sessions"):
        make_virtual_nsd(tmp_path / "x", n_subjects=1, n_shared=5, n_unique=5, n_sessions=7)
    with pytest.raises(InputError, match="spaces"):
        make_virtual_nsd(tmp_path / "x", spaces=("mni",))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        make_virtual_nsd(tmp_path / "full", **TINY)
    assert not list(tmp_path.glob(".*partial*"))


def test_killed_build_leaves_nothing(tmp_path, monkeypatch):
    import brainalign.datasets.virtual as virtual

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(virtual, "_write_stimuli", boom)
    with pytest.raises(KeyboardInterrupt):
        make_virtual_nsd(tmp_path / "v", **TINY)
    assert list(tmp_path.iterdir()) == []


WANG = "fsaverage_atlases_neuropythy/{}.wang15_mplbl.v1_0.mgz"
#: Wang et al. 2015 areas grouped into streams-like ROIs as in docs/roi_landmarks.md
WANG_ROIS = {
    "early": list(range(1, 7)),
    "midventral": [7, 8],
    "ventral": [9, 10, 11],
    "midlateral": [14, 15],
    "lateral": [12, 13],
    "midparietal": [16, 17],
    "parietal": list(range(18, 25)),
}


def _wang_atlas(shared_data):
    return {
        "lh": shared_data / WANG.format("lh"),
        "rh": shared_data / WANG.format("rh"),
        "rois": WANG_ROIS,
    }


def test_atlas_defines_the_rois(shared_data, tmp_path):
    """A real full-resolution atlas, subsampled to fsaverage5, replaces the grown ROIs."""
    from brainalign.datasets.surfaces import load_surface_atlas

    root = make_virtual_nsd(
        tmp_path / "v", atlas=_wang_atlas(shared_data), spaces=("fsaverage",), **TINY
    )
    sub = load_nsd(root, 1, cache_dir=tmp_path / "c")
    wang = np.concatenate(
        [load_surface_atlas(shared_data / WANG.format(h), "fsaverage5")[0] for h in ("lh", "rh")]
    )
    for roi, ids in WANG_ROIS.items():
        np.testing.assert_array_equal(sub.rois[roi], np.isin(wang, ids), err_msg=roi)
    with pytest.raises(InputError, match="label table lacks"):
        make_virtual_nsd(
            tmp_path / "w", atlas={"lh": shared_data / WANG.format("lh"),
                                   "rh": shared_data / WANG.format("rh")}, **TINY
        )  # fmt: skip


def test_full_fsaverage(shared_data, tmp_path):
    """mesh='fsaverage' (163,842 vertices per hemisphere) from a FreeSurfer folder and an atlas."""
    from nibabel.freesurfer import read_geometry, write_geometry

    fs_dir = tmp_path / "fsaverage"
    (fs_dir / "surf").mkdir(parents=True)
    for fh, dx in (("lh", -110.0), ("rh", 110.0)):
        # the shipped registered spheres stand in for the pial/white surfaces
        c, f = read_geometry(
            str(
                shared_data
                / f"fsaverage_atlases_neuropythy/{fh}.benson14_retinotopy.v4_0.sphere.reg"
            )
        )
        write_geometry(str(fs_dir / "surf" / f"{fh}.pial"), c + [dx, 0, 0], f)
        write_geometry(str(fs_dir / "surf" / f"{fh}.white"), 0.97 * c + [dx, 0, 0], f)
    root = make_virtual_nsd(
        tmp_path / "v",
        n_subjects=1,
        n_shared=8,
        n_unique=4,
        n_sessions=3,
        voxel_size=12.0,
        mesh="fsaverage",
        fs_dir=fs_dir,
        atlas=_wang_atlas(shared_data),
    )
    sub = load_nsd(root, 1, cache_dir=tmp_path / "c")
    assert sub.hemi_sizes == (163842, 163842)
    assert sub.rois["early"].sum() > 16 * 500
    vol = load_nsd(root, 1, "func1pt8mm", cache_dir=tmp_path / "c")
    assert vol.n_images == sub.n_images and vol.rois["early"].any()
    with pytest.raises(InputError, match="fs_dir"):
        make_virtual_nsd(tmp_path / "x", mesh="fsaverage", **TINY)


def test_coco_folder_stimuli(shared_data, tmp_path):
    """Real COCO images and captions as the stimuli (coco_mini + the full val captions)."""
    from brainalign.datasets import load_stimuli

    root = make_virtual_nsd(
        tmp_path / "v",
        coco_folder=shared_data / "coco_mini",
        coco_caption_files=(shared_data / "coco_val2017_captions/captions_val2017.json",),
        spaces=("fsaverage",),
        **TINY,
    )
    truth = json.loads((root / "virtual_truth.json").read_text())
    assert truth["stimuli"]["source"] == "coco_folder"
    stim = load_stimuli(root)
    csv = pd.read_csv(root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv")
    coco_ids = csv["cocoId"].to_numpy()[stim.image_ids]
    real = json.loads((shared_data / "coco_mini/annotations/captions_train2017.json").read_text())
    by_id = {}
    for a in sorted(real["annotations"], key=lambda a: a["id"]):
        by_id.setdefault(a["image_id"], []).append(a["caption"].strip())
    splits = csv["cocoSplit"].to_numpy()[stim.image_ids]
    assert set(splits) <= {"train2017", "val2017"}
    checked = 0
    for i, (cid, split) in enumerate(zip(coco_ids, splits, strict=True)):
        if split == "train2017":
            assert stim.captions[i] == by_id[cid]  # real COCO captions, by real COCO id
            checked += 1
    assert checked > 0
    img = stim.images(stim.image_ids[:1])
    assert img.shape == (1, 425, 425, 3) and img.std() > 10
    sub = load_nsd(root, 1, cache_dir=tmp_path / "c")
    assert sub.n_images == 16


# ------------------------------------------------------------------------------ full fsaverage
# from a sphere folder, and the streamed signal

NEUROPYTHY = "fsaverage_atlases_neuropythy"


def test_full_fsaverage_from_sphere_folder(shared_data, tmp_path):
    """mesh='fsaverage' from neuropythy's folder (spheres and atlases only, no FreeSurfer
    subject): the sphere stands in for pial/white, betas have 163,842 vertices per hemisphere
    and load; the dataset says which geometry it used."""
    fs_dir = shared_data / NEUROPYTHY
    kw = dict(n_subjects=1, n_shared=8, n_unique=4, n_sessions=3, mesh="fsaverage", fs_dir=fs_dir)
    with pytest.raises(InputError, match=r"func1pt8mm.*pial.*spaces=\('fsaverage',\)"):
        make_virtual_nsd(tmp_path / "x", **kw)  # default spaces include the volume
    root = make_virtual_nsd(tmp_path / "v", spaces=("fsaverage",), **kw)
    beta = root / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    for h in ("lh", "rh"):
        img = nib.load(beta / f"{h}.betas_session01.mgh")
        assert img.shape == (163842, 1, 1, 12) and img.get_data_dtype() == np.dtype(">f4")
    truth = json.loads((root / "virtual_truth.json").read_text())
    assert truth["n_vertices_per_hemisphere"] == 163842
    assert truth["surfaces"]["geometry"] == {"pial": "sphere", "white": "sphere"}
    assert truth["surfaces"]["source"] == str(fs_dir) and "stands in" in truth["surfaces"]["note"]
    assert truth["subjects"]["1"]["volume_shape"] is None
    surf = root / "nsddata/freesurfer/fsaverage/surf"
    assert sorted(p.name for p in surf.iterdir() if not p.name.endswith(".mgh")) == [
        "lh.sphere", "rh.sphere"
    ]  # fmt: skip
    assert not (root / "nsddata/ppdata/subj01/func1pt8mm").exists()
    sub = load_nsd(root, 1, cache_dir=tmp_path / "c")
    assert sub.hemi_sizes == (163842, 163842) and sub.betas.shape == (12, 2 * 163842)
    assert sub.rois["early"].sum() > 16 * 250  # grown from the landmarks, scaled to the mesh
    # the dataset's own fsaverage folder reads back (the sphere stands in for pial)
    meshes = load_fsaverage("fsaverage", "pial", fs_dir=root / "nsddata/freesurfer/fsaverage")
    assert meshes["left"].n_vertices == 163842


def test_fs_dir_without_surfaces(tmp_path):
    """An fs_dir with neither a FreeSurfer layout nor a sphere: the error names the folder
    and the files expected, before anything is written."""
    (tmp_path / "fs").mkdir()
    (tmp_path / "fs" / "lh.pial.gii").write_text("x")
    with pytest.raises(DataFormatError, match=r"fs.*surf/lh\.pial.*sphere\.reg"):
        make_virtual_nsd(tmp_path / "v", mesh="fsaverage", fs_dir=tmp_path / "fs", **TINY)
    assert not (tmp_path / "v").exists() and not list(tmp_path.glob(".*partial*"))


def _options(**kw):
    """make_virtual_nsd's checked options (its defaults, updated by ``kw``)."""
    import inspect

    from brainalign.datasets import virtual

    sig = inspect.signature(make_virtual_nsd)
    fields = virtual._Options.__dataclass_fields__
    args = {k: p.default for k, p in sig.parameters.items() if k in fields}
    return virtual._check_options(**{**args, **kw})


def _dense_reference(planted, rng, rows):
    """The writer's former in-memory signal: (len(rows), 2V) float32, built whole."""
    from brainalign.datasets._anatomy import ROI_REPRESENTATIONS
    from brainalign.datasets.base import STREAMS_LABELS

    signal = np.zeros((len(rows), len(planted.ncsnr)), dtype=np.float32)
    parts = {}
    for name in planted.needed:
        C = np.sqrt(1 - planted.individual_variation) * planted.shared_coef[name]
        C = C + np.sqrt(planted.individual_variation) * rng.standard_normal(C.shape)
        Pm = (planted.reps_std[name][rows] @ C.T) @ planted.basis.T
        parts[name] = Pm / Pm.std(axis=0)
    mixed = np.zeros((len(rows), len(planted.roi_vertices)))
    for k, roi in STREAMS_LABELS.items():
        cols = planted.roi_labels == k
        for name, w in ROI_REPRESENTATIONS[roi].items():
            mixed[:, cols] += np.sqrt(w) * parts[name][:, cols]
    mixed /= mixed.std(axis=0)
    signal[:, planted.roi_vertices] = mixed
    return signal


def test_streamed_signal_equals_dense():
    """The factored signal, built a block of rows at a time, equals the images × vertices
    array normalised whole (to float32 precision), with the same draws from the generator."""
    from brainalign.datasets import virtual
    from brainalign.datasets.scenes import make_scenes

    opts = _options(n_subjects=1, n_shared=40, n_unique=50, n_sessions=3, spaces=("fsaverage",))
    anatomy = virtual._surface_anatomy(opts, np.random.default_rng(1))
    scenes = make_scenes(opts.n_total, random_state=0)
    planted = virtual._plant_signal(opts, scenes, anatomy, np.random.default_rng(2))
    rows = np.random.default_rng(3).permutation(opts.n_total)
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    expected = _dense_reference(planted, rng_a, rows)
    signal = planted.subject(rng_b, rows)
    assert rng_a.random() == rng_b.random()  # the same draws, in the same order
    got = signal.dense()
    assert got.shape == expected.shape == (90, 20484) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert (got == expected).mean() > 0.999  # float32 values equal but for rare roundings
    roi = planted.roi_vertices
    # unit variance over all the subject's rows, at every ROI vertex; zero elsewhere
    np.testing.assert_allclose(got[:, roi].std(axis=0, dtype=np.float64), 1.0, atol=1e-6)
    assert not got[:, np.setdiff1d(np.arange(20484), roi)].any()
    # a session's trials (rows repeated, in trial order), built in small blocks
    trials = np.random.default_rng(5).integers(0, len(rows), 37)
    np.testing.assert_array_equal(signal.roi_rows(trials, block=8), got[trials][:, roi])
