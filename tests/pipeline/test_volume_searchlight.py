"""The paper's volume searchlight in the pipeline: func1pt8mm spheres → RSA in chunks →
projection to fsaverage with NSD's transforms → group maps, on the shared virtual NSD."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainalign.errors import ConfigError
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.core import TaskId
from brainalign.pipeline.plan import build_plan
from brainalign.pipeline.study import plan_study, run_study

SUBJECTS = [1, 2, 3]


def _config(root, out, *, space="fsaverage", subjects=SUBJECTS, **searchlight) -> dict:
    return {
        "name": "volume searchlight test",
        "data": {"kind": "nsd", "root": str(root)},
        "subjects": subjects,
        "space": space,
        "features": {"spaces": ["multihot"]},
        "analyses": {
            # 3 disjoint 60-image subsets of each subject's 180 images (the paper's sampling)
            "roi_rsa": {"enabled": False, "subset_size": 60},
            "searchlight": {
                "space": "func1pt8mm",
                "radius": 2.0,
                "models": ["multihot"],
                "sampling": "paper",
                "chunk_size": 8192,
                **searchlight,
            },
            "encoding": {"enabled": False},
            "insilico": {"enabled": False},
            "decoding": {"enabled": False},
            "networks": {"enabled": False},
            "model_comparison": {"enabled": False},
        },
        "output": {"dir": str(out)},
    }


@pytest.fixture(scope="module")
def volume_run(virtual_nsd_root, tmp_path_factory):
    cfg = validate_config(_config(virtual_nsd_root, tmp_path_factory.mktemp("vol") / "run"))
    result = run_study(cfg, report=True)
    return cfg, result


def _load(plan, cache, task):
    return cache.load(task.stage, task.key)


def test_volume_searchlight_runs_end_to_end_on_the_fsaverage_mesh(volume_run, virtual_nsd_root):
    from brainalign.datasets import load_nsd

    cfg, result = volume_run
    plan, cache, _ = plan_study(cfg)
    group = _load(plan, cache, plan.analyses["searchlight"]["multihot"])
    n_vertices = load_nsd(virtual_nsd_root, 1, "fsaverage", verbose=False).n_units
    R = np.asarray(group["r"])
    assert R.shape == (len(SUBJECTS), n_vertices) == (3, 2 * 10242)
    assert np.isfinite(R).all() and np.isfinite(np.asarray(group["mean"])).all()
    # the chunks were really several tasks, and the surface path's neighbourhoods never ran
    labels = [t.split(":")[0] for t in result.run.computed]
    assert labels.count("volume_searchlight") >= 2 * len(SUBJECTS)
    assert "neighbourhoods" not in labels and "searchlight" not in labels
    out = cfg.output.dir
    import nibabel as nib

    for suffix in (".lh.func.gii", ".rh.func.gii"):
        lh = nib.load(out / "maps" / f"searchlight_multihot_t{suffix}").darrays[0].data
        assert lh.shape == (10242,)
    assert (out / "report.html").is_file()


def test_planted_ventral_representation_beats_the_null_region(volume_run, virtual_nsd_root):
    cfg, _ = volume_run
    plan, cache, _ = plan_study(cfg)
    R = np.asarray(_load(plan, cache, plan.analyses["searchlight"]["multihot"])["r"])
    truth = json.loads((virtual_nsd_root / "virtual_truth.json").read_text())
    labels = np.load(virtual_nsd_root / "virtual_truth.npz")["streams_labels"]
    # ventral is planted from object categories, which the multihot model encodes
    assert truth["rois"]["ventral"]["representations"] == {"objects": 1.0}
    ventral = R[:, labels == truth["rois"]["ventral"]["label"]].mean(axis=1)
    null = R[:, labels == 0].mean(axis=1)
    assert (ventral > null + 0.03).all(), (ventral, null)


def test_chunked_volume_maps_equal_one_direct_searchlight_and_projection(
    volume_run, virtual_nsd_root
):
    """The pipeline's pieces against the library run in one go on the same subject."""
    from brainalign.datasets import load_nsd, load_stimuli
    from brainalign.features import feature_space
    from brainalign.rsa import project_to_fsaverage, searchlight, volume_neighbourhoods

    cfg, _ = volume_run
    plan, cache, _ = plan_study(cfg)
    s = 2
    sub = load_nsd(virtual_nsd_root, s, "func1pt8mm", cache_dir=cfg.output.dir / "cache" / "nsd")
    nb = volume_neighbourhoods(sub.mask, radius=2.0, min_fraction=0.5)
    fs = feature_space("multihot", load_stimuli(virtual_nsd_root))
    X = np.asarray(fs.X)[np.searchsorted(fs.image_ids, sub.image_ids)]
    group_task = plan.analyses["searchlight"]["multihot"]
    projection_id = TaskId("volume_projection", subject=s, model="multihot")
    chunk = group_task.deps[projection_id].deps[
        TaskId("volume_searchlight", subject=s, model="multihot", chunk=0)
    ]
    subsets = np.asarray(_load(plan, cache, chunk.deps["sampling"])["subsets"])
    assert subsets.shape == (3, 60)
    direct = searchlight(sub.betas, X, nb, mode="subsets", subsets=subsets)[0]
    projection = _load(plan, cache, group_task.deps[projection_id])
    volume = np.asarray(projection["volume"])
    centre_voxels = np.flatnonzero(sub.mask)[nb.centres]
    np.testing.assert_allclose(
        volume.ravel()[centre_voxels], np.nan_to_num(direct), rtol=1e-4, atol=1e-5
    )
    # every voxel that is no centre is 0 (nsdcode's badval) before projection
    assert np.count_nonzero(np.delete(volume.ravel(), centre_voxels)) == 0
    expected = project_to_fsaverage(volume, s, virtual_nsd_root)
    np.testing.assert_allclose(np.asarray(projection["r"]), expected, rtol=1e-5, atol=1e-6)
    R = np.asarray(_load(plan, cache, group_task)["r"])
    np.testing.assert_allclose(R[SUBJECTS.index(s)], expected, rtol=1e-5, atol=1e-6)


