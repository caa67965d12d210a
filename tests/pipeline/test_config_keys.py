"""Every config key does something: changing it changes the plan's cache keys or the run context.

The table below gives, for every leaf key of the study config, another valid value (and any
other keys it needs to stay valid). A key that changes neither the task keys nor the run context
must be listed in EXPORT_ONLY with the place that reads it. A key missing from both fails the
test, so a new key cannot be added without saying what it does.
"""

from __future__ import annotations

import copy

import pytest

from brainalign.errors import ConfigError
from brainalign.pipeline.analyses import ANALYSES
from brainalign.pipeline.config import StudyConfig, validate_config
from brainalign.pipeline.core import all_tasks
from brainalign.pipeline.demo import demo_config
from brainalign.pipeline.plan import build_plan
from brainalign.pipeline.study import _ctx

#: dotted key -> (another value, other keys it needs)
CHANGES = {
    "data.kind": None,  # the data kinds have different keys: see the data-kind tests
    "data.root": ("elsewhere", {}),
    "data.n_subjects": (4, {}),
    "data.random_state": (1, {}),
    "data.options": ({"n_shared": 30, "n_unique": 34, "n_sessions": 4, "n_training_pool": 48}, {}),
    "data.test_set": ("present", {}),
    "subjects": ([1, 2], {}),
    "space": (
        "func1pt8mm",
        {
            "analyses.encoding.enabled": False,
            "analyses.insilico.enabled": False,
            "analyses.searchlight.space": "func1pt8mm",
            "analyses.searchlight.radius": 3.0,
            "analyses.variance_partitioning.enabled": False,
        },
    ),
    "features.spaces": (
        ["minilm", "multihot"],
        {
            "analyses.variance_partitioning.bands": ["minilm", "multihot"],
            "analyses.weighted_rsa.controls": ["multihot"],
        },
    ),
    "features.encoder": (
        "all-MiniLM-L6-v2",
        {
            "features.spaces": ["minilm", "mpnet", "multihot", "mpnet_category_all"],
            "analyses.encoding.feature_space": "mpnet",
        },
    ),
    "features.options": ({"multihot": {"columns": "categories"}}, {}),
    "analyses.networks.enabled": (False, {"analyses.searchlight_contrasts.contrasts": []}),
    "analyses.networks.targets": (["multihot"], {"analyses.searchlight_contrasts.contrasts": []}),
    "analyses.networks.embedding_space": ("mpnet", {}),
    "analyses.networks.seeds": ([0, 1], {}),
    "analyses.networks.epochs": (2, {}),
    "analyses.networks.batch_size": (8, {}),
    "analyses.networks.image_size": (48, {}),
    "analyses.networks.width": (0.125, {}),
    "analyses.networks.timesteps": (3, {}),
    "analyses.networks.layers": (5, {}),
    "analyses.networks.learning_rate": (0.001, {}),
    "analyses.networks.zoo": (["efficientnet-lite0"], {}),
    "analyses.networks.training_pool": ("POOL", {}),
    "analyses.networks.training_split": ("val2017", {}),
    "analyses.networks.allow_overlap": (True, {}),
    "analyses.networks.validation_split": ("train2017", {}),
    "analyses.networks.validation_size": (16, {}),
    "analyses.networks.test_time_crop": (True, {}),
    "analyses.networks.shuffled_control": (False, {}),
    "analyses.networks.backbone": ("efficientnet-lite0", {}),
    "analyses.networks.transfer": (False, {}),
    "analyses.networks.transfer_test_size": (0.3, {}),
    "analyses.networks.transfer_epochs": (3, {}),
    "analyses.networks.transfer_batch_size": (16, {}),
    "analyses.networks.transfer_learning_rate": (0.01, {}),
    "analyses.networks.transfer_eps": (1e-8, {}),
    "analyses.roi_rsa.enabled": (False, {"analyses.model_comparison.enabled": False}),
    "analyses.roi_rsa.rois": (["early", "ventral", "lateral", "parietal"], {}),
    "analyses.roi_rsa.sampling": ("full", {}),
    "analyses.roi_rsa.subset_size": (20, {}),
    "analyses.roi_rsa.max_subsets": (2, {}),
    "analyses.roi_rsa.metric": ("euclidean", {}),
    "analyses.roi_rsa.method": ("spearman", {}),
    "analyses.roi_rsa.dtype": ("float64", {}),
    "analyses.roi_rsa.noise_ceiling": (False, {}),
    "analyses.roi_rsa.error": ("paper", {}),
    "analyses.model_comparison.enabled": (False, {}),
    "analyses.model_comparison.rois": (["ventral"], {}),
    "analyses.model_comparison.test": ("paper", {}),
    "analyses.model_comparison.fdr_q": (0.1, {}),
    "analyses.model_comparison.families": ({"words": ["multihot", "mpnet_category_all"]}, {}),
    "analyses.searchlight.enabled": (False, {"analyses.searchlight_contrasts.contrasts": []}),
    "analyses.searchlight.space": ("func1pt8mm", {"analyses.searchlight.radius": 3.0}),
    "analyses.searchlight.radius": (8.0, {}),
    "analyses.searchlight.min_fraction": (
        0.6,
        {"analyses.searchlight.space": "func1pt8mm", "analyses.searchlight.radius": 3.0},
    ),
    "analyses.searchlight.models": (["multihot"], {}),
    "analyses.searchlight.method": ("spearman", {}),
    "analyses.searchlight.sampling": ("paper", {}),
    "analyses.searchlight.fdr_q": (0.1, {}),
    "analyses.searchlight.chunk_size": (4096, {}),
    "analyses.searchlight_contrasts.contrasts": ([["minilm", "multihot"]], {}),
    "analyses.searchlight_contrasts.fdr_q": (
        0.1,
        {"analyses.searchlight_contrasts.contrasts": [["minilm", "multihot"]]},
    ),
    "analyses.searchlight_contrasts.enabled": (
        False,
        {"analyses.searchlight_contrasts.contrasts": [["minilm", "multihot"]]},
    ),
    "analyses.encoding.enabled": (False, {"analyses.insilico.enabled": False}),
    "analyses.encoding.feature_space": ("mpnet_category_all", {}),
    "analyses.encoding.alphas": ([1.0, 10.0], {}),
    "analyses.encoding.cv": (4, {}),
    "analyses.encoding.mode": ("fracridge", {}),
    "analyses.encoding.agreement": (False, {}),
    "analyses.encoding.fdr_q": (0.1, {}),
    "analyses.variance_partitioning.enabled": (False, {}),
    "analyses.variance_partitioning.bands": (["minilm", "multihot"], {}),
    "analyses.variance_partitioning.n_iter": (3, {}),
    "analyses.variance_partitioning.concentration": ([1.0], {}),
    "analyses.variance_partitioning.alphas": ([1.0, 10.0], {}),
    "analyses.variance_partitioning.cv": (4, {}),
    "analyses.variance_partitioning.solver": ("hyper_gradient", {}),
    "analyses.variance_partitioning.max_iter": (
        3,
        {"analyses.variance_partitioning.solver": "hyper_gradient"},
    ),
    "analyses.variance_partitioning.rois": (["ventral"], {}),
    "analyses.variance_partitioning.mask": (None, {}),
    "analyses.variance_partitioning.fdr_q": (0.1, {}),
    "analyses.insilico.enabled": (False, {}),
    "analyses.insilico.contrasts": ([["people", "food"]], {}),
    "analyses.insilico.sentences": ({"people": ["A man."]}, {}),
    "analyses.insilico.sentences_file": ("SENTENCES", {}),
    "analyses.insilico.p_threshold": (0.01, {}),
    "analyses.weighted_rsa.enabled": (False, {}),
    "analyses.weighted_rsa.target": (
        "mpnet_category_all",
        {"analyses.weighted_rsa.controls": ["multihot"]},
    ),
    "analyses.weighted_rsa.controls": (["multihot"], {}),
    "analyses.weighted_rsa.rois": (["ventral"], {}),
    "analyses.weighted_rsa.method": ("cosine", {}),
    "analyses.weighted_rsa.k_stimuli": (2, {}),
    "analyses.weighted_rsa.k_subjects": (2, {}),
    "analyses.weighted_rsa.n_bootstrap": (5, {}),
    "analyses.weighted_rsa.searchlight": (True, {}),
    "analyses.weighted_rsa.searchlight_radius": (6.0, {"analyses.weighted_rsa.searchlight": True}),
    "analyses.weighted_rsa.n_cv": (3, {}),
    "analyses.weighted_rsa.commonality_bootstrap": (10, {}),
    "analyses.weighted_rsa.ci": (0.9, {}),
    "analyses.weighted_rsa.max_images": (10, {}),
    "analyses.decoding.enabled": (False, {}),
    "analyses.decoding.rois": (["ventral"], {}),
    "analyses.decoding.feature_space": ("mpnet_category_all", {}),
    "analyses.decoding.bank": ("BANK", {}),
    "analyses.decoding.bank_dtype": ("float16", {}),
    "analyses.decoding.k": (3, {}),
    "analyses.decoding.alphas": ([1.0], {}),
    "analyses.decoding.mode": ("fracridge", {}),
    "analyses.decoding.fit_intercept": ("paper", {}),
    "output.dir": ("OUT2", {}),
    "compute.backend": ("torch", {}),
    "compute.device": ("cuda", {}),
    "compute.threads_per_task": (2, {}),
    "compute.random_state": (1, {}),
}

