"""The analysis registry, typed task ids, and the config composed from the registry."""

from __future__ import annotations

import pytest

from brainalign.errors import ConfigError
from brainalign.pipeline.analyses import ANALYSES
from brainalign.pipeline.config import AnalysesConfig, validate_config
from brainalign.pipeline.core import STAGES, Task, TaskId, upstream
from brainalign.pipeline.plan import build_plan


def test_every_analysis_section_is_in_the_config_and_names_are_unique():
    sections = [s for a in ANALYSES for s in a.configs]
    assert len(sections) == len(set(sections))
    assert set(sections) == set(AnalysesConfig.model_fields)
    assert len({a.name for a in ANALYSES}) == len(ANALYSES)


def test_task_ids_are_values_with_readable_names():
    a = TaskId("searchlight", subject=3, model="mpnet", chunk=1)
    assert a == TaskId("searchlight", subject=3, model="mpnet", chunk=1)
    assert {a: 1}[TaskId("searchlight", subject=3, model="mpnet", chunk=1)] == 1
    assert a.name == "sub-03/mpnet/chunk001" and TaskId("roi_group").name == "all"
    assert TaskId("train_network", model="net_mpnet", instance="seed2").name == "net_mpnet/seed2"


def test_upstream_orders_by_subject_then_chunk():
    ids = [TaskId("searchlight", subject=s, model="m", chunk=c) for s in (2, 1) for c in (1, 0)]
    inputs = {tid: tid.name for tid in ids} | {"other": "x"}
    got = [tid for tid, _ in upstream(inputs, "searchlight")]
    assert [(t.subject, t.chunk) for t in got] == [(1, 0), (1, 1), (2, 0), (2, 1)]


def test_dependency_keys_change_the_cache_key():
    data = Task(TaskId("sampling", subject=1), {"subset_size": 3})
    a = Task(TaskId("roi_group"), {}, {TaskId("sampling", subject=1): data})
    b = Task(TaskId("roi_group"), {}, {TaskId("sampling", subject=2): data})
    assert a.key != b.key


def _config(tmp_path, **analyses):
    return {
        "data": {"kind": "virtual", "n_subjects": 3, "options": {"n_training_pool": 20}},
        "features": {"spaces": ["minilm", "multihot"]},
        "analyses": {
            "searchlight": {"models": ["multihot"]},
            "encoding": {"feature_space": "minilm"},
            "decoding": {"feature_space": "minilm"},
            "networks": {"embedding_space": "minilm", "zoo": []},
            **analyses,
        },
        "output": {"dir": str(tmp_path / "run")},
    }


def test_plan_has_every_enabled_analysis_and_only_registered_stages(tmp_path):
    cfg = validate_config(_config(tmp_path))
    plan = build_plan(cfg)
    assert set(plan.analyses) == {a.name for a in ANALYSES if a.is_enabled(cfg, "responses")}
    from brainalign.pipeline.core import all_tasks

    assert {t.stage for t in all_tasks(plan.targets)} <= set(STAGES)
    names = [(m.name, m.instance) for m in plan.models]
    assert ("net_mpnet", "seed0") in names and ("multihot", None) in names
    off = _config(tmp_path, decoding={"enabled": False}, networks={"enabled": False})
    assert set(build_plan(validate_config(off)).analyses) == {"roi_rsa", "searchlight", "encoding"}


def test_analysis_checks_run_before_any_work(tmp_path):
    cfg = _config(tmp_path, decoding={"feature_space": "glove_all"})
    with pytest.raises(ConfigError, match="analyses.decoding.feature_space: 'glove_all'"):
        validate_config(cfg)
    cfg = _config(tmp_path, encoding={"feature_space": "multihot"})
    with pytest.raises(ConfigError, match="analyses.insilico.enabled: the in-silico sentences"):
        validate_config(cfg)
    cfg = _config(tmp_path, model_comparison={"rois": ["early"]}, roi_rsa={"rois": ["ventral"]})
    with pytest.raises(ConfigError, match="analyses.model_comparison.rois"):
        validate_config(cfg)


def test_insilico_uses_the_sentence_file_and_names_missing_categories(tmp_path, shared_data):
    path = shared_data / "visuo_llm_captions" / "insilico_sentences.json"
    cfg = validate_config(_config(tmp_path, insilico={"sentences_file": str(path)}))
    vec = build_plan(cfg).analyses["encoding"]["group"]
    task = next(d for d in vec.deps.values()).deps["insilico"]
    assert task.params["sentences"]["people"][0] == "Man with a beard smiling at the camera."
    bad = _config(tmp_path, insilico={"sentences_file": str(path), "contrasts": [["cars", "food"]]})
    with pytest.raises(ConfigError, match=r"insilico.contrasts\[0\]: no sentences for 'cars'"):
        validate_config(bad)
