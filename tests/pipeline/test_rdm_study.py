"""The study on RDM data sets (``[data] kind = "rdms"``): a tiny hand-written folder end to end,
bad data failing before any work, every rdm_rsa key doing something, and the two real 92-object
data sets with the published Algonauts ceilings and the known-results table."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets import load_rdm_dataset
from brainalign.errors import ConfigError, DataFormatError, InputError
from brainalign.pipeline.config import load_config, validate_config
from brainalign.pipeline.core import all_tasks
from brainalign.pipeline.plan import build_plan
from brainalign.pipeline.study import _ctx, plan_study, run_study, write_report
from brainalign.rsa import evaluate_models
from tests.datasets.rdm_folder import break_folder, write_by_hand

REPO = Path(__file__).resolve().parents[2]
SCORE_COLUMNS = ["dataset", "roi", "model", "layer", "method", "score", "ci_low", "ci_high"]


def tiny_config(root: Path, out: Path, **rdm_rsa) -> dict:
    return {
        "data": {"kind": "rdms", "root": str(root)},
        "features": {"spaces": ["multihot", "animacy"]},
        "analyses": {
            "rdm_rsa": {"vision": [], "n_bootstrap": 40, "n_permutations": 100, **rdm_rsa},
            # 6 stimuli: 3 outer folds leave 4 to fit, enough for 2 inner folds
            "response_encoding": {"outer_folds": 3, "inner_folds": 2},
            "response_decoding": {"outer_folds": 3, "inner_folds": 2, "feature_space": "minilm"},
        },
        "output": {"dir": str(out), "formats": ["csv"]},
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rdm_study")
    root = folder / "tiny"
    write_by_hand(root)
    cfg = validate_config(tiny_config(root, folder / "run"))
    res = run_study(cfg)
    return root, folder / "run", res, cfg


def test_tiny_folder_end_to_end(tiny_run):
    root, out, res, cfg = tiny_run
    assert res.report is not None and res.report.exists()
    html = res.report.read_text()
    for heading in ("RDM data and noise ceilings", "Known results", "Model scores", "MDS"):
        assert heading in html
    scores = pd.read_csv(out / "tables" / "rdm_scores.csv")
    assert list(scores.columns) == SCORE_COLUMNS
    ceil = pd.read_csv(out / "tables" / "noise_ceiling.csv")
    assert {"dataset", "roi", "method", "lower", "upper", "upper_r2"} <= set(ceil.columns)
    assert set(ceil["roi"]) == {"IT", "V1"} and set(scores["method"]) == {
        "spearman",
        "pearson",
        "kendall_tau_a",
    }
    # models: the two feature spaces and the data set's own model RDM
    assert set(scores["model"]) == {"multihot", "animacy", "rdm:size"}
    # the pipeline's numbers are the science function's
    ds = load_rdm_dataset(root)
    models = {
        m: np.load(out / "arrays" / f"rdmset__tiny__model__{m}.npy")[np.triu_indices(6, 1)]
        for m in ("multihot", "animacy", "rdm:size")
    }
    ev = evaluate_models(models, ds.condensed("IT"), "spearman", n_bootstrap=40, random_state=0)
    got = scores[(scores["roi"] == "IT") & (scores["method"] == "spearman")].set_index("model")
    np.testing.assert_allclose(got.loc[list(models), "score"], ev.mean, atol=1e-12)
    np.testing.assert_allclose(got.loc[list(models), "ci_low"], ev.ci(0.95)[0], atol=1e-12)
    known = pd.read_csv(out / "tables" / "known_results.csv")
    assert known["passed"].isna().all()  # not the 92-object data: every check not applicable
    # the Algonauts scores keep the sign where the published score squares it away (issue 20)
    alg = pd.read_csv(out / "tables" / "algonauts_scores.csv")
    subj = pd.read_csv(out / "tables" / "rdm_subject_scores.csv")
    subj = subj[subj["method"] == "spearman"]
    for _, row in alg.iterrows():
        r = subj[(subj["roi"] == row["roi"]) & (subj["model"] == row["model"])]["score"]
        assert row["algonauts_r2"] == pytest.approx(np.mean(r**2), abs=1e-12)
        assert row["algonauts_r2_signed"] == pytest.approx(np.mean(np.sign(r) * r**2), abs=1e-12)
        assert row["n_negative"] == (r < 0).sum() and row["negative"] == (row["spearman"] < 0)
    assert (alg["n_negative"] > 0).any()  # the tiny data have anti-correlated subjects
    assert "algonauts_r2_signed" in html and "n_negative" in html


def test_rerun_reuses_everything(tiny_run):
    _, _, _, cfg = tiny_run
    again = run_study(cfg, report=False)
    assert again.run.computed == []


@pytest.mark.parametrize(
    "damage, message",
    [
        ("asymmetric", "not symmetric"),
        ("size-mismatch", "lists 5 stimuli"),
        ("missing-image", "not found"),
        ("nan", "NaN"),
        ("non-square", "not square"),
    ],
)
def test_bad_data_fails_before_any_work(tmp_path, damage, message):
    root = tmp_path / "tiny"
    write_by_hand(root)
    break_folder(root, damage)
    with pytest.raises(ConfigError, match=message) as err:
        validate_config(tiny_config(root, tmp_path / "run"))
    assert "data.root" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_unknown_roi_and_other_config_errors(tmp_path):
    root = tmp_path / "tiny"
    write_by_hand(root)
    cfg = tiny_config(root, tmp_path / "run")
    cfg["data"]["rois"] = ["IT", "V4"]
    with pytest.raises(ConfigError, match=r"unknown ROI name\(s\) \['V4'\]"):
        validate_config(cfg)
    cfg = tiny_config(root, tmp_path / "run")
    cfg["data"] = {
        "kind": "rdms",
        "sets": [{"importer": "cichy92", "source": str(tmp_path / "no"), "rois": ["V1"]}],
    }
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert "source" in str(err.value) and "unknown ROI name(s) ['V1']" in str(err.value)
    cfg = tiny_config(root, tmp_path / "run", vision=["no-such-net"])
    with pytest.raises(ConfigError, match="unknown model"):
        validate_config(cfg)


#: every key of [analyses.rdm_rsa] and of the rdms [data]: another value that changes the plan
#: (with the other keys it needs, in NEEDS)
NEEDS = {"analyses.rdm_rsa.vision_pooling": {"vision": ["efficientnet-lite0"]}}
RDM_CHANGES = {
    "analyses.rdm_rsa.enabled": False,
    "analyses.rdm_rsa.methods": ["pearson"],
    "analyses.rdm_rsa.bootstrap": "subjects",
    "analyses.rdm_rsa.bootstrap_methods": ["spearman"],
    "analyses.rdm_rsa.n_bootstrap": 50,
    "analyses.rdm_rsa.ci": 0.9,
    "analyses.rdm_rsa.ceiling_pool": "rsatoolbox",
    "analyses.rdm_rsa.data_models": False,
    "analyses.rdm_rsa.vision": ["efficientnet-lite0"],
    "analyses.rdm_rsa.vision_pooling": "mean",
    "analyses.rdm_rsa.networks": "CKPT",
    "analyses.rdm_rsa.language_layers": ["minilm@6"],
    "analyses.rdm_rsa.fdr_q": 0.1,
    "analyses.rdm_rsa.known_results": False,
    "analyses.rdm_rsa.n_permutations": 500,
    "analyses.rdm_rsa.mds": "classical",
    "analyses.response_encoding.enabled": False,
    "analyses.response_encoding.alphas": [1.0, 10.0],
    "analyses.response_encoding.outer_folds": 2,
    "analyses.response_encoding.inner_folds": 3,
    "analyses.response_decoding.enabled": False,
    "analyses.response_decoding.feature_space": "st:all-MiniLM-L6-v2",
    "analyses.response_decoding.alphas": [1.0, 10.0],
    "analyses.response_decoding.outer_folds": 2,
    "analyses.response_decoding.inner_folds": 3,
    "data.rois": ["V1"],
    "data.metric": "euclidean",
    "data.captions": "templates",
    "data.templates": ["a {label}"],
}


def test_every_rdm_key_changes_the_plan(tmp_path):
    from brainalign.pipeline.config import StudyConfig

    root = tmp_path / "tiny"
    write_by_hand(root)
    (tmp_path / "ckpt").write_text("x")
    base = tiny_config(root, tmp_path / "run", vision=[])
    from brainalign.pipeline.analyses import ANALYSES

    analyses = StudyConfig.model_validate(base).analyses
    # every section of the analyses that run on RDM data (the registry's), so a new one's keys
    # must be listed here too
    sections = [s for a in ANALYSES if a.needs == "rdms" for s in a.configs]
    keys = {f"analyses.{s}.{k}" for s in sections for k in getattr(analyses, s).model_dump()}
    keys |= {f"data.{k}" for k in ("rois", "metric", "captions", "templates")}
    assert keys == set(RDM_CHANGES), "a new rdm key: say what it changes"

    def signature(cfg):
        c = validate_config(cfg, base_dir=tmp_path)
        return frozenset(t.key for t in all_tasks(build_plan(c).targets)), tuple(_ctx(c).items())

    for key, value in RDM_CHANGES.items():
        start = copy.deepcopy(base)
        start["analyses"]["rdm_rsa"].update(NEEDS.get(key, {}))
        before = signature(start)
        cfg = copy.deepcopy(start)
        *path, last = key.split(".")
        d = cfg
        for p in path:
            d = d.setdefault(p, {})
        d[last] = {"tiny": [str(tmp_path / "ckpt")]} if value == "CKPT" else value
        assert signature(cfg) != before, f"{key}: changes nothing"


# ----------------------------------------------------------------------------------- real data
def test_objects92_config_is_valid(shared_data):
    if not (shared_data / "real_rdms").exists():
        pytest.skip("real_rdms not in the shared data")
    cfg = load_config(REPO / "configs" / "objects92.toml")
    plan = build_plan(cfg)
    stages = {t.stage for t in all_tasks(plan.targets)}
    assert stages == {
        "rdm_data",
        "rdm_features",
        "rdm_layers",
        "rdm_language_layers",
        "rdm_evaluate",
        "rdm_summary",
        "weighted_rsa_rdms",
    }


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, request):
    shared = request.getfixturevalue("shared_data")
    source = shared / "real_rdms"
    if not (source / "cichy92").exists():
        pytest.skip(f"real RDM data not found at {source}")
    out = tmp_path_factory.mktemp("objects92")
    cfg = {
        "data": {
            "kind": "rdms",
            "sets": [
                {"importer": "kriegeskorte92", "source": str(source), "rois": ["IT"]},
                {"importer": "cichy92", "source": str(source)},
            ],
        },
        "features": {"spaces": ["multihot", "animacy"]},
        "analyses": {
            "rdm_rsa": {
                "methods": ["spearman"],
                "vision": [],
                "n_bootstrap": 100,
                "n_permutations": 1000,
            }
        },
        "output": {"dir": str(out / "run"), "formats": ["csv"]},
    }
    run_study(validate_config(cfg), report=False)
    return out / "run"


def test_real_data_reproduces_the_algonauts_ceilings(real_run):
    ceil = pd.read_csv(real_run / "tables" / "noise_ceiling.csv")
    c = ceil[(ceil["dataset"] == "cichy92") & (ceil["method"] == "spearman")].set_index("roi")
    assert (
        abs(c.loc["EVC", "upper_r2"] - 0.1589) < 5e-5
        and abs(c.loc["IT", "upper_r2"] - 0.3075) < 5e-5
    )
    assert c["matches_published"].all()
    assert (ceil["lower"] < ceil["upper"]).all()


def test_real_data_known_results_are_computed(real_run):
    known = pd.read_csv(real_run / "tables" / "known_results.csv").set_index("check")
    # one row per claim: the published animacy RDM and the one built from the categories are
    # the same RDM on the 92 images, and the row says so
    assert list(known.index) == [
        "animacy_it_gt_evc",
        "animacy_human_it",
        "human_it_agrees",
        "efficientnet_evc_early_it_late",
    ]
    assert "same RDM" in known.loc["animacy_human_it", "numbers"]
    # computed (pass or fail, whatever the data say) where the data allow, n/a without a network
    for check in ("animacy_it_gt_evc", "animacy_human_it", "human_it_agrees"):
        assert str(known.loc[check, "passed"]) in ("True", "False")
        assert np.isfinite(known.loc[check, "statistic"])
    assert pd.isna(known.loc["efficientnet_evc_early_it_late", "passed"])
    scores = pd.read_csv(real_run / "tables" / "rdm_scores.csv")
    assert list(scores.columns) == SCORE_COLUMNS
    assert (scores["ci_low"] <= scores["score"]).all() and (
        scores["score"] <= scores["ci_high"]
    ).all()


def test_methods_text_reads_the_validated_config(tiny_run):
    """The report's methods paragraphs come from the run's recorded config validated (defaults
    filled by the config models, never restated by the writers): the same paragraphs as
    methods_text, whether a key was written or left to its default; a record this version
    cannot read gives one paragraph saying so."""
    import html as html_lib

    from brainalign.pipeline.study import _run_methods, methods_text

    _, out, res, cfg = tiny_run
    expected = methods_text(cfg)
    assert any("95% CIs" in p for p in expected) and any("rdm:<name>" in p for p in expected)
    # written afresh from the run folder: a rerun without a report (above) supersedes the first
    report = html_lib.unescape(write_report(out).read_text())
    assert all(p in report for p in expected)
    recorded = cfg.to_dict()
    del recorded["analyses"]["rdm_rsa"]["ci"], recorded["analyses"]["rdm_rsa"]["n_bootstrap"]
    got = [p for write in _run_methods(recorded, "rdms") for p in write(recorded)]
    # n_bootstrap was 40 in the run; left out of the record, the default (1000) is what it says
    assert got == [p.replace("40 samples", "1000 samples") for p in expected]
    recorded["analyses"]["rdm_rsa"]["ci"] = 2.0
    (bad,) = [p for write in _run_methods(recorded, "rdms") for p in write(recorded)]
    assert "cannot read" in bad and "analyses.rdm_rsa.ci" in bad


def _cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    import sys

    from brainalign.cli import main

    monkeypatch.setattr(sys, "argv", ["brainalign", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_subject_study(tmp_path, bootstrap: str | None = None) -> Path:
    """A study TOML over a one-subject copy of the hand-written folder."""
    write_by_hand(tmp_path / "tiny", n_subjects=1)
    path = tmp_path / "study.toml"
    path.write_text(
        '[data]\nkind = "rdms"\nroot = "tiny"\n'
        '[features]\nspaces = ["multihot", "animacy"]\n'
        "[analyses.rdm_rsa]\nvision = []\nn_bootstrap = 40\nn_permutations = 100\n"
        + (f'bootstrap = "{bootstrap}"\n' if bootstrap else "")
        + "[analyses.response_encoding]\nouter_folds = 3\ninner_folds = 2\n"
        + "[analyses.response_decoding]\nenabled = false\n"
        + '[output]\ndir = "run"\nformats = ["csv"]\n'
    )
    return path


def test_one_subject_runs_end_to_end_from_the_cli(tmp_path, monkeypatch, capsys):
    """A lab's single-subject data set (issue 21): `brainalign run` goes through with the
    stimulus bootstrap (bootstrap = "auto"), no noise ceiling, and the report says so."""
    study = _one_subject_study(tmp_path)
    check = ("rdms", "check", tmp_path / "tiny", "--config", study)
    code, out, err = _cli(monkeypatch, capsys, *check)
    assert code == 0, err
    assert "one subject in IT, V1" in out and "every requirement" in out
    code, out, err = _cli(monkeypatch, capsys, "run", study)
    assert code == 0, err
    inf = pd.read_csv(tmp_path / "run" / "tables" / "rdm_inference.csv")
    assert set(inf["bootstrap"]) == {"stimuli"} and set(inf["n_subjects"]) == {1}
    assert (inf["dof"] == 5).all() and inf["sem"].gt(0).all()  # 6 stimuli
    assert pd.read_csv(tmp_path / "run" / "tables" / "noise_ceiling.csv")["lower"].isna().all()
    pairs = pd.read_csv(tmp_path / "run" / "tables" / "rdm_pairwise.csv")
    assert pairs["p"].between(0, 1).all()  # model-vs-model tests over stimuli
    html = (tmp_path / "run" / "report.html").read_text()
    assert "stimulus-bootstrap t-tests (one subject" in html


@pytest.mark.parametrize("bootstrap", ["dual", "subjects", "none"])
def test_a_bootstrap_across_subjects_with_one_subject_stops_before_any_work(
    tmp_path, monkeypatch, capsys, bootstrap
):
    study = _one_subject_study(tmp_path, bootstrap=bootstrap)
    check = ("rdms", "check", tmp_path / "tiny", "--config", study)
    for args in (check, ("run", study, "--dry-run")):
        code, _, err = _cli(monkeypatch, capsys, *args)
        assert code == 2, err
        assert "analyses.rdm_rsa.bootstrap" in err and "one subject" in err and "'auto'" in err
    with pytest.raises(ConfigError, match="analyses.rdm_rsa.bootstrap"):
        load_config(study)
    assert not (tmp_path / "run").exists()


def test_a_data_set_without_images_scores_label_models_and_leaves_out_vision(tmp_path):
    """No image column (issue 21): caption and label models run; the default vision model is
    left out with a plan line and a run warning naming the key, never fed placeholders."""
    root = tmp_path / "tiny"
    write_by_hand(root)
    table = pd.read_csv(root / "stimuli.tsv", sep="\t").drop(columns=["image"])
    table.to_csv(root / "stimuli.tsv", sep="\t", index=False)
    for p in (root / "images").iterdir():
        p.unlink()
    (root / "images").rmdir()
    ds = load_rdm_dataset(root)
    assert not ds.has_images
    assert ds.to_stimuli(captions=[[label] for label in ds.labels]).images is None
    with pytest.raises(InputError, match="no image column"):
        ds.read_images()
    cfg = tiny_config(root, tmp_path / "run")
    cfg["analyses"]["rdm_rsa"]["vision"] = ["efficientnet-lite0"]
    cfg = validate_config(cfg)
    _, _, text = plan_study(cfg)
    assert "left out: tiny: efficientnet-lite0: vision models left out" in text
    assert "rdm_layers" not in text
    res = run_study(cfg)
    scores = pd.read_csv(tmp_path / "run" / "tables" / "rdm_scores.csv")
    assert set(scores["model"]) == {"multihot", "animacy", "rdm:size"}
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    (left_out,) = [w for w in meta["warnings"] if w["key"] == "analyses.rdm_rsa.vision"]
    assert left_out["concerns"] == "tiny: efficientnet-lite0"
    assert "vision models left out" in res.report.read_text()


def test_category_models_without_a_category_column_stop_before_any_work(
    tmp_path, monkeypatch, capsys
):
    """multihot and animacy on a data set without categories (issue 21): every entry point
    names the column to add, in the data set's words (not COCO's)."""
    study = _one_subject_study(tmp_path)
    table = pd.read_csv(tmp_path / "tiny" / "stimuli.tsv", sep="\t").drop(columns=["category"])
    table.to_csv(tmp_path / "tiny" / "stimuli.tsv", sep="\t", index=False)
    check = ("rdms", "check", tmp_path / "tiny", "--config", study)
    for args in (check, ("run", study, "--dry-run")):
        code, _, err = _cli(monkeypatch, capsys, *args)
        assert code == 2, err
        assert "'multihot' needs a 'category' column" in err
        assert "'animacy' needs a 'category' or 'animate' column" in err
    with pytest.raises(ConfigError, match="'category' column"):
        load_config(study)
    assert not (tmp_path / "run").exists()


def test_responses_get_cross_validated_encoding(tiny_run):
    """An ROI given as responses (V1) is also encoded (issue 21): per subject, the mean held-out
    r of its units from each feature space is encoding.cross_val_r's; the group row is their
    mean with a t-test; an ROI given as RDMs (IT) has no units and is left out."""
    from brainalign.encoding import cross_val_r
    from brainalign.features import feature_space, label_stimuli

    root, out, res, cfg = tiny_run
    subj = pd.read_csv(out / "tables" / "response_encoding_subjects.csv")
    group = pd.read_csv(out / "tables" / "response_encoding.csv")
    assert set(subj["roi"]) == {"V1"} and set(subj["model"]) == {"multihot", "animacy"}
    ds = load_rdm_dataset(root)
    X = feature_space("animacy", label_stimuli(ds, "auto", cfg.data.templates)).X
    Y = np.load(root / "responses" / "V1.npy")
    a = cfg.analyses.response_encoding
    for s, subject in enumerate(ds.subjects["V1"]):
        r = cross_val_r(X, Y[s], alphas=a.alphas, outer=3, inner=2, random_state=0)
        row = subj[(subj["model"] == "animacy") & (subj["subject"] == subject)]
        assert row["r"].item() == pytest.approx(np.nanmean(r), abs=1e-12)
    g = group[group["model"] == "animacy"]
    assert g["r"].item() == pytest.approx(subj[subj["model"] == "animacy"]["r"].mean())
    assert g["n_subjects"].item() == 3 and 0 <= g["p"].item() <= 1
    assert "Response encoding" in write_report(out).read_text()  # (a rerun above supersedes)


def test_responses_are_decoded_into_captions(tiny_run):
    """An ROI given as responses is decoded (issue 21): caption embeddings predicted by
    encoding.cross_val_predict from each subject's units identify their stimuli as
    decoding.identification_accuracy says, and a decoded caption is never the stimulus's own."""
    from brainalign.decoding import identification_accuracy
    from brainalign.encoding import cross_val_predict
    from brainalign.features import feature_space, label_stimuli

    root, out, res, cfg = tiny_run
    subj = pd.read_csv(out / "tables" / "response_decoding_subjects.csv")
    assert set(subj["roi"]) == {"V1"} and len(subj) == 3
    ds = load_rdm_dataset(root)
    stim = label_stimuli(ds, "auto", cfg.data.templates)
    E = feature_space("minilm", stim).X
    Y = np.load(root / "responses" / "V1.npy")
    a = cfg.analyses.response_decoding
    pred = cross_val_predict(Y[0], E, alphas=a.alphas, outer=3, inner=2, random_state=0)
    want = identification_accuracy(pred, E, n_way=2, top=1)["top1"]
    assert subj["pairwise"].iloc[0] == pytest.approx(want, abs=1e-12)
    group = pd.read_csv(out / "tables" / "response_decoding.csv")
    assert group["pairwise"].item() == pytest.approx(subj["pairwise"].mean())
    examples = pd.read_csv(out / "tables" / "response_decoding_examples.csv")
    assert len(examples) and (examples["decoded_from"] != examples["stimulus"]).all()
    assert "Response decoding" in write_report(out).read_text()


