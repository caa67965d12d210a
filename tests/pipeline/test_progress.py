"""The scheduler (a task starts when its dependencies are done) and the progress display."""

from __future__ import annotations

import io
import time

from brainalign.parallel import ProcessExecutor
from brainalign.pipeline import StageCache, Task, TaskId, run_tasks, stage
from brainalign.pipeline.progress import RunProgress


@stage("toy_sleep")
def toy_sleep(params, inputs, ctx):
    """Sleep, then return the parameters."""
    time.sleep(params["seconds"])
    return {"seconds": params["seconds"]}


def test_a_task_starts_as_soon_as_its_dependencies_are_done(tmp_path):
    slow = Task(TaskId("toy_sleep", model="slow"), {"seconds": 3.0})
    fast = Task(TaskId("toy_sleep", model="fast"), {"seconds": 0.1})
    after_fast = Task(TaskId("toy_sleep", model="after"), {"seconds": 0.1}, {"x": fast})
    with ProcessExecutor(2) as ex:
        rep = run_tasks([slow, after_fast], StageCache(tmp_path), ex)
    # wave by wave, "after" would wait for the slow task of the first wave
    assert rep.computed.index("toy_sleep:after") < rep.computed.index("toy_sleep:slow")
    stages = {row["stage"]: row for row in rep.timing}
    assert stages["toy_sleep"]["tasks"] == 3 and stages["toy_sleep"]["task_seconds"] >= 3.0


def test_plain_progress_reports_stages_slow_tasks_and_heartbeats():
    out = io.StringIO()
    p = RunProgress(workers=2, live=False, stream=out, heartbeat=0.5, slow=1.0)
    p.start(["a", "a", "b"], cached=["b"])
    p.submitted("a", "a:one")
    time.sleep(1.6)  # silence: a heartbeat naming the running task
    p.finished("a", "a:one", 2.0)
    p.submitted("a", "a:two")
    p.finished("a", "a:two", 0.1)
    p.close()
    text = out.getvalue()
    assert "3 task(s): 1 cached, 2 to run on 2 worker(s)" in text
    assert "running a:one" in text and "a:one took 2s" in text
    assert "a: 2 task(s) done (3/3 tasks" in text
    assert [r["tasks"] for r in p.timing()] == [2]


def test_live_progress_renders_a_table():
    out = io.StringIO()
    p = RunProgress(workers=1, live=True, stream=out)
    p.start(["features", "roi_rsa"])
    p.submitted("features", "features:mpnet")
    time.sleep(0.4)
    p.finished("features", "features:mpnet", 0.3)
    p.close()
    text = out.getvalue()
    assert "features" in text and "1/1" in text and "roi_rsa" in text


@stage("toy_warn")
def toy_warn(params, inputs, ctx):
    """Warn like a library would, with numbers that differ per task."""
    import warnings

    warnings.warn(f"{params['n']} of 100 targets contain NaN", UserWarning, stacklevel=1)
    return {"n": params["n"]}


def test_warnings_come_back_with_results_and_are_summarised_by_kind(tmp_path):
    tasks = [Task(TaskId("toy_warn", subject=s), {"n": s}) for s in (1, 2, 3)]
    rep = run_tasks(tasks, StageCache(tmp_path))
    assert len(rep.warnings) == 3 and rep.warnings[0][0].startswith("toy_warn:")
    assert rep.warning_summary() == ["3 × UserWarning: 1 of 100 targets contain NaN"]
