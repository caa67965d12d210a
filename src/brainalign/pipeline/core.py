"""Tasks, stages and the runner: what to compute, what is cached, and running the rest.

A *stage* is a plain function ``fn(params, inputs, ctx) -> dict`` registered with
:func:`stage`. A :class:`Task` applies one stage to one piece of work (a subject, a model, a
chunk) with JSON parameters and named upstream tasks as inputs. Its cache key hashes the stage
name, the parameters, the upstream keys and the stage's code, so the whole plan's keys are known
before anything runs.

Workers receive only the task's small description; they read their inputs from the cache
(memory-mapped) and write their result there themselves, so no large array is pickled per task,
and a killed run keeps every finished task.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from brainalign import __version__
from brainalign.errors import InputError
from brainalign.parallel import SerialExecutor
from brainalign.pipeline.cache import StageCache
from brainalign.pipeline.progress import silent_progress
from brainalign.utils.hashing import hash_json

STAGES: dict[str, Stage] = {}


@dataclass(frozen=True)
class Stage:
    """A registered stage: its name, function reference and code version."""

    name: str
    ref: str  # "module:qualname", importable by workers
    version: str
    description: str = ""

    def resolve(self) -> Callable:
        return _resolve(self.ref)


def _code_version(fn: Callable) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = fn.__qualname__
    return hashlib.sha256(f"{__version__}\n{source}".encode()).hexdigest()[:16]


def stage(name: str, description: str = "") -> Callable[[Callable], Callable]:
    """Register ``fn(params, inputs, ctx) -> dict`` as the stage ``name``.

    ``params`` is the task's JSON parameters, ``inputs`` maps each dependency name to its
    :class:`~brainalign.pipeline.cache.Result` (arrays memory-mapped), and ``ctx`` holds
    run-level settings that do not change results (backend, device, folders). The function
    returns a dict of arrays and JSON values.
    """

    def register(fn: Callable) -> Callable:
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        STAGES[name] = Stage(name, f"{fn.__module__}:{fn.__qualname__}", _code_version(fn), doc)
        return fn

    return register


@dataclass(frozen=True)
class TaskId:
    """Who a task is: its stage and the piece of work, one named field per meaning.

    A value, compared and hashed as one: group stages receive their upstream results keyed by
    these ids and read ``subject``, ``model``, ``instance`` or ``chunk`` from them, never from a
    string. Only the fields a stage needs to tell its tasks apart are set.

    Attributes
    ----------
    stage : str
    subject : int, optional
    model : str, optional
        A model: a feature space, a trained network (``net_<target>``) or a zoo model.
    chunk : int, optional
        A part of the work (searchlight centres, caption parts).
    instance : str, optional
        Which instance of ``model``: a trained network's seed (``seed0``).
    space : str, optional
        A data space other than the study's (``func1pt8mm``), or the mesh of neighbourhoods.
    radius : float, optional
        A searchlight's radius (geodesic mm on a mesh, voxels in a volume).
    dataset : str, optional
        An RDM data set's label.
    method : str, optional
        An RDM comparison method (``spearman``, ...).
    versus : str, optional
        The second model of a contrast (``model`` − ``versus``).
    images : str, optional
        Whose captions: the study's ``stimuli`` or a training ``pool``.
    target : str, optional
        What a readout is trained toward (a network target: ``mpnet``, ``multihot``).
    """

    stage: str
    subject: int | None = None
    model: str | None = None
    chunk: int | None = None
    instance: str | None = None
    space: str | None = None
    radius: float | None = None
    dataset: str | None = None
    method: str | None = None
    versus: str | None = None
    images: str | None = None
    target: str | None = None

    @property
    def name(self) -> str:
        """A readable label (``sub-01/mpnet/chunk003``); for display only, never parsed."""
        parts = [f"sub-{self.subject:02d}"] if self.subject is not None else []
        parts += [
            v
            for v in (self.model, self.instance, self.method, self.dataset, self.space)
            if v is not None
        ]
        if self.versus is not None:
            parts.append(f"vs-{self.versus}")
        if self.radius is not None:
            parts.append(f"r{self.radius:g}")
        if self.images is not None:
            parts.append(self.images)
        if self.target is not None:
            parts.append(f"to-{self.target}")
        if self.chunk is not None:
            parts.append(f"chunk{self.chunk:03d}")
        return "/".join(parts) or "all"

    def as_json(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


#: A dependency's role in a stage's ``inputs``: a name (``"model"``) or the upstream task's id.
DepKey = str | TaskId


def _dep_key_json(key: DepKey) -> str:
    return key if isinstance(key, str) else hash_json(key.as_json())


@dataclass
class Task:
    """One unit of work: the stage of ``id`` applied with ``params`` to the results of ``deps``.

    ``after`` lists tasks that must finish first although their results are not inputs (e.g.
    the data task that checks or builds the files a task reads): they order the run and are not
    part of the key, so a change that reruns them does not rerun this task unless the files
    this task reads changed too (those are in ``params``; see ``PlanBuilder.inputs``).
    """

    id: TaskId
    params: dict = field(default_factory=dict)
    deps: dict[DepKey, Task] = field(default_factory=dict)
    after: tuple[Task, ...] = ()
    key: str = field(init=False)

    def __post_init__(self):
        if self.stage not in STAGES:
            raise InputError(
                f"task {self.name!r}: unknown stage {self.stage!r}; known: {sorted(STAGES)}"
            )
        self.key = hash_json(
            {
                "id": self.id.as_json(),
                "params": self.params,
                "deps": dict(sorted((_dep_key_json(k), d.key) for k, d in self.deps.items())),
                "code": STAGES[self.stage].version,
            }
        )

    @property
    def stage(self) -> str:
        return self.id.stage

    @property
    def name(self) -> str:
        return self.id.name

    @property
    def label(self) -> str:
        return f"{self.stage}:{self.name}"


def upstream(inputs: dict, stage: str) -> list[tuple[TaskId, Any]]:
    """The results in ``inputs`` that came from tasks of ``stage``, with their ids, in id order.

    Ordered by (subject, model, chunk, instance, then the other fields), so a group stage sees
    subjects and chunks in order whatever the order of its dependencies.
    """
    found = [(k, v) for k, v in inputs.items() if isinstance(k, TaskId) and k.stage == stage]

    def order(item):
        k = item[0]
        return (
            k.subject if k.subject is not None else -1,
            k.model or "",
            k.chunk if k.chunk is not None else -1,
            k.instance or "",
            k.space or "",
            k.radius if k.radius is not None else -1.0,
            k.dataset or "",
            k.method or "",
            k.versus or "",
            k.images or "",
            k.target or "",
        )

    return sorted(found, key=order)


def _levels(tasks: Sequence[Task]) -> list[list[Task]]:
    """Group tasks into waves: a task runs after every wave holding one of its dependencies."""
    level: dict[str, int] = {}
    by_key = {t.key: t for t in tasks}

    def depth(t: Task) -> int:
        if t.key not in level:
            for d in _before(t):
                if d.key not in by_key:
                    by_key[d.key] = d
            level[t.key] = 1 + max((depth(d) for d in _before(t)), default=-1)
        return level[t.key]

    for t in list(by_key.values()):
        depth(t)
    waves: dict[int, list[Task]] = {}
    for key, lv in level.items():
        waves.setdefault(lv, []).append(by_key[key])
    return [sorted(waves[lv], key=lambda t: (t.stage, t.name)) for lv in sorted(waves)]


def _before(t: Task) -> list[Task]:
    """The tasks that must finish before ``t``: its dependencies and its ``after`` tasks."""
    return [*t.deps.values(), *t.after]


def all_tasks(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` and all their dependencies, each once, dependencies first."""
    return [t for wave in _levels(tasks) for t in wave]


