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

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from brainalign.datasets.base import STREAMS_ROIS
from brainalign.errors import ConfigError

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


class _Section(BaseModel):
    # Unknown keys are typos more often than not: refuse them.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------- data
class VirtualDataConfig(_Section):
    """A virtual NSD built by :func:`brainalign.datasets.make_virtual_nsd` before the study runs.

    ``root`` defaults to ``<output.dir>/virtual_nsd``; ``options`` are passed on verbatim.
    """

    kind: Literal["virtual"] = "virtual"
    root: Path | None = None
    n_subjects: _PositiveInt = 8
    random_state: int = 0
    options: dict[str, Any] = Field(default_factory=dict)


class NSDDataConfig(_Section):
    """A real NSD download (or any folder in its layout)."""

    kind: Literal["nsd"] = "nsd"
    root: Path
    cache_dir: Path | None = None


DataConfig = Annotated[VirtualDataConfig | NSDDataConfig, Field(discriminator="kind")]


# ------------------------------------------------------------------------------------ features
class FeaturesConfig(_Section):
    """Feature spaces (names from ``brainalign.features.list_feature_spaces()``)."""

    spaces: list[str] = Field(default_factory=lambda: ["mpnet", "multihot", "mpnet_nouns"])
    encoder: str = "all-mpnet-base-v2"
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
class RoiRsaConfig(_Section):
    """ROI RSA with noise ceilings and group statistics (paper §3.4)."""

    enabled: bool = True
    rois: list[str] = Field(default_factory=lambda: ["early", "ventral", "lateral", "parietal"])
    sampling: Literal["paper", "full"] = "paper"
    subset_size: Annotated[int, Field(ge=3)] = 100
    max_subsets: _PositiveInt | None = None
    metric: Literal["correlation", "cosine", "euclidean"] = "correlation"
    method: Literal["pearson", "spearman", "cosine", "kendall_tau_a"] = "pearson"
    noise_ceiling: bool = True


#: default searchlight radius per space: geodesic mm on fsaverage, voxels on func1pt8mm (the
#: paper's 6 voxels ≈ 10.8 mm)
SEARCHLIGHT_RADIUS = {"fsaverage": 10.0, "func1pt8mm": 6.0}
#: largest volume radius accepted (voxels); beyond it the value was most likely given in mm
MAX_VOLUME_RADIUS = 20.0


class SearchlightConfig(_Section):
    """Searchlight RSA with group t-maps and FDR (paper §3.3).

    ``space = "fsaverage"`` (default) runs geodesic discs of ``radius`` mm on the surface.
    ``space = "func1pt8mm"`` is the paper's version: spheres of ``radius`` voxels in each
    subject's volume (kept when at least ``min_fraction`` of the sphere is in the brain mask),
    each subject's map then projected to fsaverage with NSD's transforms before the group
    statistics. ``radius`` defaults to 10 mm on the surface and 6 voxels in the volume.
    """

    enabled: bool = True
    space: Literal["fsaverage", "func1pt8mm"] = "fsaverage"
    radius: _Positive = 10.0
    min_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    models: list[str] = Field(default_factory=lambda: ["mpnet"])
    method: Literal["pearson", "spearman"] = "pearson"
    sampling: Literal["paper", "full"] = "full"
    fdr_q: Annotated[float, Field(gt=0, lt=1)] = 0.05
    chunk_size: _PositiveInt = 4096

    @model_validator(mode="before")
    @classmethod
    def _default_radius(cls, data: Any) -> Any:
        # the radius's unit depends on the space, so its default does too
        if isinstance(data, dict) and data.get("radius") is None:
            space = data.get("space", "fsaverage")
            if space in SEARCHLIGHT_RADIUS:
                data = {**data, "radius": SEARCHLIGHT_RADIUS[space]}
        return data


class EncodingConfig(_Section):
    """Ridge encoding maps from a feature space to every unit (paper §4)."""

    enabled: bool = True
    feature_space: str = "mpnet"
    alphas: list[_Positive] = Field(
        default_factory=lambda: [0.1, 1.0, 10.0, 100.0, 1000.0, 1e4, 1e5]
    )
    cv: Annotated[int, Field(ge=2)] = 5
    mode: Literal["per_target", "fracridge"] = "per_target"
    agreement: bool = True
    fdr_q: Annotated[float, Field(gt=0, lt=1)] = 0.05