def test_volume_study_space_exports_projected_maps(virtual_nsd_root, tmp_path):
    """With the study itself in func1pt8mm, the projected maps still reach the run folder."""
    cfg = validate_config(
        _config(virtual_nsd_root, tmp_path / "run", space="func1pt8mm", subjects=[1, 2])
    )
    plan = build_plan(cfg)
    # no second copy of the volume responses: the study's own subject tasks are used
    assert sum(t.stage == "responses" for t in _all(plan)) == 2
    run_study(cfg, report=False)
    maps = {p.name for p in (tmp_path / "run" / "maps").iterdir()}
    assert {"searchlight_multihot_mean_r.lh.func.gii", "searchlight_multihot_t.rh.mgh"} <= maps


def _all(plan):
    from brainalign.pipeline.core import all_tasks

    return all_tasks(plan.targets)


# ---------------------------------------------------------------------------------- config
def _virtual(**searchlight) -> dict:
    return {
        "data": {"kind": "virtual", "n_subjects": 3},
        "output": {"dir": "o"},
        "features": {"spaces": ["multihot"]},
        "analyses": {
            "searchlight": {"models": ["multihot"], **searchlight},
            "encoding": {"enabled": False, "feature_space": "multihot"},
            "insilico": {"enabled": False},
            "decoding": {"enabled": False},
            "networks": {"enabled": False},
        },
    }


def test_radius_default_follows_the_space(tmp_path):
    assert validate_config(_virtual(), base_dir=tmp_path).analyses.searchlight.radius == 10.0
    cfg = validate_config(_virtual(space="func1pt8mm"), base_dir=tmp_path)
    assert cfg.analyses.searchlight.radius == 6.0
    assert cfg.analyses.searchlight.min_fraction == 0.5


@pytest.mark.parametrize("radius", [1.0, 0.5, 10.8 * 3])
def test_volume_radius_is_validated_in_voxels(tmp_path, radius):
    with pytest.raises(ConfigError, match=r"analyses\.searchlight\.radius: .*in voxels"):
        validate_config(_virtual(space="func1pt8mm", radius=radius), base_dir=tmp_path)


@pytest.mark.parametrize(
    ("searchlight", "message"),
    [
        ({"space": "volume"}, "analyses.searchlight.space"),
        ({"space": "func1pt8mm", "min_fraction": 1.5}, "analyses.searchlight.min_fraction"),
    ],
)
def test_bad_searchlight_options_fail(tmp_path, searchlight, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_config(_virtual(**searchlight), base_dir=tmp_path)


def test_study_space_func1pt8mm_needs_the_volume_searchlight(tmp_path):
    d = _virtual()
    d["space"] = "func1pt8mm"
    with pytest.raises(ConfigError, match="analyses.searchlight.space = 'func1pt8mm'"):
        validate_config(d, base_dir=tmp_path)
    d["analyses"]["searchlight"]["space"] = "func1pt8mm"
    assert validate_config(d, base_dir=tmp_path).analyses.searchlight.space == "func1pt8mm"


def test_virtual_data_also_writes_the_volume_for_the_volume_searchlight(tmp_path):
    d = _virtual(space="func1pt8mm", sampling="paper")
    plan = build_plan(validate_config(d, base_dir=tmp_path))
    assert plan.data.params["also_spaces"] == ["func1pt8mm"]
    stages = {t.stage for t in _all(plan)}
    assert {"volume_neighbourhoods", "volume_searchlight", "volume_projection"} <= stages
    assert "neighbourhoods" not in stages
    surface = build_plan(validate_config(_virtual(), base_dir=tmp_path))
    assert "also_spaces" not in surface.data.params
