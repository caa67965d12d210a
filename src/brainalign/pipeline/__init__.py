"""The study pipeline: stages wired over subjects × models, cached, resumable, parallel.

``run_study(config)`` builds the plan (every task with its cache key), computes what is not
cached with the configured executor, exports maps and tables and writes the report.
The pipeline holds no science of its own: each stage calls the public functions of
``brainalign.datasets``, ``features``, ``rsa``, ``encoding``, ``decoding``, ``networks`` and ``stats``.
"""

from brainalign.pipeline.cache import Result, StageCache
from brainalign.pipeline.core import STAGES, RunReport, Task, describe_plan, run_tasks, stage

__all__ = [
    "STAGES",
    "Result",
    "RunReport",
    "StageCache",
    "Task",
    "describe_plan",
    "run_tasks",
    "stage",
]