class InsilicoConfig(_Section):
    """In-silico contrasts: sentences → embeddings → predicted maps → paired group t (paper §4)."""

    enabled: bool = True
    contrasts: list[tuple[str, str]] = Field(
        default_factory=lambda: [("people", "places"), ("food", "people")]
    )
    sentences: dict[str, list[str]] = Field(default_factory=dict)
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05


class DecodingConfig(_Section):
    """Brain → embedding decoding and caption reconstruction from a bank (paper §5)."""

    enabled: bool = True
    rois: list[str] = Field(default_factory=lambda: list(STREAMS_ROIS))
    feature_space: str = "mpnet"
    bank: Path | None = None
    bank_dtype: Literal["float16", "float32"] = "float32"
    k: _PositiveInt = 5
    n_examples: _PositiveInt = 6
    alphas: list[_Positive] = Field(default_factory=lambda: [1.0, 10.0, 100.0, 1000.0, 1e4, 1e5])


class NetworksConfig(_Section):
    """Small BLT networks trained toward caption embeddings and categories (paper §7)."""

    enabled: bool = True
    targets: list[Literal["mpnet", "multihot"]] = Field(
        default_factory=lambda: ["mpnet", "multihot"]
    )
    embedding_space: str = "mpnet"  # the caption embeddings the "mpnet" target means
    seeds: list[int] = Field(default_factory=lambda: [0])
    epochs: _PositiveInt = 4
    batch_size: _PositiveInt = 32
    image_size: _PositiveInt = 64
    width: _Positive = 0.125
    timesteps: _PositiveInt = 2
    layers: _PositiveInt = 10
    learning_rate: _Positive = 1e-3
    zoo: list[str] = Field(default_factory=list)


class ModelComparisonConfig(_Section):
    """Noise-ceiling-normalised ROI RSA per model with paired tests (paper Fig. 3 and §8.1)."""

    enabled: bool = True
    rois: list[str] = Field(default_factory=lambda: ["ventral", "lateral", "parietal"])
    test: Literal["paired", "paper"] = "paired"
    fdr_q: Annotated[float, Field(gt=0, lt=1)] = 0.05


class AnalysesConfig(_Section):
    roi_rsa: RoiRsaConfig = Field(default_factory=RoiRsaConfig)
    searchlight: SearchlightConfig = Field(default_factory=SearchlightConfig)
    encoding: EncodingConfig = Field(default_factory=EncodingConfig)
    insilico: InsilicoConfig = Field(default_factory=InsilicoConfig)
    decoding: DecodingConfig = Field(default_factory=DecodingConfig)
    networks: NetworksConfig = Field(default_factory=NetworksConfig)
    model_comparison: ModelComparisonConfig = Field(default_factory=ModelComparisonConfig)


# ------------------------------------------------------------------------------ output/compute
class OutputConfig(_Section):
    dir: Path
    formats: list[Literal["gifti", "mgh", "csv", "parquet"]] = Field(
        default_factory=lambda: ["gifti", "mgh", "csv"]
    )


class ComputeConfig(_Section):
    backend: Literal["numpy", "torch"] = "numpy"
    device: str = "cpu"
    executor: Literal["serial", "processes", "dask"] = "serial"
    workers: _PositiveInt = 1
    # Every task runs with this many BLAS/torch threads whatever the executor, so a serial and
    # a parallel run give bit-identical results (thread counts change float summation order).
    threads_per_task: _PositiveInt = 1
    scheduler: str | None = None
    random_state: int = 0

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not (v == "cpu" or v == "mps" or v.startswith("cuda")):
            raise ValueError(f"expected 'cpu', 'cuda', 'cuda:N' or 'mps', got {v!r}")
        return v


