"""The weighted RSA analysis in a study: a small virtual NSD (measured and oracle commonality,
the truth table) and a tiny RDM folder, each table equal to the library's functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import load_nsd, load_rdm_dataset, load_stimuli, virtual_planted_signal
from brainalign.datasets.coco import COCO_91
from brainalign.errors import ConfigError
from brainalign.features import feature_space
from brainalign.features.words import category_words
from brainalign.pipeline.config import validate_config
from brainalign.pipeline.study import run_study
from brainalign.rsa import compute_rdm
from brainalign.rsa.commonality import rdm_commonality
from brainalign.rsa.shared import common_shared_images
from tests.datasets.rdm_folder import write_by_hand

OFF = {"enabled": False}
#: the words of COCO's category names, of the virtual NSD's others and of an image without any
#: ("something"), for a small word-vector file
WORDS = sorted(
    {w for c in (*COCO_91, "tree", "ball", "table") for w in category_words(c)} | {"something"}
)
WEIGHTED = {
    "enabled": True,
    # category models (word vectors from a small file): no encoder to load, the study takes seconds
    "target": "multihot",
    "controls": ["glove_categories"],
    "rois": ["ventral", "lateral"],
    "n_bootstrap": 10,
    "commonality_bootstrap": 50,
    # the same fit at every centre of fsaverage5: two group maps
    "searchlight": True,
}


def virtual_config(out) -> dict:
    vectors = out.parent / "vectors.txt"
    rng = np.random.default_rng(0)
    vectors.parent.mkdir(parents=True, exist_ok=True)
    vectors.write_text(
        "".join(
            f"{w} " + " ".join(f"{v:.4f}" for v in rng.standard_normal(5)) + "\n" for w in WORDS
        )
    )
    return {
        "data": {
            "kind": "virtual",
            # the smallest virtual NSD whose shared images fill 2 stimulus folds (~6 s to build)
            "n_subjects": 2,
            "options": {"n_shared": 12, "n_unique": 4, "n_sessions": 4},
        },
        "features": {
            "spaces": ["multihot", "glove_categories"],
            "options": {"glove_categories": {"vectors": str(vectors)}},
        },
        "analyses": {
            "roi_rsa": OFF,
            "model_comparison": OFF,
            "searchlight": OFF,
            "searchlight_contrasts": {"contrasts": []},
            "encoding": OFF,
            "insilico": OFF,
            "decoding": OFF,
            "networks": OFF,
            "weighted_rsa": WEIGHTED,
        },
        "output": {"dir": str(out), "formats": ["csv"]},
    }


@pytest.fixture(scope="module")
def virtual_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("weighted_rsa") / "run"
    cfg = validate_config(virtual_config(out))
    run_study(cfg)
    return cfg, out


def test_virtual_study_tables_equal_the_library(virtual_run):
    cfg, out = virtual_run
    weighted = pd.read_csv(out / "tables" / "weighted_rsa.csv")
    parts = pd.read_csv(out / "tables" / "weighted_rsa_commonality.csv")
    assert set(weighted["roi"]) == {"ventral", "lateral"}
    assert set(weighted["model"]) == {"weighted", "multihot", "glove_categories"}
    assert set(parts["part"]) == {
        "unique multihot",
        "unique glove_categories",
        "common multihot & glove_categories",
        "total",
    }
    # the ventral parts again, from the study's files with the library's function
    root = cfg.data.root
    subs = [load_nsd(root, s, "fsaverage", verbose=False) for s in (1, 2)]
    common = common_shared_images(subs)
    D, oracle = [], []
    for s, sub in zip((1, 2), subs, strict=True):
        rows = np.searchsorted(sub.image_ids, common)
        B = np.asarray(sub.betas)[rows][:, np.asarray(sub.rois["ventral"], bool)]
        keep = np.isfinite(B).all(0)
        D.append(compute_rdm(B[:, keep]))
        oracle.append(compute_rdm(virtual_planted_signal(root, s, common, "ventral")[:, keep]))
    stim = load_stimuli(root, image_ids=common, categories=True)
    opts = cfg.features.options
    M = np.stack(
        [
            compute_rdm(feature_space(n, stim, **opts.get(n, {})).X)
            for n in ("multihot", "glove_categories")
        ]
    )
    ref = rdm_commonality(M, np.stack(D), ["multihot", "glove_categories"], n_bootstrap=0)
    got = parts[parts["roi"] == "ventral"].set_index("part")["estimate"]
    np.testing.assert_allclose(
        got[["unique multihot", "unique glove_categories", "common multihot & glove_categories"]],
        ref.estimate,
        atol=1e-4,
    )
    truth = pd.read_csv(out / "tables" / "weighted_rsa_truth.csv")
    assert set(truth["roi"]) == {"ventral", "lateral"}
    row = truth.set_index("roi").loc["ventral"]
    o = rdm_commonality(M, np.stack(oracle), ["multihot", "glove_categories"], n_bootstrap=0)
    assert row["oracle_unique"] == pytest.approx(o.estimate[0], abs=1e-4)
    assert row["agrees"] == (row["measured_shows"] == row["oracle_shows"])
    report = (out / "report.html").read_text()
    assert "weighted RSA and RDM commonality" in report
    assert "Weighted searchlight: held-out gain of adding multihot" in report


def test_virtual_study_maps_equal_the_library(virtual_run):
    """The group t-map of the target's held-out gain: each subject's weighted searchlight on the
    shared images (the library's function), then the group t-test."""
    from brainalign.datasets import load_fsaverage
    from brainalign.datasets.surfaces import read_hemisphere_maps
    from brainalign.rsa import surface_neighbourhoods
    from brainalign.rsa.weighted_searchlight import weighted_searchlight
    from brainalign.stats import group_map

    cfg, out = virtual_run
    root = cfg.data.root
    subs = [load_nsd(root, s, "fsaverage", verbose=False) for s in (1, 2)]
    common = common_shared_images(subs)
    stim = load_stimuli(root, image_ids=common, categories=True)
    opts = cfg.features.options
    models = {
        n: feature_space(n, stim, **opts.get(n, {})).X for n in ("multihot", "glove_categories")
    }
    mesh = load_fsaverage("fsaverage5")
    nb = surface_neighbourhoods(
        [mesh["left"], mesh["right"]],
        radius=cfg.analyses.weighted_rsa.searchlight_radius,
        verbose=False,
    )
    gains = []
    for sub in subs:
        rows = np.searchsorted(sub.image_ids, common)
        res = weighted_searchlight(
            np.asarray(sub.betas)[rows],
            models,
            nb,
            random_state=cfg.compute.random_state,
            reduced=["multihot"],
        )
        gains.append(res.gain("multihot").astype(np.float32))  # as the stage keeps them
    want = group_map(np.stack(gains), fdr_q=cfg.analyses.searchlight.fdr_q)["t"]
    got = np.concatenate(read_hemisphere_maps(out / "maps" / "weighted_rsa_gain_t"))
    # t of 2 subjects divides by their difference: float32 rounding grows where they nearly agree
    moderate = np.abs(want) < 50
    assert moderate.mean() > 0.9
    np.testing.assert_allclose(got[moderate], want[moderate], rtol=1e-2, atol=1e-3)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_unknown_target_stops_the_config(tmp_path):
    cfg = virtual_config(tmp_path / "run")
    cfg["analyses"]["weighted_rsa"] = {**WEIGHTED, "target": "mpnet"}
    with pytest.raises(ConfigError, match="analyses.weighted_rsa.target"):
        validate_config(cfg)
    cfg["analyses"]["weighted_rsa"] = {**WEIGHTED, "controls": ["minilm"]}
    with pytest.raises(ConfigError, match="analyses.weighted_rsa.controls"):
        validate_config(cfg)


def test_rdm_folder_study(tmp_path):
    root = tmp_path / "tiny"
    write_by_hand(root)
    cfg = validate_config(
        {
            "data": {"kind": "rdms", "root": str(root)},
            "features": {"spaces": ["multihot", "animacy"]},
            "analyses": {
                "rdm_rsa": OFF,
                "response_encoding": OFF,
                "response_decoding": OFF,
                "weighted_rsa": {
                    "enabled": True,
                    "target": "multihot",
                    "controls": ["animacy", "rdm:size"],
                    "rois": ["IT"],
                    "n_bootstrap": 5,
                    "commonality_bootstrap": 30,
                },
            },
            "output": {"dir": str(tmp_path / "run"), "formats": ["csv"]},
        }
    )
    run_study(cfg)
    parts = pd.read_csv(tmp_path / "run" / "tables" / "weighted_rsa_commonality.csv")
    weighted = pd.read_csv(tmp_path / "run" / "tables" / "weighted_rsa.csv")
    assert set(parts["roi"]) == {"IT"} and set(weighted["dataset"]) == {"tiny"}
    ds = load_rdm_dataset(root, ["IT"])
    size = ds.models["size"].condensed()
    got = parts.set_index("part")["estimate"]
    assert got["total"] == pytest.approx(got.drop("total").sum(), abs=1e-9)
    # the size model alone: its unique part is at most its own R² with each subject's RDM
    D = np.asarray(ds.condensed("IT"), float)
    r2_size = np.mean([np.corrcoef(size, d)[0, 1] ** 2 for d in D])
    assert got["unique rdm:size"] <= r2_size + 1e-9
    w = weighted.set_index("model")
    assert (w.loc[["multihot", "animacy", "rdm:size"], "weight"] >= 0).all()


def test_too_few_shared_images_skip_the_analysis_not_the_study(monkeypatch):
    """Subjects sharing fewer images than a 2-fold split needs: the stage says why and returns
    no ROI (the export turns it into a run warning) instead of stopping the study."""
    import importlib
    import types

    module = importlib.import_module("brainalign.pipeline.analyses.weighted_rsa")

    def fake_subject(params, ctx, subject=None, space=None):
        ids = np.arange(10) + 10 * subject
        shared = np.zeros(10, bool)
        shared[:4] = True
        ids[:4] = np.arange(4)  # 4 images every subject saw
        order = np.argsort(ids)
        return types.SimpleNamespace(image_ids=ids[order], shared=shared[order], rois={})

    monkeypatch.setattr(module, "load_subject", fake_subject)
    params = {"subjects": [1, 2], "max_images": None, "models": ["a", "b"], "rois": ["ventral"]}
    out = module.weighted_rsa_stage(params, {}, {})
    assert out["rois"] == [] and "only 4 shared images" in out["skipped"]