def test_responses_with_repetitions_get_ceiling_normalised_encoding(tmp_path):
    """With repetitions the encoding score is also divided by its noise ceiling (issue 21): the
    mean over units of √(split-half reliability)."""
    from brainalign.encoding import split_half_reliability

    root = tmp_path / "tiny"
    write_by_hand(root)
    reps = np.random.default_rng(5).standard_normal((3, 4, 6, 10))
    reps += 2 * reps.mean(axis=1, keepdims=True)  # a stimulus-driven part shared by repetitions
    np.save(root / "responses" / "V1.npy", reps)
    cfg = tiny_config(root, tmp_path / "run")
    cfg["features"]["spaces"] = ["animacy"]
    cfg["analyses"]["response_decoding"]["enabled"] = False
    run_study(validate_config(cfg), report=False)
    subj = pd.read_csv(tmp_path / "run" / "tables" / "response_encoding_subjects.csv")
    for s, row in subj.iterrows():
        ceiling = np.nanmean(np.sqrt(np.clip(split_half_reliability(reps[s]), 0, None)))
        assert row["ceiling"] == pytest.approx(ceiling, abs=1e-12)
        assert row["r_normalised"] == pytest.approx(row["r"] / ceiling, abs=1e-12)


def test_placeholder_images_are_refused_by_name(tmp_path):
    """Every stimulus pointing at one picture (issue 21): a vision model stops naming the table,
    instead of scoring placeholders without a word."""
    root = tmp_path / "tiny"
    write_by_hand(root)
    table = pd.read_csv(root / "stimuli.tsv", sep="\t")
    table["image"] = "images/s0.png"
    table.to_csv(root / "stimuli.tsv", sep="\t", index=False)
    cfg = tiny_config(root, tmp_path / "run", vision=["efficientnet-lite0"], methods=["pearson"])
    with pytest.raises(DataFormatError, match="same picture"):
        run_study(validate_config(cfg), report=False)


