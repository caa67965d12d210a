"""The study config: TOML in, clear errors naming the key before any work starts."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from brainalign.errors import ConfigError
from brainalign.pipeline.config import StudyConfig, load_config, validate_config

REPO = Path(__file__).resolve().parents[2]


def _base(**extra):
    cfg = {"data": {"kind": "virtual"}, "output": {"dir": "run"}}
    for k, v in extra.items():
        cfg[k] = v
    return cfg


def test_defaults_and_path_resolution(tmp_path):
    cfg = validate_config(_base(), base_dir=tmp_path)
    assert cfg.output.dir == tmp_path / "run"
    assert cfg.data.root == tmp_path / "run" / "virtual_nsd"
    assert cfg.analyses.roi_rsa.sampling == "paper" and cfg.analyses.roi_rsa.subset_size == 100
    assert cfg.compute.executor == "serial"
    assert StudyConfig.model_validate(cfg.to_dict()).to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"analyses": {"searchlight": {"radius": -3}}}, "analyses.searchlight.radius: must be > 0"),
        ({"analyses": {"searchlight": {"radius": -3}}}, "got -3"),
        (
            {"data": {"kind": "nsd", "root": "/no/such/nsd"}},
            "data.root: NSD root '/no/such/nsd' does not exist",
        ),
        ({"data": {"kind": "virtual", "n_subjectz": 3}}, "data.n_subjectz: unknown key"),
        (
            {"analyses": {"roi_rsa": {"rois": ["v1"]}}},
            "analyses.roi_rsa.rois: unknown ROI(s) ['v1']",
        ),
        ({"compute": {"device": "gpu0"}}, "compute.device"),
        ({"compute": {"workers": 0}}, "compute.workers: must be > 0"),
        ({"subjects": [1, 1]}, "subjects: duplicate"),
        ({"subjects": [9]}, "subjects: [9] exceed data.n_subjects = 8"),
        (
            {"analyses": {"searchlight": {"models": ["mpnet_verbs"]}}},
            "analyses.searchlight.models: 'mpnet_verbs' is not listed",
        ),
        (
            {"compute": {"scheduler": "tcp://127.0.0.1:8786"}},
            "compute.scheduler: a scheduler address needs",
        ),
        (
            {"analyses": {"decoding": {"bank": "nope.tsv"}}},
            "analyses.decoding.bank: caption corpus",
        ),
        ({"space": "func1pt8mm"}, "space: 'func1pt8mm'"),
        ({"features": {"options": {"glove_all": {}}}}, "features.options.glove_all"),
    ],
)
def test_bad_values_name_the_key(tmp_path, change, message):
    cfg = _base()
    for k, v in change.items():
        cfg[k] = v
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, base_dir=tmp_path)
    assert message in str(err.value)


def test_unknown_feature_space_lists_the_available_ones(tmp_path):
    features = pytest.importorskip("brainalign.features")
    if not hasattr(features, "list_feature_spaces"):
        pytest.skip("feature-space registry not available")
    cfg = _base(features={"spaces": ["mpnet", "gpt9"]})
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, base_dir=tmp_path)
    assert "features.spaces: unknown feature space 'gpt9'" in str(err.value)
    assert "mpnet_nouns" in str(err.value)


def test_load_toml_with_overrides(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(
        'name = "t"\n[data]\nkind = "virtual"\nn_subjects = 3\n[output]\ndir = "out"\n'
        "[analyses.searchlight]\nradius = 6.0\n"
    )
    cfg = load_config(path, overrides={"compute": {"workers": 3, "executor": "dask"}})
    assert cfg.analyses.searchlight.radius == 6.0 and cfg.compute.workers == 3
    assert cfg.output.dir == tmp_path / "out"
    path.write_text("[data\nkind=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def _fake_nltk(monkeypatch, data: bool = True):
    """An installed ``nltk`` whose data are (or are not) there: what the paper's tagger needs."""
    module = types.ModuleType("nltk")

    def find(resource):
        if not data:
            raise LookupError(f"Resource {resource} not found.")
        return resource

    module.data = types.SimpleNamespace(find=find)
    monkeypatch.setitem(sys.modules, "nltk", module)


