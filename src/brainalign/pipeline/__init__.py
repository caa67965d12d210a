"""The study pipeline: stages wired over subjects × models × chunks, cached, resumable, parallel.

>>> from brainalign.pipeline import plan_study, run_study
>>> plan, cache, table = plan_study("configs/demo.toml")     # doctest: +SKIP
>>> print(table)                                            # what is cached, what would run
>>> result = run_study("configs/demo.toml")                  # doctest: +SKIP

``run_study`` builds the plan (every task with its cache key), computes what is not cached with
the configured executor (:mod:`brainalign.parallel`), exports maps (GIFTI/MGH) and tables (CSV)
and writes the report. The pipeline holds no science of its own: each stage
(:mod:`brainalign.pipeline.stages`) calls the public functions of ``brainalign.datasets``,
``features``, ``rsa``, ``encoding``, ``decoding``, ``networks`` and ``stats``.
"""

from brainalign.pipeline.cache import Result, StageCache
from brainalign.pipeline.core import STAGES, RunReport, Task, describe_plan, run_tasks, stage
from brainalign.pipeline.plan import Plan, build_plan
from brainalign.pipeline.study import (
    StudyResult,
    export_results,
    make_executor,
    plan_study,
    run_study,
)

__all__ = [
    "STAGES",
    "Plan",
    "Result",
    "RunReport",
    "StageCache",
    "StudyResult",
    "Task",
    "build_plan",
    "describe_plan",
    "export_results",
    "make_executor",
    "plan_study",
    "run_study",
    "run_tasks",
    "stage",
]
