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

import importlib

# imported on first use: the study config composes its [analyses] from the analysis registry
# under this package, so importing the package must not import the config back
_WHERE = {
    "Result": "cache",
    "StageCache": "cache",
    "STAGES": "core",
    "RunReport": "core",
    "Task": "core",
    "TaskId": "core",
    "describe_plan": "core",
    "run_tasks": "core",
    "stage": "core",
    "Analysis": "analysis",
    "ReportSection": "analysis",
    "Plan": "plan",
    "build_plan": "plan",
    "StudyResult": "study",
    "export_results": "study",
    "make_executor": "study",
    "plan_study": "study",
    "run_study": "study",
    "write_report": "study",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"brainalign.pipeline.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'brainalign.pipeline' has no attribute {name!r}")


__all__ = sorted(_WHERE)