def _execute(spec: dict) -> dict:
    """Worker side: load inputs from the cache, run the stage, store the result."""
    cache = StageCache(spec["cache"])
    if cache.has(spec["stage"], spec["key"]):
        return {"key": spec["key"], "seconds": 0.0, "cached": True}
    # resolved by reference, so workers import the stage's module themselves
    fn = _resolve(spec["ref"])
    inputs = {name: cache.load(stage, key) for name, stage, key in spec["deps"]}
    t0 = time.perf_counter()
    # warnings travel back with the result: the run summarises them instead of printing each
    with _threads(spec["ctx"].get("threads", 1)), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(spec["params"], inputs, spec["ctx"])
    if not isinstance(result, dict):
        raise InputError(
            f"stage {spec['stage']!r} returned {type(result).__name__}, expected a dict"
        )
    cache.save(spec["stage"], spec["key"], result)
    return {
        "key": spec["key"],
        "seconds": time.perf_counter() - t0,
        "cached": False,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }


@contextlib.contextmanager
def _threads(n: int):
    """Run with ``n`` BLAS and torch threads, whatever the executor, then restore the settings.

    The thread count changes the summation order of matrix products in the last float bits, so
    fixing it per task makes serial and parallel runs bit-identical.
    """
    import torch  # imported here so a task that imports it later still gets n threads
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    with threadpool_limits(limits=n):
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def _resolve(ref: str) -> Callable:
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class RunReport:
    """What a run did: tasks computed and reused, task-seconds per stage, and per-stage timing."""

    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    timing: list[dict] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (task label, warning)

    def warning_summary(self) -> list[str]:
        """One line per kind of warning (numbers masked): how many tasks raised it, one example."""
        import re

        kinds: dict[str, list[str]] = {}
        for _, text in self.warnings:
            kinds.setdefault(re.sub(r"\d+(\.\d+)?", "N", text), []).append(text)
        return [
            f"{len(texts)} × {texts[0]}" if len(texts) > 1 else texts[0] for texts in kinds.values()
        ]


