"""The command line: bank build / search, decode and encode on a virtual NSD."""

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from brainalign.cli.encoding import register
from brainalign.datasets import load_stimuli
from brainalign.decoding import DECODING_ALPHAS, DECODING_FIT_INTERCEPT, DECODING_K, CaptionBank
from brainalign.pipeline.analyses.decoding import DecodingConfig


@pytest.fixture(scope="module")
def app():
    a = typer.Typer()
    register(a)
    return a


@pytest.fixture(scope="module")
def bow_inputs(virtual_nsd_root, bow_encoder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_inputs")
    stim = load_stimuli(virtual_nsd_root, categories=False)
    E = np.stack([bow_encoder.encode(c).mean(0) for c in stim.captions])
    np.savez(
        folder / "emb.npz",
        image_ids=stim.image_ids,
        embeddings=E,
        identity=np.array(bow_encoder.identity),
    )
    CaptionBank.build(
        [c for cs in stim.captions for c in cs], bow_encoder, folder / "bank", dtype="float16"
    )
    return folder


def test_bank_build_and_search_with_mpnet(app, mpnet, shared_data, tmp_path):
    corpus = tmp_path / "corpus.txt"
    captions = read_some(shared_data, 40)
    corpus.write_text("\n".join(captions))
    runner = CliRunner()
    res = runner.invoke(
        app, ["bank", "build", str(corpus), str(tmp_path / "bank"), "--dtype", "float32"]
    )
    assert res.exit_code == 0, res.output
    assert "40 captions" in res.output
    res = runner.invoke(app, ["bank", "search", str(tmp_path / "bank"), captions[7], "-k", "2"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1].strip().endswith(captions[7])


def read_some(shared_data, n):
    from brainalign.decoding import read_corpus

    return read_corpus(
        shared_data / "google_conceptual_captions_val" / "Validation_GCC-1.1.0-Validation.tsv"
    )[:n]


def test_decode_and_encode(app, virtual_nsd_root, bow_inputs, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "decode",
            str(virtual_nsd_root),
            "--out",
            str(tmp_path / "dec"),
            "--embeddings",
            str(bow_inputs / "emb.npz"),
            "--bank",
            str(bow_inputs / "bank"),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "dec" / "summary.json").read_text())
    assert summary["identification"]["2"]["top1"] > 0.7
    assert 0 < summary["caption_metrics"]["bleu1"] <= 1 and "cider_d" in summary["human_ceiling"]
    assert (tmp_path / "dec" / "decoded.csv").read_text().count("\n") == summary["n_test"] + 1
    # the pipeline's defaults: one grid, one intercept
    assert summary["alphas"] == list(DECODING_ALPHAS) and summary["fit_intercept"] is True
    res = runner.invoke(
        app,
        [
            "encode",
            str(virtual_nsd_root),
            "--out",
            str(tmp_path / "enc"),
            "--embeddings",
            str(bow_inputs / "emb.npz"),
            "--format",
            "mgz",
        ],
    )
    assert res.exit_code == 0, res.output
    enc = json.loads((tmp_path / "enc" / "subj01_encoding_summary.json").read_text())
    assert enc["roi_mean_r"]["ventral"] > 0.1
    assert (tmp_path / "enc" / "subj01_encoding_r.lh.mgz").exists()


def test_decode_and_the_pipeline_share_their_defaults():
    cfg = DecodingConfig()
    assert cfg.alphas == list(DECODING_ALPHAS) and cfg.fit_intercept == DECODING_FIT_INTERCEPT
    assert cfg.k == DECODING_K and cfg.bank is None


def test_decode_edge_warning_names_the_option_and_is_kept(
    app, virtual_nsd_root, bow_inputs, tmp_path
):
    args = ["decode", str(virtual_nsd_root), "--out", str(tmp_path / "d")]
    args += ["--embeddings", str(bow_inputs / "emb.npz"), "--bank", str(bow_inputs / "bank")]
    res = CliRunner().invoke(app, [*args, "--alphas", "1e4,1e5", "--fit-intercept", "false"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    edges = summary["alpha_edges"]
    assert summary["alphas"] == [1e4, 1e5] and summary["fit_intercept"] is False
    assert edges["n_smallest"] > 0.05 * edges["n_fitted"]
    (note,) = [w for w in summary["warnings"] if "penalty" in w]
    assert f"{edges['n_smallest']} of {edges['n_fitted']} embedding dimensions" in note
    assert "widen --alphas" in note and "widen --alphas" in res.output
    bad = CliRunner().invoke(app, [*args, "--alphas", "1,-2"])
    assert bad.exit_code != 0 and "--alphas" in bad.output
    bad = CliRunner().invoke(app, [*args, "--fit-intercept", "maybe"])
    assert bad.exit_code != 0 and "--fit-intercept" in bad.output


def test_decode_refuses_other_encoders_bank(app, virtual_nsd_root, bow_inputs, tmp_path):
    z = dict(np.load(bow_inputs / "emb.npz"))
    z["identity"] = np.array("another-model@123")
    np.savez(tmp_path / "other.npz", **z)
    res = CliRunner().invoke(
        app,
        [
            "decode",
            str(virtual_nsd_root),
            "--out",
            str(tmp_path / "d"),
            "--embeddings",
            str(tmp_path / "other.npz"),
            "--bank",
            str(bow_inputs / "bank"),
        ],
    )
    assert res.exit_code != 0
    assert "bank was built with" in str(res.exception)
