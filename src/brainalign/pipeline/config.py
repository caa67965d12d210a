"""The study configuration: one TOML file validated before any work starts.

A config names the data (a real NSD root or a virtual NSD to build), the subjects and space, the
feature spaces, the analyses with their parameters, the output folder and the compute settings.
Every problem is reported as a :class:`~brainalign.errors.ConfigError` whose message starts with
the dotted key, e.g. ``analyses.searchlight.radius: must be > 0, got -3``.

>>> cfg = StudyConfig.model_validate({"data": {"kind": "virtual"}, "output": {"dir": "run"}})
>>> cfg.analyses.roi_rsa.sampling
'paper'
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model, field_validator

from brainalign.errors import ConfigError
from brainalign.features import list_feature_spaces
from brainalign.pipeline.analyses import ANALYSES
from brainalign.pipeline.analysis import Analysis, DataKind
from brainalign.pipeline.data_kinds import DATA_KINDS
from brainalign.pipeline.estimates import virtual_options
from brainalign.utils.settings import (
    Section,
    merge_overrides,
    read_toml,
    resolve_path,
    validate_model,
)
from brainalign.utils.validation import did_you_mean

PAPER_FEATURE_SPACES = (
    "mpnet",
    "mpnet_category_all",
    "multihot",
    "glove_categories",
    "mpnet_nouns",
    "mpnet_verbs",
    "mpnetWordAvg_all",
    "glove_all",
)

_Positive = Annotated[float, Field(gt=0)]
_PositiveInt = Annotated[int, Field(gt=0)]


# --------------------------------------------------------------------------------------- data
def _data_model():
    """``[data]``: one model per registered data kind, told apart by ``kind``."""
    models = tuple(kind.config for kind in DATA_KINDS.values())
    return Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007


DataConfig = _data_model()


# ------------------------------------------------------------------------------------ features
#: Where the paper's word vectors come from (named when a ``vectors`` file is missing).
WORD_VECTOR_SOURCES = {
    "glove": "GloVe 840B 300-d, glove.840B.300d.txt from nlp.stanford.edu/projects/glove",
    "fasttext": "fastText crawl-300d-2M.vec from fasttext.cc (English word vectors)",
}


class FeaturesConfig(Section):
    """Feature spaces (names from ``brainalign.features.list_feature_spaces()``).

    ``options`` hold each space's keyword arguments; a ``vectors`` option is a word-vector file
    (relative to the config's folder). Without it the GloVe spaces use the packaged 50-d GloVe
    (not the paper's 840B 300-d) and the fastText spaces stop with an error.
    """

    # the models every analysis scores (brainalign features --list names them)
    spaces: list[str] = Field(default_factory=lambda: ["mpnet", "multihot", "mpnet_nouns"])
    # the sentence encoder of the caption spaces (an installed sentence-transformers model)
    encoder: str = "all-mpnet-base-v2"
    # per space, its keyword arguments, e.g. {glove_all = {vectors = "glove.840B.300d.txt"}}
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("spaces")
    @classmethod
    def _non_empty_unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must name at least one feature space")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate names in {v}")
        return v


# ------------------------------------------------------------------------------------ analyses
def _analyses_model() -> type[BaseModel]:
    """``[analyses]``: one section per config model the registered analyses declare."""
    fields = {
        section: (model, Field(default_factory=model))
        for analysis in ANALYSES
        for section, model in analysis.configs.items()
    }
    return create_model("AnalysesConfig", __base__=Section, **fields)


AnalysesConfig = _analyses_model()


class OutputConfig(Section):
    # the run folder (relative to the config's folder): brainalign creates it and writes only
    # into folders it created
    dir: Path
    # file formats of the maps (gifti, mgh) and tables (csv, parquet)
    formats: list[Literal["gifti", "mgh", "csv", "parquet"]] = Field(
        default_factory=lambda: ["gifti", "mgh", "csv"]
    )


class TLSConfig(Section):
    """``[compute.tls]``: PEM files for a ``tls://`` Dask scheduler (docs/cluster.md)."""

    # the certificate authority that signed the scheduler's certificate
    ca_file: Path
    # this client's certificate (and its key, unless the certificate file holds it)
    cert: Path
    # this client's private key, where the certificate file does not hold it
    key: Path | None = None


class ComputeConfig(Section):
    # the array library of the ridge, RSA and searchlight kernels (torch: also on a GPU)
    backend: Literal["numpy", "torch"] = "numpy"
    # cpu, cuda, cuda:N or mps (torch backend and networks)
    device: str = "cpu"
    # how tasks run: one after another, in local processes, or on a Dask cluster (scheduler)
    executor: Literal["serial", "processes", "dask"] = "serial"
    # processes (or Dask workers asked for) running tasks at once
    workers: _PositiveInt = 1
    # Every task runs with this many BLAS/torch threads whatever the executor, so a serial and
    # a parallel run give bit-identical results (thread counts change float summation order).
    threads_per_task: _PositiveInt = 1
    # the address of a running Dask scheduler (executor = "dask"), e.g. tcp://host:8786
    scheduler: str | None = None
    #: seconds to wait for the scheduler to have a worker before stopping with a message
    #: (a scheduler without workers would take the tasks and never run them)
    worker_timeout: _Positive = 60.0
    tls: TLSConfig | None = None
    # the seed of every random draw (subsets, bootstraps, permutations, network inits)
    random_state: int = 0

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not (v == "cpu" or v == "mps" or v.startswith("cuda")):
            raise ValueError(f"expected 'cpu', 'cuda', 'cuda:N' or 'mps', got {v!r}")
        return v


#: the options of a ``[[models]]`` entry that are files (taken against the config's folder)
MODEL_FILE_OPTIONS = ("weights", "path", "ids_path", "source")


class ModelConfig(Section):
    """``[[models]]``: a vision model of your own, scored by name like the zoo's (e.g. in
    ``[analyses.rdm_rsa] vision``); ``brainalign.networks.zoo`` documents each kind."""

    # the name the analyses use
    name: str
    # torchvision, timm or open_clip (an architecture with your local weights), module (your
    # own torch model: a factory in your .py file and your weights), blt (your trained
    # checkpoints), or features (precomputed (n, d) features and their ids)
    kind: str
    # the module read (default: the kind's, e.g. avgpool for torchvision)
    layer: str | None = None
    # images it was trained on (the paper's x-axis of model comparisons), if known
    training_images: int | None = None
    # the kind's options: arch and weights (a local .safetensors or .pth state dict), factory,
    # source and weights (module), layers (every module read, a layer profile), path and
    # ids_path (features), checkpoints (blt); files relative to the config's folder
    options: dict[str, Any] = Field(default_factory=dict)

    def entry(self) -> dict:
        """The ``ZooModel.from_dict`` table of this model."""
        spec = {"name": self.name, "kind": self.kind, **self.options}
        if self.layer is not None:
            spec["layer"] = self.layer
        if self.training_images is not None:
            spec["training_images"] = self.training_images
        return spec


class StudyConfig(Section):
    """The whole study. Build with :func:`load_config` (TOML) or ``model_validate`` (a dict)."""

    # the study's title in the report
    name: str = "brainalign study"
    data: DataConfig
    # the subjects analysed (NSD: 1-8), or all of the data's
    subjects: list[_PositiveInt] | Literal["all"] = "all"
    # the brain space of the responses: the fsaverage surface or the 1.8-mm functional volume
    space: Literal["fsaverage", "func1pt8mm"] = "fsaverage"
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    analyses: AnalysesConfig = Field(default_factory=AnalysesConfig)
    output: OutputConfig
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    # your own vision models, scored by name (see ModelConfig)
    models: list[ModelConfig] = Field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (paths as strings): what the cache keys and the report use."""
        return self.model_dump(mode="json")


# ------------------------------------------------------------------------------------ loading
def validate_config(
    data: dict, *, base_dir: str | os.PathLike | None = None, source: str = ""
) -> StudyConfig:
    """Validate a config dict and check what can be checked before any work starts.

    Parameters
    ----------
    data : dict
        The parsed TOML (or an equivalent dict).
    base_dir : path, optional
        Relative paths in the config are resolved against this folder (the config's folder).
    source : str
        Where the config came from, for error messages.

    Raises
    ------
    ConfigError
        Naming the key, what was expected and what was found.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    cfg = _resolve_paths(validate_model(StudyConfig, data, source, base_dir=base), base)
    check_config(cfg)
    return cfg


def config_of_run(data: dict) -> StudyConfig:
    """The validated config a run recorded (``run.json``'s ``config``), e.g. for its report.

    Only the values are validated (defaults filled, types checked): the paths were resolved when
    the run was planned, and its data need not be there any more.

    Raises
    ------
    ConfigError
        When this version of brainalign cannot read the recorded config (naming the keys).
    """
    return validate_model(StudyConfig, data, "run.json")


def _resolve_paths(cfg: StudyConfig, base: Path) -> StudyConfig:
    """Config paths taken against ``base`` (the data kind resolves its own)."""
    out = cfg.output.model_copy(update={"dir": resolve_path(cfg.output.dir, base)})
    data = data_kind(cfg).resolve(cfg.data, base, out.dir)
    options = {
        name: {**opts, "vectors": str(resolve_path(opts["vectors"], base))}
        if isinstance(opts.get("vectors"), str)
        else opts
        for name, opts in cfg.features.options.items()
    }
    features = cfg.features.model_copy(update={"options": options})
    compute = cfg.compute
    if compute.tls is not None:
        tls = compute.tls.model_copy(
            update={
                k: resolve_path(getattr(compute.tls, k), base) for k in ("ca_file", "cert", "key")
            }
        )
        compute = compute.model_copy(update={"tls": tls})
    models = [
        m.model_copy(
            update={
                "options": {
                    k: (
                        [str(resolve_path(p, base)) for p in v]
                        if k == "checkpoints"
                        else str(resolve_path(v, base))
                        if k in MODEL_FILE_OPTIONS
                        else v
                    )
                    for k, v in m.options.items()
                }
            }
        )
        for m in cfg.models
    ]
    return cfg.model_copy(
        update={
            "output": out,
            "data": data,
            "features": features,
            "compute": compute,
            "models": models,
        }
    )


def data_kind(cfg: StudyConfig) -> DataKind:
    """The registered :class:`~brainalign.pipeline.analysis.DataKind` of ``cfg.data.kind``."""
    return DATA_KINDS[cfg.data.kind]


def enabled_analyses(cfg: StudyConfig) -> list[Analysis]:
    """The registered analyses that run in ``cfg``, in registry order: enabled, and needing
    what its data kind provides."""
    provides = data_kind(cfg).provides
    return [a for a in ANALYSES if a.is_enabled(cfg, provides)]


#: what a name that becomes part of a file name (tables, arrays, maps) may not hold: path
#: separators, characters other systems refuse in file names, control characters
_UNSAFE_IN_NAME = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')


def name_problem(key: str, name: str) -> str | None:
    """Why ``name`` (the value of ``key``) cannot be part of a file name, or None.

    Names of data sets and contrasts end up in the run folder's file names
    (``arrays/rdmset__<name>__…``): a ``/`` there used to pass every check and fail at export,
    after all the work. ``__`` separates the parts of those names, so it is refused too.
    """
    if not name.strip():
        return f"{key}: {name!r} is empty; give a short name of letters, digits, '-', '_' or '.'"
    bad = sorted(set(_UNSAFE_IN_NAME.findall(name)))
    why = None
    if bad:
        why = f"holds {', '.join(repr(c) for c in bad)}"
    elif name.startswith("."):
        why = "starts with '.' (a hidden file)"
    elif "__" in name:
        why = "holds '__', which separates the parts of the run folder's file names"
    if why is None:
        return None
    return (
        f"{key}: {name!r} {why}; it becomes part of file names, so use letters, digits, "
        "spaces, '-', '_' (not doubled) or '.'"
    )


def _name_problems(cfg: StudyConfig) -> list[str]:
    """Names from the config that become file names, checked before any work."""
    names = []
    if cfg.data.kind == "rdms":
        sets = cfg.data.sets
        names += [(f"data.sets[{i}].name", s.name) for i, s in enumerate(sets) if s.name]
    ins = getattr(cfg.analyses, "insilico", None)
    if ins is not None and ins.enabled:
        for i, pair in enumerate(ins.contrasts):
            names += [(f"analyses.insilico.contrasts[{i}]", c) for c in pair]
    return [p for key, name in names if (p := name_problem(key, name)) is not None]


def _word_option_problems(cfg: StudyConfig) -> list[str]:
    """The word-level controls' options (``tagger``, ``fixes``, ``lookup``): known values, and
    NLTK with its data where a space asks for the paper's tagger (before any work)."""
    from brainalign.features.words import FIX_RULES, LOOKUPS, TAGGERS, nltk_problem

    problems, nltk_users = [], []
    for name, opts in cfg.features.options.items():
        for key, allowed in (("tagger", TAGGERS), ("fixes", FIX_RULES), ("lookup", LOOKUPS)):
            if key in opts and opts[key] not in allowed:
                problems.append(
                    f"features.options.{name}.{key}: expected one of {list(allowed)}, got "
                    f"{opts[key]!r}"
                )
        if opts.get("tagger") == "nltk" and name in cfg.features.spaces:
            nltk_users.append(name)
    if nltk_users:
        why = nltk_problem()
        if why is not None:
            problems.append(
                f"features.options.{{{', '.join(nltk_users)}}}.tagger = 'nltk' (the paper's "
                f"tagger): {why}"
            )
    return problems


def check_config(cfg: StudyConfig) -> None:
    """Cross-field checks that need the file system or the registries (raise ConfigError)."""
    problems: list[str] = _name_problems(cfg)
    kind = data_kind(cfg)
    if kind.check is not None:
        problems += kind.check(cfg)
    if cfg.data.kind == "virtual":
        # the virtual NSD's own limits (NSD's 73,000 images): refused at load, not after
        # planning hundreds of thousands of tasks
        try:
            virtual_options(cfg)
        except ConfigError as exc:
            problems.append(str(exc))
    if isinstance(cfg.subjects, list) and len(set(cfg.subjects)) != len(cfg.subjects):
        problems.append(f"subjects: duplicate subject numbers in {cfg.subjects}")

    known = list_feature_spaces()
    spaces = set(cfg.features.spaces)
    for name in cfg.features.options:
        if name not in spaces:
            problems.append(
                f"features.options.{name}: options for a feature space that is not in features.spaces"
            )
    for name, opts in cfg.features.options.items():
        vectors = opts.get("vectors")
        if isinstance(vectors, str) and not Path(vectors).is_file():
            kind = "fasttext" if name.startswith("fasttext") else "glove"
            problems.append(
                f"features.options.{name}.vectors: word-vector file {vectors!r} does not exist; "
                f"the paper used {WORD_VECTOR_SOURCES[kind]}"
            )
    problems += _word_option_problems(cfg)
    for name in cfg.features.spaces:
        if name.startswith("fasttext") and "vectors" not in cfg.features.options.get(name, {}):
            problems.append(
                f"features.spaces: {name!r} needs a word-vector file: set "
                f"features.options.{name}.vectors ({WORD_VECTOR_SOURCES['fasttext']})"
            )
    referenced = [("features.spaces", s) for s in cfg.features.spaces]
    for analysis in enabled_analyses(cfg):
        if analysis.feature_spaces is not None:
            referenced += analysis.feature_spaces(cfg)
    for key, name in referenced:
        if name not in known:
            problems.append(
                f"{key}: unknown feature space {name!r}{did_you_mean(name, known)}; available: "
                f"{', '.join(sorted(known))}"
            )
        elif key != "features.spaces" and name not in spaces:
            problems.append(f"{key}: {name!r} is not listed in features.spaces {sorted(spaces)}")
    for analysis in ANALYSES:
        if analysis.check is not None:
            problems += analysis.check(cfg)
    if cfg.compute.scheduler is not None and cfg.compute.executor != "dask":
        problems.append(
            f"compute.scheduler: a scheduler address needs compute.executor = 'dask', got "
            f"{cfg.compute.executor!r}"
        )
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def with_effective(config: dict, effective: dict) -> dict:
    """``config`` (a :meth:`StudyConfig.to_dict`) with the values the run used in place of those
    requested: ``effective`` maps dotted keys to ``{"requested": …, "used": …, …}``.

    ``run.json`` stores this, so its config and the report's methods say what was done
    (``analyses.roi_rsa.subset_size = 100000`` was capped at a subject's 48 images); the
    requests stay in ``run.json["effective"]``.
    """
    out = copy.deepcopy(config)
    for key, record in effective.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = record["used"]
    return out


def load_config(path: str | os.PathLike, overrides: dict | None = None) -> StudyConfig:
    """Read and validate a TOML study config.

    Parameters
    ----------
    path : path
        The TOML file. Relative paths inside it are taken relative to its folder.
    overrides : dict, optional
        Nested values that replace the file's (e.g. ``{"compute": {"workers": 4}}``).

    Returns
    -------
    StudyConfig

    Raises
    ------
    ConfigError
        The file is missing or not TOML, or a key is invalid (the message names it).
    """
    path = Path(path)
    data = read_toml(path)
    if overrides:
        data = merge_overrides(data, overrides)
    return validate_config(data, base_dir=path.resolve().parent, source=repr(str(path)))


__all__ = [
    "AnalysesConfig",
    "ComputeConfig",
    "FeaturesConfig",
    "OutputConfig",
    "StudyConfig",
    "data_kind",
    "enabled_analyses",
    "check_config",
    "config_of_run",
    "name_problem",
    "load_config",
    "validate_config",
    "with_effective",
]