@pytest.mark.parametrize("name", ["demo.toml", "paper_nsd.toml"])
def test_shipped_configs(name, tmp_path, monkeypatch):
    path = REPO / "configs" / name
    if name == "paper_nsd.toml":
        # the paper config points at a real NSD root and at the paper's files, which a user
        # downloads: without them it stops before any work, naming each file and its source,
        # and NLTK's tagger with its install command
        (tmp_path / "nsddata").mkdir()
        overrides = {"data": {"root": str(tmp_path)}}
        monkeypatch.setitem(sys.modules, "nltk", None)
        with pytest.raises(ConfigError) as err:
            load_config(path, overrides=overrides)
        for missing in ("glove.840B.300d.txt", "crawl-300d-2M.vec", "insilico_sentences.json"):
            assert missing in str(err.value)
        assert "tagger = 'nltk' (the paper's tagger): tagger='nltk' needs NLTK" in str(err.value)
        _fake_nltk(monkeypatch, data=False)
        with pytest.raises(
            ConfigError, match="nltk.downloader punkt_tab averaged_perceptron_tagger_eng"
        ):
            load_config(path, overrides=overrides)
        _fake_nltk(monkeypatch)
        files = {}
        for key, fname in (
            ("glove_categories", "glove.840B.300d.txt"),
            ("glove_all", "glove.840B.300d.txt"),
            ("fasttext_categories", "crawl-300d-2M.vec"),
            ("fasttext_all", "crawl-300d-2M.vec"),
        ):
            (tmp_path / fname).write_text("a 0.1 0.2\n")
            files[key] = {"vectors": str(tmp_path / fname)}
        sentences = tmp_path / "insilico_sentences.json"
        sentences.write_text('{"people": ["A man."], "places": ["A street."], "food": ["A pie."]}')
        overrides["features"] = {"options": files}
        # the pool folder with its val2017 annotations (the paper's validation set)
        (tmp_path / "coco" / "annotations").mkdir(parents=True)
        (tmp_path / "coco" / "annotations" / "captions_val2017.json").write_text("{}")
        overrides["analyses"] = {
            "insilico": {"sentences_file": str(sentences)},
            "networks": {"training_pool": str(tmp_path / "coco")},
        }
        cfg = load_config(path, overrides=overrides)
        assert cfg.analyses.roi_rsa.subset_size == 100 and cfg.analyses.searchlight.fdr_q == 0.05
        assert cfg.analyses.encoding.mode == "fracridge"
        assert cfg.analyses.decoding.mode == "fracridge"
        assert cfg.analyses.decoding.fit_intercept == "paper"
        assert cfg.analyses.model_comparison.test == "paper"
        assert cfg.analyses.roi_rsa.error == "paper"
        assert cfg.analyses.networks.validation_split == "val2017"
        assert len(cfg.analyses.model_comparison.families["fig3"]) == 10
        # the paper's controls: its tagger, spelling fixes and exact word look-up
        opts = cfg.features.options
        for space in (
            "mpnet_nouns",
            "mpnet_verbs",
            "mpnetWordAvg_all",
            "glove_all",
            "fasttext_all",
        ):
            assert opts[space]["tagger"] == "nltk" and opts[space]["fixes"] == "paper"
        assert opts["glove_all"]["lookup"] == opts["fasttext_all"]["lookup"] == "exact"
        assert "net_mpnet" in cfg.analyses.model_comparison.families["fig4"]
    else:
        cfg = load_config(path)
        assert cfg.data.kind == "virtual" and cfg.data.n_subjects == 8


def test_word_vector_files_are_named_with_their_source(tmp_path):
    base = {"data": {"kind": "virtual"}, "output": {"dir": "o"}}
    cfg = {**base, "features": {"spaces": ["mpnet", "fasttext_all"]}}
    with pytest.raises(ConfigError, match="'fasttext_all' needs a word-vector file.*fasttext.cc"):
        validate_config(cfg, base_dir=tmp_path)
    cfg = {
        **base,
        "features": {
            "spaces": ["mpnet", "glove_all"],
            "options": {"glove_all": {"vectors": "glove.840B.300d.txt"}},
        },
    }
    with pytest.raises(ConfigError, match="glove_all.vectors: word-vector file .* does not exist"):
        validate_config(cfg, base_dir=tmp_path)
    (tmp_path / "glove.840B.300d.txt").write_text("a 0.1 0.2\n")
    ok = validate_config(cfg, base_dir=tmp_path)
    assert ok.features.options["glove_all"]["vectors"] == str(tmp_path / "glove.840B.300d.txt")