def _spec(t: Task, cache: StageCache, ctx: dict) -> dict:
    """What a worker needs to run ``t``: small, picklable, no arrays."""
    return {
        "stage": t.stage,
        "ref": STAGES[t.stage].ref,
        "key": t.key,
        "params": t.params,
        "deps": [(n, d.stage, d.key) for n, d in t.deps.items()],
        "cache": str(cache.root),
        "ctx": ctx,
    }


def _priorities(tasks: Sequence[Task]) -> dict[str, int]:
    """How many tasks wait on each task, directly or not: those that unlock most go first."""
    dependents: dict[str, set[str]] = {t.key: set() for t in tasks}
    for t in reversed(tasks):  # dependents before their dependencies
        for d in _before(t):
            if d.key in dependents:
                dependents[d.key] |= {t.key} | dependents[t.key]
    return {k: len(v) for k, v in dependents.items()}


def run_tasks(
    tasks: Sequence[Task],
    cache: StageCache,
    executor=None,
    *,
    ctx: dict | None = None,
    progress=None,
) -> RunReport:
    """Compute every task (and dependency) whose result is not cached.

    A task starts as soon as its dependencies are done (not wave by wave), at most one per
    worker at a time, those that unlock most other tasks first. Each result is cached as soon as
    its task ends, so a killed run keeps every finished task. Ctrl-C (``KeyboardInterrupt``)
    stops the executor's workers at once (:meth:`~brainalign.parallel.Executor.abort`) and
    leaves only complete results.

    Parameters
    ----------
    tasks : sequence of Task
        Targets; their dependencies are included automatically.
    cache : StageCache
    executor : brainalign.parallel.Executor, optional
        Defaults to a serial executor.
    ctx : dict, optional
        Run-level settings handed to every stage (not part of the keys).
    progress : brainalign.pipeline.progress.RunProgress, optional
        Shown while the tasks run (default: silent).

    Returns
    -------
    RunReport
    """
    executor = executor or SerialExecutor()
    progress = progress or silent_progress()
    ctx = dict(ctx or {})
    report = RunReport()
    cache.clean_temporaries()
    every = all_tasks(tasks)
    cached = reusable(every, cache, report)
    report.reused = [t.label for t in every if t.key in cached]
    todo = [t for t in every if t.key not in cached]
    priority = _priorities(every)
    waiting = {t.key: {d.key for d in _before(t)} - cached for t in todo}
    pending = {t.key: t for t in todo}
    running: dict = {}
    slots = max(1, getattr(executor, "n_workers", 1))
    progress.start([t.stage for t in every], [t.stage for t in every if t.key in cached])
    try:
        while pending or running:
            ready = sorted(
                (t for t in pending.values() if not waiting[t.key]),
                key=lambda t: (-priority[t.key], t.stage, t.name),
            )
            for t in ready[: max(0, slots - len(running))]:
                del pending[t.key]
                progress.submitted(t.stage, t.label)
                running[executor.submit(_execute, _spec(t, cache, ctx))] = t
            if not running:
                names = sorted(t.label for t in pending.values())[:5]
                raise InputError(
                    f"tasks {names} wait on tasks that never run (a dependency cycle?)"
                )
            done, _ = executor.wait(list(running), timeout=1.0)
            for fut in done:
                t = running.pop(fut)
                res = fut.result()
                report.computed.append(t.label)
                report.seconds[t.stage] = report.seconds.get(t.stage, 0.0) + res["seconds"]
                report.warnings += [(t.label, w) for w in res.get("warnings", [])]
                progress.finished(t.stage, t.label, res["seconds"])
                for other in pending.values():
                    waiting[other.key].discard(t.key)
    except KeyboardInterrupt:
        # Ctrl-C: stop the workers now (a stopped task leaves only a temporary folder, removed
        # here), keep every result already written
        for fut in running:
            fut.cancel()
        getattr(executor, "abort", executor.close)()
        cache.clean_temporaries()
        raise
    except BaseException:
        for fut in running:
            fut.cancel()
        raise
    finally:
        progress.close()
    report.timing = progress.timing()
    return report