def test_your_own_model_is_scored_by_name(tmp_path):
    """A [[models]] table (issue 21): a model of your own, here precomputed features, is named
    in rdm_rsa's vision list like a zoo model; its files key its task; an unknown name or kind
    stops the config."""
    from brainalign.rsa import compute_rdm

    root = tmp_path / "tiny"
    write_by_hand(root)
    X = np.random.default_rng(2).standard_normal((6, 5))
    np.save(tmp_path / "mine.npy", X)
    np.save(tmp_path / "mine_ids.npy", np.arange(6))
    cfg = tiny_config(root, tmp_path / "run", vision=["mine"], methods=["pearson"])
    cfg["models"] = [
        {
            "name": "mine",
            "kind": "features",
            "options": {"path": "mine.npy", "ids_path": "mine_ids.npy"},
        }
    ]
    study = validate_config(cfg, base_dir=tmp_path)
    run_study(study, report=False)
    scores = pd.read_csv(tmp_path / "run" / "tables" / "rdm_subject_scores.csv")
    got = scores[(scores["model"] == "mine") & (scores["roi"] == "IT")]["score"].to_numpy()
    ds = load_rdm_dataset(root)
    want = [np.corrcoef(compute_rdm(X), d)[0, 1] for d in ds.condensed("IT")]
    np.testing.assert_allclose(got, want, atol=1e-10)
    # the features file keys the task: a new file, a new task
    before = {t.key for t in all_tasks(build_plan(study).targets)}
    np.save(tmp_path / "mine.npy", X + 1)
    after = {t.key for t in all_tasks(build_plan(validate_config(cfg, base_dir=tmp_path)).targets)}
    assert before != after
    cfg["analyses"]["rdm_rsa"]["vision"] = ["yours"]
    cfg["models"][0]["kind"] = "onnx"
    with pytest.raises(ConfigError, match="unknown model") as err:
        validate_config(cfg, base_dir=tmp_path)
    assert "models[0].kind" in str(err.value)