#: keys that change how a run executes or what it writes, not its results: key -> who reads it
EXPORT_ONLY = {
    "models": "declares models; they change the tasks of the analyses that name them "
    "(tests/pipeline/test_rdm_study.py::test_your_own_model_is_scored_by_name)",
    "name": "report title (report/html.py build_report)",
    "output.formats": "map and table files written (report/export.py RunWriter)",
    "analyses.decoding.n_examples": "rows of tables/decoding_examples.csv (analyses/decoding.py)",
    "compute.executor": "executor kind (pipeline/study.py make_executor)",
    "compute.workers": "executor size (pipeline/study.py make_executor)",
    "compute.scheduler": "Dask scheduler address (pipeline/study.py make_executor)",
    "compute.tls": "TLS files for a tls:// scheduler (pipeline/study.py make_executor)",
    "compute.worker_timeout": "wait for a scheduler's workers (pipeline/study.py make_executor)",
}


def _leaves(d: dict, prefix: str = ""):
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, dict) and k not in ("options", "sentences"):
            yield from _leaves(v, key + ".")
        else:
            yield key


def _set(d: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for p in path:
        d = d.setdefault(p, {})
    d[last] = value


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("keys")
    cfg = demo_config(out / "run", quick=True).to_dict()
    (out / "sentences.json").write_text(
        '{"people": ["A man."], "places": ["A street."], "food": ["A pie."]}'
    )
    (out / "bank.txt").write_text("a caption\nanother caption\n")
    return cfg, out


def _signature(cfg: StudyConfig):
    tasks = all_tasks(build_plan(cfg).targets)
    return frozenset(t.key for t in tasks), tuple(sorted(_ctx(cfg).items()))


#: sections of analyses that need RDM data (``needs = "rdms"``), from the registry: the demo
#: (virtual NSD) never plans them; tests/pipeline/test_rdm_study.py checks that each of their
#: keys does something
RDMS_SECTIONS = tuple(
    f"analyses.{section}." for a in ANALYSES if a.needs == "rdms" for section in a.configs
)


def test_every_key_is_listed():
    cfg = demo_config("o", quick=True).to_dict()
    keys = {k for k in _leaves(cfg) if not k.startswith(RDMS_SECTIONS)}
    assert keys - set(CHANGES) - set(EXPORT_ONLY) == set(), "new config keys: say what they change"
    assert set(CHANGES) | set(EXPORT_ONLY) <= keys | {"data.kind"}


@pytest.mark.parametrize("key", sorted(k for k, v in CHANGES.items() if v is not None))
def test_changing_the_key_changes_tasks_or_context(base, key):
    cfg, folder = base
    value, needs = CHANGES[key]
    value = (
        {
            "SENTENCES": str(folder / "sentences.json"),
            "BANK": str(folder / "bank.txt"),
            "OUT2": str(folder / "run2"),
            "POOL": str(folder),
            "elsewhere": str(folder / "elsewhere"),
        }.get(value, value)
        if isinstance(value, str)
        else value
    )
    before = copy.deepcopy(cfg)
    for k, v in needs.items():
        _set(before, k, v)
    after = copy.deepcopy(before)
    _set(after, key, value)
    a = _signature(validate_config(before, base_dir=folder))
    b = _signature(validate_config(after, base_dir=folder))
    assert a != b, f"{key}: changing it changed no task key and no run setting (a dead key)"


def test_the_former_insilico_alpha_is_read_as_p_threshold_with_a_warning(base):
    """``alpha`` means the ridge penalty; the in-silico significance level is ``p_threshold``.
    Configs written with its former name still run, with a warning naming both keys."""
    cfg, folder = base
    old = copy.deepcopy(cfg)
    ins = old["analyses"]["insilico"]
    ins["alpha"] = ins.pop("p_threshold") / 5
    with pytest.warns(FutureWarning, match=r"analyses\.insilico\.alpha is now .*p_threshold"):
        got = validate_config(old, base_dir=folder)
    assert got.analyses.insilico.p_threshold == pytest.approx(0.01)
    assert "alpha" not in got.to_dict()["analyses"]["insilico"]
    both = copy.deepcopy(old)
    both["analyses"]["insilico"]["p_threshold"] = 0.05
    with pytest.raises(ConfigError, match="p_threshold only"):
        validate_config(both, base_dir=folder)