def reusable(tasks: Sequence[Task], cache: StageCache, report: RunReport | None = None) -> set:
    """Keys of the ``tasks`` whose stored results are complete and intact.

    A damaged result (a file truncated or overwritten, an unreadable record) is named in a
    warning (also added to ``report.warnings``), discarded and left to be computed again: a
    damaged file is never used, and never stops every later run.
    """
    keys = set()
    for t in tasks:
        if not cache.has(t.stage, t.key):
            continue
        problem = cache.check(t.stage, t.key)
        if problem is None:
            keys.add(t.key)
            continue
        message = f"cache: {problem}; discarded {cache.path(t.stage, t.key)}, computed again"
        warnings.warn(message, stacklevel=2)
        if report is not None:
            report.warnings.append((t.label, message))
        cache.discard(t.stage, t.key)
    return keys


def describe_plan(tasks: Sequence[Task], cache: StageCache) -> str:
    """A table of stages: tasks, how many are cached, and the names still to compute."""
    rows = []
    per_stage: dict[str, list[Task]] = {}
    every = all_tasks(tasks)
    for t in every:
        per_stage.setdefault(t.stage, []).append(t)
    # a damaged result is shown as to run (and left in place: a plan writes nothing)
    intact = {
        t.key for t in every if cache.has(t.stage, t.key) and cache.check(t.stage, t.key) is None
    }
    width = max((len(s) for s in per_stage), default=5)
    rows.append(f"{'stage':<{width}}  tasks  cached  to run")
    n_todo = 0
    for name, ts in per_stage.items():
        todo = [t.name for t in ts if t.key not in intact]
        n_todo += len(todo)
        shown = ", ".join(todo[:6]) + (f", … (+{len(todo) - 6})" if len(todo) > 6 else "")
        rows.append(f"{name:<{width}}  {len(ts):>5}  {len(ts) - len(todo):>6}  {shown or '-'}")
    total = sum(len(v) for v in per_stage.values())
    rows.append(f"{total} task(s), {total - n_todo} cached, {n_todo} to run")
    return "\n".join(rows)


__all__ = [
    "STAGES",
    "RunReport",
    "Stage",
    "Task",
    "TaskId",
    "all_tasks",
    "describe_plan",
    "reusable",
    "run_tasks",
    "stage",
    "upstream",
]