def test_a_users_resnet18_from_their_file_is_a_layer_profile(tmp_path):
    """Issue 21: a lab's own ResNet-18 (its .py file and its weights in a local file), declared
    as a ``module`` model, is read at named layers and scored layer by layer; one layer equals a
    plain reference (its whole feature maps, constant units left out, correlation RDM)."""
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from brainalign.features.vision import activations, load_module_model
    from brainalign.rsa import compute_rdm

    source = REPO / "examples" / "resnet18.py"
    root = tmp_path / "tiny"
    write_by_hand(root)
    model = load_module_model("resnet18", source)  # the file's own random initialisation
    torch.manual_seed(0)
    save_file(type(model.module)().state_dict(), str(tmp_path / "r18.safetensors"))
    layers = ["layer1", "layer2", "layer3", "layer4", "avgpool"]
    cfg = tiny_config(root, tmp_path / "run", vision=["resnet18"], methods=["pearson"])
    cfg["models"] = [
        {"name": "resnet18", "kind": "module",
         "options": {"factory": "resnet18", "source": str(source),
                     "weights": "r18.safetensors", "layers": layers}}
    ]  # fmt: skip
    run_study(validate_config(cfg, base_dir=tmp_path), report=False)
    scores = pd.read_csv(tmp_path / "run" / "tables" / "rdm_subject_scores.csv")
    mine = scores[(scores["model"] == "resnet18") & (scores["roi"] == "IT")]
    assert list(dict.fromkeys(mine["layer"])) == layers
    images = np.stack([np.asarray(Image.open(root / "images" / f"s{i}.png").convert("RGB"))
                       for i in range(6)])  # fmt: skip
    model = load_module_model("resnet18", source, tmp_path / "r18.safetensors")
    X = activations(model, images, layers=["layer3"], pooling=None)["layer3"].reshape(6, -1)
    rdm = compute_rdm(X[:, np.ptp(X, axis=0) > 0], metric="correlation")
    want = [np.corrcoef(rdm, d)[0, 1] for d in load_rdm_dataset(root).condensed("IT")]
    got = mine[mine["layer"] == "layer3"].sort_values("subject")["score"].to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_typos_in_roi_space_and_model_names_get_a_suggestion(tmp_path):
    """A misspelt ROI, feature space or model name names the one it resembles (issue 21)."""
    root = tmp_path / "tiny"
    write_by_hand(root)
    cfg = tiny_config(root, tmp_path / "run", vision=["efficientnet-lte0"])
    cfg["data"]["rois"] = ["ITT"]
    cfg["features"]["spaces"] = ["multihott"]
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    text = str(err.value)
    assert "(did you mean 'IT'?)" in text
    assert "(did you mean 'multihot'?)" in text
    assert "(did you mean 'efficientnet-lite0'?)" in text


