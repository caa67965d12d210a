"""The study pipeline: stages wired over subjects × models × chunks, cached, resumable, parallel.

>>> from brainalign.pipeline import plan_study, run_study
>>> plan, cache, table = plan_study("configs/demo.toml")     # doctest: +SKIP
>>> print(table)                                            # what is cached, what would run
>>> result = run_study("configs/demo.toml")                  # doctest: +SKIP

``run_study`` builds the plan (every task with its cache key), computes what is not cached with
the configured executor (:mod:`brainalign.parallel`), exports maps (GIFTI/MGH) and tables (CSV)
and writes the report. The pipeline holds no science of its own: each analysis
(:mod:`brainalign.pipeline.analyses`, one module each) declares its config, tasks, export and
report sections, and its stages call the public functions of ``brainalign.datasets``,
``features``, ``rsa``, ``encoding``, ``decoding``, ``networks`` and ``stats``.
"""

from brainalign.pipeline.analysis import Analysis, DataKind, Plan, ReportSection, Table
from brainalign.pipeline.cache import Result, StageCache
from brainalign.pipeline.config import StudyConfig, load_config, validate_config
from brainalign.pipeline.core import (
    STAGES,
    RunReport,
    Task,
    TaskId,
    describe_plan,
    run_tasks,
    stage,
)
from brainalign.pipeline.plan import build_plan
from brainalign.pipeline.study import (
    StudyResult,
    export_results,
    make_executor,
    plan_study,
    run_study,
    write_report,
)

__all__ = [
    "STAGES",
    "Analysis",
    "DataKind",
    "Plan",
    "ReportSection",
    "Result",
    "RunReport",
    "StageCache",
    "StudyConfig",
    "StudyResult",
    "Table",
    "Task",
    "TaskId",
    "build_plan",
    "describe_plan",
    "export_results",
    "load_config",
    "make_executor",
    "plan_study",
    "run_study",
    "run_tasks",
    "stage",
    "validate_config",
    "write_report",
]
