"""From a :class:`~brainalign.pipeline.config.StudyConfig` to the task graph (subjects ×
models × chunks).

The data kind (:mod:`brainalign.pipeline.data_kinds`) gives the data task and the subjects,
whose responses every analysis reads; then every enabled analysis of the registry
(:mod:`brainalign.pipeline.analyses`) adds its tasks through a
:class:`~brainalign.pipeline.analysis.PlanBuilder`. Every task's key is known here, before
anything runs, so ``--dry-run`` can show what is cached.
"""

from __future__ import annotations

from brainalign.pipeline.analysis import ModelRef, Plan, PlanBuilder
from brainalign.pipeline.cache import StageCache
from brainalign.pipeline.config import StudyConfig, data_kind, enabled_analyses
from brainalign.pipeline.estimates import check_data_fits, check_radius


def _stage_cache(cfg: StudyConfig):
    """The run folder's task cache, read-only (None before the first run)."""
    folder = cfg.output.dir / "cache" / "stages"
    return StageCache(folder, create=False) if folder.is_dir() else None


def build_plan(cfg: StudyConfig) -> Plan:
    """Every task of the study with its parameters and dependencies (nothing is run)."""
    enabled = enabled_analyses(cfg)
    also = [s for a in enabled if a.spaces for s in a.spaces(cfg) if s != cfg.space]
    options = {k: v for a in enabled if a.data_options for k, v in a.data_options(cfg).items()}
    kind = data_kind(cfg)
    data, mesh = kind.plan(cfg, list(dict.fromkeys(also)), options)
    # the mesh is known only now (a real NSD root says its resolution): a radius that gives
    # empty or absurd discs on it is refused here, before anything runs
    check_radius(cfg, (mesh or {}).get("mesh"))
    subjects = list(cfg.subjects) if cfg.subjects != "all" else kind.subjects(cfg)
    # the data's size is known before its tasks: data that cannot fit the disk are refused
    # before planning (100,000 subjects took minutes to plan)
    check_data_fits(cfg, data, (mesh or {}).get("mesh"), subjects, _stage_cache(cfg))
    plan = Plan(cfg, kind, subjects, data, mesh=mesh)
    builder = PlanBuilder(plan, mesh)
    for s in plan.subjects if kind.provides == "responses" else ():
        plan.subject_tasks[s] = builder.responses(s)
    # feature spaces of the stimuli every subject saw; RDM data sets plan their own per set
    for name in cfg.features.spaces if kind.provides == "responses" else ():
        builder.add_model(ModelRef(name, builder.feature(name)))
    for analysis in enabled:
        plan.analyses[analysis.name] = analysis.plan(builder)
    return plan


__all__ = ["build_plan"]