def test_too_few_stimuli_for_the_folds_leave_the_response_analyses_out(tmp_path):
    """6 stimuli cannot fill 5 outer folds with 5 inner ones: the response analyses are left out
    with a plan line naming the key to lower; RSA runs."""
    root = tmp_path / "tiny"
    write_by_hand(root)
    cfg = tiny_config(root, tmp_path / "run")
    del cfg["analyses"]["response_encoding"], cfg["analyses"]["response_decoding"]
    _, _, text = plan_study(validate_config(cfg))
    for section in ("response_encoding", "response_decoding"):
        assert f"left out: tiny: {section}: left out: its 6 stimuli" in text
    assert "response_encoding" not in text.split("left out")[0]  # no task planned


def test_stimulus_columns_are_read_once_per_version_of_the_table(tmp_path):
    """The config check and every planning of a run read stimuli.tsv's header through one
    reader: the columns read_stimulus_table sees, read again only when the file changes."""
    from brainalign.datasets.rdms import read_stimulus_table
    from brainalign.pipeline.analyses.rdm_rsa import _header, stimulus_columns

    rows = [f"s{i}\tlabel {i}\tcat" for i in range(4)]
    table = tmp_path / "stimuli.tsv"
    table.write_text("\n".join(["stimulus\tlabel\tcategory", *rows]) + "\n")
    before = _header.cache_info().misses
    columns = stimulus_columns(tmp_path)
    assert columns == set(read_stimulus_table(tmp_path, check_images=False).columns)
    assert stimulus_columns(tmp_path) == columns and _header.cache_info().misses == before + 1
    table.write_text("\n".join(["stimulus\tlabel\tcategory\timage", *rows]) + "\n")
    assert "image" in stimulus_columns(tmp_path) and _header.cache_info().misses == before + 2
    assert stimulus_columns(tmp_path / "none") is None
