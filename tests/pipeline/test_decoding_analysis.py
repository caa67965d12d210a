"""The pipeline's decoding analysis on a virtual NSD: the caption bank and its ceilings on the
test set the subjects are decoded on, the decoder's penalty-grid edges as a table and as run
warnings that name the config key (issue 20, section 3)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from brainalign.datasets import load_stimuli, read_shared_ids
from brainalign.datasets.nsd import special_ids
from brainalign.decoding import DECODING_ALPHAS
from brainalign.encoding import edges_open, ridge_cv
from brainalign.pipeline.analyses import decoding as analysis
from brainalign.pipeline.analyses._penalty_edges import edges_table, warn_edges
from brainalign.pipeline.core import Task, TaskId

SUBJECTS = (1, 4)  # subject 4 saw fewer images three times (the special set is smaller)


@pytest.fixture(scope="module")
def decoded(virtual_nsd_root, bow_encoder, tmp_path_factory):
    """The caption bank and two subjects' decodings (bag-of-words embeddings), one with a grid
    whose small end is open (1e4, 1e5) and one with the default grid."""
    mp = pytest.MonkeyPatch()
    mp.setattr(analysis, "sentence_encoder", lambda name, device: bow_encoder)
    stim = load_stimuli(virtual_nsd_root, categories=False)
    model = {
        "X": np.stack([bow_encoder.encode(c).mean(0) for c in stim.captions]),
        "ids": stim.image_ids,
    }
    ctx = {"work_dir": str(tmp_path_factory.mktemp("work"))}
    bank_params = {
        "root": str(virtual_nsd_root),
        "bank": None,
        "encoder": "bow",
        "dtype": "float32",
        "test_set": "all",
        "bank_key": "test",
    }
    bank = analysis.caption_bank(bank_params, {}, ctx)
    base = {"root": str(virtual_nsd_root), "space": "fsaverage", "test_set": "all"}
    out = {}
    for grid_name, grid in (("open", [1e4, 1e5]), ("default", list(DECODING_ALPHAS))):
        for s in SUBJECTS:
            params = {
                **base,
                "subject": s,
                "rois": ["ventral", "lateral"],
                "alphas": grid,
                "mode": "per_target",
                "fit_intercept": True,
                "k": 3,
            }
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[grid_name, s] = (
                    params,
                    analysis.decoding(params, {"model": model, "bank": bank}, ctx),
                )
    mp.undo()
    return bank_params, bank, out


def test_ceilings_are_on_the_test_set_not_every_shared_image(virtual_nsd_root, decoded):
    _, bank, _ = decoded
    special = special_ids(virtual_nsd_root)
    np.testing.assert_array_equal(bank["ceiling_ids"], special)
    assert len(special) < len(read_shared_ids(virtual_nsd_root))
    assert len(bank["ceiling"]) == len(special)
    # each bank caption's images, as pairs: every caption of the data set has at least one
    assert len(bank["source_rows"]) >= len(np.unique(bank["source_rows"]))


def test_stage_keeps_the_grid_edges_and_whether_they_are_open(decoded):
    _, _, out = decoded
    for s in SUBJECTS:
        opened = out["open", s][1]
        n_fit, n_lo, _ = opened["alpha_edges"].tolist()
        assert n_fit == 32 and n_lo > 0.05 * n_fit and opened["edges_open"][0]
        closed = out["default", s][1]
        np.testing.assert_array_equal(closed["candidates"], DECODING_ALPHAS)
        assert not closed["edges_open"].any()  # the default grid reaches saturation


def _export(virtual_nsd_root, decoded, grid_name):
    bank_params, bank, out = decoded
    bank_task = Task(TaskId("caption_bank"), bank_params)
    tasks, results = {}, {bank_task.key: bank}
    for s in SUBJECTS:
        params, res = out[grid_name, s]
        t = Task(TaskId("decoding", subject=s), params, {"bank": bank_task})
        tasks[f"sub-{s:02d}"], results[t.key] = t, res
    tables, said = {}, []
    cfg = SimpleNamespace(
        data=SimpleNamespace(root=virtual_nsd_root),
        analyses=SimpleNamespace(decoding=analysis.DecodingConfig(n_examples=2)),
    )
    ctx = SimpleNamespace(
        config=cfg,
        plan=SimpleNamespace(subjects=list(SUBJECTS)),
        load=lambda task: results[task.key],
        writer=SimpleNamespace(table=lambda name, df: tables.__setitem__(name, df)),
        warn=lambda concerns, message, key=None: said.append((concerns, message, key)),
    )
    analysis.export(ctx, tasks)
    return tables, said


def test_export_writes_the_edges_and_warns_naming_the_config_key(virtual_nsd_root, decoded):
    tables, said = _export(virtual_nsd_root, decoded, "open")
    edges = tables["decoding_alpha_edges"]
    assert edges["subject"].tolist() == list(SUBJECTS) and edges["smallest_open"].all()
    assert [c for c, _, _ in said] == [f"decoding, subject {s}" for s in SUBJECTS]
    for (_, message, key), n in zip(said, edges["n_smallest_alpha"], strict=True):
        assert key == "analyses.decoding.alphas"
        assert f"{n} of 32 embedding dimensions chose the smallest alpha (10000)" in message
        assert "widen analyses.decoding.alphas" in message
    metrics = tables["caption_metrics"]
    human = metrics[metrics["who"].str.startswith("human")]
    assert human["n_images"].tolist() == [len(special_ids(virtual_nsd_root))]
    # the default grid's ends saturate: the same counts at an edge, no warning
    tables, said = _export(virtual_nsd_root, decoded, "default")
    assert said == [] and not tables["decoding_alpha_edges"]["smallest_open"].any()


def test_open_and_closed_edges_follow_the_eigenvalues(rng):
    lam = np.array([400.0, 900.0, 2e4])
    assert edges_open([1.0, 10.0], lam).tolist() == [True, True]
    assert edges_open([1e-4, 1e8], lam).tolist() == [False, False]
    assert edges_open([1e-4], []).tolist() == [True, True]
    # the solver reports the same: a tiny grid end saturates, a big one does not
    X, Y = rng.normal(size=(40, 300)), rng.normal(size=(40, 3))
    with pytest.warns(UserWarning, match="chose the largest alpha"):
        assert ridge_cv(X, Y, [1e-6, 1.0]).edges_open.tolist() == [False, True]
    with pytest.warns(UserWarning, match="chose the smallest alpha"):
        assert ridge_cv(X, Y, [1e3, 1e4]).edges_open.tolist() == [True, True]


def test_fracridge_edges_name_the_mode_key():
    said = []
    ctx = SimpleNamespace(warn=lambda c, m, k=None: said.append((c, m, k)))
    table = edges_table([2], [[768, 768, 0]], [0.05, 1.05], "fracridge")
    warn_edges(ctx, table, "decoding", "embedding dimensions")
    ((_, message, key),) = said
    assert key == "analyses.decoding.mode" and 'analyses.decoding.mode = "per_target"' in message
