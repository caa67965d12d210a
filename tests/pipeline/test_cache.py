"""Stage cache and runner: keys, atomic results, reruns that do only what changed, resume."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.errors import DataFormatError, InputError
from brainalign.parallel import ProcessExecutor, SerialExecutor
from brainalign.pipeline import StageCache, Task, TaskId, describe_plan, run_tasks, stage
from brainalign.pipeline.core import upstream

CALLS: list[str] = []


@stage("toy_make")
def toy_make(params, inputs, ctx):
    """Random data per subject."""
    CALLS.append(f"make{params['subject']}")
    rng = np.random.default_rng(params["subject"])
    return {"X": rng.standard_normal((30, 5)).astype(np.float32), "subject": params["subject"]}


@stage("toy_score")
def toy_score(params, inputs, ctx):
    """A statistic of one subject's data for one model (a weight vector)."""
    CALLS.append(f"score{params['subject']}-{params['model']}")
    X = np.asarray(inputs["data"]["X"])
    w = np.arange(X.shape[1], dtype=np.float32) * params["model"]
    return {"score": (X @ w).astype(np.float32), "mean": float((X @ w).mean())}


@stage("toy_group")
def toy_group(params, inputs, ctx):
    """Average over subject results."""
    CALLS.append("group")
    scores = upstream(inputs, "toy_score")
    return {"mean": np.mean([res["mean"] for _, res in scores]), "n": len(scores)}


def _plan(subjects=(1, 2, 3), models=(1, 2), scale=1):
    makes = {s: Task(TaskId("toy_make", subject=s), {"subject": s}) for s in subjects}
    scores = [
        Task(
            TaskId("toy_score", subject=s, model=f"m{m}"),
            {"subject": s, "model": m * scale},
            {"data": makes[s]},
        )
        for s in subjects
        for m in models
    ]
    group = Task(TaskId("toy_group"), {}, {t.id: t for t in scores})
    return group, scores


def test_result_roundtrip_and_atomic_layout(tmp_path):
    cache = StageCache(tmp_path)
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.save("s", "k" * 64, {"a": arr, "n": 3, "names": ["x", "y"]})
    assert cache.has("s", "k" * 64)
    res = cache.load("s", "k" * 64)
    np.testing.assert_array_equal(res["a"], arr)
    assert isinstance(res["a"], np.memmap) and res["n"] == 3 and res["names"] == ["x", "y"]
    assert not list((tmp_path / "s").glob(".*.tmp"))
    with pytest.raises(DataFormatError, match="no complete result"):
        cache.load("s", "0" * 64)
    with pytest.raises(InputError, match="object arrays"):
        cache.save("s", "o" * 64, {"a": np.array([{}], dtype=object)})
    assert not cache.has("s", "o" * 64)


def test_keys_follow_inputs_and_parameters():
    g1, s1 = _plan()
    g2, s2 = _plan()
    g3, s3 = _plan(scale=2)
    assert g1.key == g2.key and [t.key for t in s1] == [t.key for t in s2]
    assert g3.key != g1.key
    # upstream keys are unchanged when only a downstream parameter changes
    assert s3[0].deps["data"].key == s1[0].deps["data"].key


def test_rerun_does_only_what_changed(tmp_path):
    cache = StageCache(tmp_path)
    CALLS.clear()
    group, _ = _plan()
    rep = run_tasks([group], cache)
    assert len(rep.computed) == 3 + 6 + 1 and not rep.reused
    first = cache.load(group.stage, group.key)["mean"]
    CALLS.clear()
    rep = run_tasks([group], cache)
    assert CALLS == [] and len(rep.reused) == 10
    # one more subject: only its tasks and the group run again
    CALLS.clear()
    group4, _ = _plan(subjects=(1, 2, 3, 4))
    assert "13 task(s), 9 cached, 4 to run" in describe_plan([group4], cache)
    run_tasks([group4], cache)
    assert sorted(CALLS) == sorted(["make4", "score4-1", "score4-2", "group"])
    assert cache.load(group4.stage, group4.key)["n"] == 8
    assert first == cache.load(group.stage, group.key)["mean"]


def test_killed_run_resumes_to_identical_results(tmp_path, monkeypatch):
    import sys

    group, scores = _plan()
    ref_cache = StageCache(tmp_path / "ref")
    run_tasks([group], ref_cache)

    cache = StageCache(tmp_path / "killed")
    module = sys.modules[__name__]
    calls = {"n": 0}
    original = toy_score

    def dying(params, inputs, ctx):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt("killed")
        return original(params, inputs, ctx)

    monkeypatch.setattr(module, "toy_score", dying)
    with pytest.raises(KeyboardInterrupt):
        run_tasks([group], cache)
    monkeypatch.undo()
    done = [t for t in scores if cache.has(t.stage, t.key)]
    assert len(done) == 2 and not cache.has(group.stage, group.key)
    CALLS.clear()
    run_tasks([group], cache)
    assert sum(c.startswith("score") for c in CALLS) == 4 and not any(
        c.startswith("make") for c in CALLS
    )
    for t in [*scores, group]:
        a, b = ref_cache.load(t.stage, t.key), cache.load(t.stage, t.key)
        assert sorted(a) == sorted(b)
        for k in a:
            np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


def test_worker_processes_give_the_same_results(tmp_path):
    group, scores = _plan()
    serial, parallel = StageCache(tmp_path / "s"), StageCache(tmp_path / "p")
    run_tasks([group], serial, SerialExecutor())
    with ProcessExecutor(2) as ex:
        rep = run_tasks([group], parallel, ex)
    assert len(rep.computed) == 10
    for t in [*scores, group]:
        np.testing.assert_array_equal(
            np.asarray(serial.load(t.stage, t.key).get("score", 0)),
            np.asarray(parallel.load(t.stage, t.key).get("score", 0)),
        )