class StudyConfig(_Section):
    """The whole study. Build with :func:`load_config` (TOML) or ``model_validate`` (a dict)."""

    name: str = "brainalign study"
    data: DataConfig
    subjects: list[_PositiveInt] | Literal["all"] = "all"
    space: Literal["fsaverage", "func1pt8mm"] = "fsaverage"
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    analyses: AnalysesConfig = Field(default_factory=AnalysesConfig)
    output: OutputConfig
    compute: ComputeConfig = Field(default_factory=ComputeConfig)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (paths as strings): what the cache keys and the report use."""
        return self.model_dump(mode="json")


# ------------------------------------------------------------------------------------ loading
_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "tagged")))
        # pydantic puts the discriminator value in loc for tagged unions ("data.virtual.root")
        loc = loc.replace("data.virtual.", "data.").replace("data.nsd.", "data.")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against the documented keys)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] in _BOUNDS:
            bound = next(iter(err.get("ctx", {}).values()), "?")
            msg = f"must be {_BOUNDS[err['type']]} {bound}, got {err.get('input')!r}"
        else:
            msg = msg.removeprefix("Value error, ")
            if "input" in err and not isinstance(err["input"], dict):
                msg = f"{msg}, got {err['input']!r}"
        lines.append(f"{loc or '<root>'}: {msg}")
    where = f" {source}" if source else ""
    return f"invalid configuration{where}:\n  " + "\n  ".join(lines)


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
    try:
        cfg = StudyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    cfg = _resolve_paths(cfg, base)
    check_config(cfg)
    return cfg


def _resolve(path: Path | None, base: Path) -> Path | None:
    if path is None:
        return None
    path = Path(os.path.expanduser(str(path)))
    return path if path.is_absolute() else (base / path).resolve()


def _resolve_paths(cfg: StudyConfig, base: Path) -> StudyConfig:
    out = cfg.output.model_copy(update={"dir": _resolve(cfg.output.dir, base)})
    if isinstance(cfg.data, NSDDataConfig):
        data = cfg.data.model_copy(
            update={
                "root": _resolve(cfg.data.root, base),
                "cache_dir": _resolve(cfg.data.cache_dir, base),
            }
        )
    else:
        root = _resolve(cfg.data.root, base) or out.dir / "virtual_nsd"
        data = cfg.data.model_copy(update={"root": root})
    dec = cfg.analyses.decoding
    analyses = cfg.analyses.model_copy(
        update={"decoding": dec.model_copy(update={"bank": _resolve(dec.bank, base)})}
    )
    return cfg.model_copy(update={"output": out, "data": data, "analyses": analyses})


def available_feature_spaces() -> list[str] | None:
    """Names registered in ``brainalign.features``, or None while that registry is unavailable."""
    try:
        from brainalign.features import list_feature_spaces
    except ImportError:
        return None
    return list(list_feature_spaces())


def check_config(cfg: StudyConfig) -> None:
    """Cross-field checks that need the file system or the registries (raise ConfigError)."""
    problems: list[str] = []
    if isinstance(cfg.data, NSDDataConfig):
        root = cfg.data.root
        if not root.is_dir():
            problems.append(
                f"data.root: NSD root {str(root)!r} does not exist; point it at the folder holding "
                "nsddata/ and nsddata_betas/ (or use data.kind = 'virtual')"
            )
        elif not (root / "nsddata").is_dir():
            problems.append(
                f"data.root: {str(root)!r} has no nsddata/ folder; expected NSD's layout "
                "(nsddata/, nsddata_betas/, nsddata_stimuli/)"
            )
    if isinstance(cfg.subjects, list) and len(set(cfg.subjects)) != len(cfg.subjects):
        problems.append(f"subjects: duplicate subject numbers in {cfg.subjects}")
    if isinstance(cfg.subjects, list) and isinstance(cfg.data, VirtualDataConfig):
        bad = [s for s in cfg.subjects if s > cfg.data.n_subjects]
        if bad:
            problems.append(
                f"subjects: {bad} exceed data.n_subjects = {cfg.data.n_subjects}; "
                "use subjects between 1 and data.n_subjects"
            )

    known = available_feature_spaces()
    spaces = set(cfg.features.spaces)
    for name in cfg.features.options:
        if name not in spaces:
            problems.append(
                f"features.options.{name}: options for a feature space that is not in features.spaces"
            )
    referenced = [("features.spaces", s) for s in cfg.features.spaces]
    a = cfg.analyses
    referenced += [("analyses.searchlight.models", m) for m in a.searchlight.models]
    referenced += [("analyses.encoding.feature_space", a.encoding.feature_space)]
    referenced += [("analyses.decoding.feature_space", a.decoding.feature_space)]
    if "mpnet" in a.networks.targets:
        referenced += [("analyses.networks.embedding_space", a.networks.embedding_space)]
    for key, name in referenced:
        if known is not None and name not in known:
            problems.append(
                f"{key}: unknown feature space {name!r}; available: {', '.join(sorted(known))}"
            )
        elif key != "features.spaces" and name not in spaces and _enabled_for(cfg, key):
            problems.append(f"{key}: {name!r} is not listed in features.spaces {sorted(spaces)}")

    for key, rois in (
        ("analyses.roi_rsa.rois", a.roi_rsa.rois),
        ("analyses.decoding.rois", a.decoding.rois),
        ("analyses.model_comparison.rois", a.model_comparison.rois),
    ):
        bad = [r for r in rois if r not in (*STREAMS_ROIS, "nsdgeneral")]
        if bad:
            problems.append(
                f"{key}: unknown ROI(s) {bad}; expected names from {list(STREAMS_ROIS)}"
            )
    if a.model_comparison.enabled and a.model_comparison.rois:
        missing = [r for r in a.model_comparison.rois if r not in a.roi_rsa.rois]
        if missing:
            problems.append(
                f"analyses.model_comparison.rois: {missing} are not in analyses.roi_rsa.rois "
                f"{a.roi_rsa.rois}; model comparison uses the ROI RSA scores"
            )
        if not a.roi_rsa.enabled:
            problems.append(
                "analyses.model_comparison.enabled: needs analyses.roi_rsa.enabled = true"
            )
    sl = a.searchlight
    if sl.enabled and sl.space == "func1pt8mm" and not (1.0 < sl.radius <= MAX_VOLUME_RADIUS):
        problems.append(
            f"analyses.searchlight.radius: with space = 'func1pt8mm' the radius is in voxels and "
            f"must be > 1 (a sphere of radius <= 1 holds only its centre) and <= "
            f"{MAX_VOLUME_RADIUS:g} (was it given in mm?), got {sl.radius!r}; the paper uses 6 "
            "voxels (~10.8 mm)"
        )
    if cfg.space != "fsaverage" and a.encoding.enabled:
        problems.append(
            f"space: {cfg.space!r} — the pipeline's encoding maps are surface maps; use space = "
            "'fsaverage', or disable analyses.encoding"
        )
    if cfg.space != "fsaverage" and a.searchlight.enabled and a.searchlight.space == "fsaverage":
        problems.append(
            f"space: {cfg.space!r} — analyses.searchlight.space = 'fsaverage' needs the fsaverage "
            "betas; set analyses.searchlight.space = 'func1pt8mm' (the paper's volume searchlight, "
            "projected to fsaverage) or space = 'fsaverage'"
        )
    if a.insilico.enabled and not a.encoding.enabled:
        problems.append("analyses.insilico.enabled: needs analyses.encoding.enabled = true")
    for i, (x, y) in enumerate(a.insilico.contrasts):
        for name in (x, y):
            if a.insilico.sentences and name not in a.insilico.sentences:
                problems.append(
                    f"analyses.insilico.contrasts[{i}]: no sentences for {name!r} in "
                    f"analyses.insilico.sentences ({sorted(a.insilico.sentences)})"
                )
    if a.decoding.enabled and a.decoding.bank is not None and not a.decoding.bank.exists():
        problems.append(
            f"analyses.decoding.bank: caption corpus {str(a.decoding.bank)!r} does not exist; give a "
            "TSV/JSON/text corpus or leave it out to use the dataset's training captions"
        )
    if cfg.compute.scheduler is not None and cfg.compute.executor != "dask":
        problems.append(
            f"compute.scheduler: a scheduler address needs compute.executor = 'dask', got "
            f"{cfg.compute.executor!r}"
        )
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _enabled_for(cfg: StudyConfig, key: str) -> bool:
    section = key.split(".")[1]
    return getattr(cfg.analyses, section).enabled


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
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; give the path of a TOML file")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    if overrides:
        data = _merge(data, overrides)
    return validate_config(data, base_dir=path.resolve().parent, source=repr(str(path)))


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


__all__ = [
    "AnalysesConfig",
    "ComputeConfig",
    "DecodingConfig",
    "EncodingConfig",
    "FeaturesConfig",
    "InsilicoConfig",
    "ModelComparisonConfig",
    "NSDDataConfig",
    "NetworksConfig",
    "OutputConfig",
    "RoiRsaConfig",
    "SearchlightConfig",
    "StudyConfig",
    "VirtualDataConfig",
    "check_config",
    "load_config",
    "validate_config",
]
