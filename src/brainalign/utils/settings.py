"""The one configuration system: strict pydantic sections, one TOML reader, one error format.

Every config of brainalign (the study, network training, model comparison) is a tree of
:class:`Section` models read with :func:`read_toml` and validated with :func:`validate_model`
(or both at once with :func:`load_model`). A problem is one
:class:`~brainalign.errors.ConfigError` with one line per problem, each naming the file and the
dotted key as written in the file::

    'configs/train.toml': train.epochs: must be > 0, got 0
    'configs/train.toml': train.momentum: unknown key (check its spelling against the documented keys)

Paths inside a config are relative to the config's folder: declare such fields as
:data:`ConfigPath` and pass ``base_dir`` to :func:`validate_model`.

>>> class Run(Section):
...     epochs: int = 1
>>> validate_model(Run, {"epochs": 3}).epochs
3
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo

from brainalign.errors import ConfigError

_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


class Section(BaseModel):
    """A config section: unknown keys are errors, values are frozen once validated.

    Validate with :func:`validate_model` (errors as one :class:`ConfigError`). Do not override
    ``__init__`` in a section that is nested in another: pydantic then calls it during the
    outer validation and its errors lose their keys.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file (raises ConfigError naming the file when missing or malformed)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; give the path of a TOML file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


def validate_model(
    model: type[BaseModel],
    data: Any,
    source: str | os.PathLike = "",
    *,
    base_dir: str | os.PathLike | None = None,
):
    """``model.model_validate(data)``, with errors as one ConfigError naming each dotted key.

    Parameters
    ----------
    model : pydantic model class
        Usually a :class:`Section`.
    data : dict
        The parsed TOML (or an equivalent dict).
    source : str or path
        Where the data came from (a path is quoted), named at the start of every error line.
    base_dir : path, optional
        Folder that relative :data:`ConfigPath` values are taken against (the config's folder).

    Raises
    ------
    ConfigError
        One line per problem: ``source: dotted.key: message``.
    """
    context = {"base_dir": Path(base_dir)} if base_dir is not None else None
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source, model=model)) from None


def load_model(model: type[BaseModel], path: str | os.PathLike, overrides: dict | None = None):
    """Read a TOML file and validate it against ``model``; relative paths: the file's folder.

    ``overrides`` are nested values that replace the file's (see :func:`merge_overrides`).
    """
    path = Path(path)
    data = read_toml(path)
    if overrides:
        data = merge_overrides(data, overrides)
    return validate_model(model, data, path, base_dir=path.resolve().parent)


def merge_overrides(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` applied key by key, nested tables merged (inputs unchanged)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = value
    return out


def resolve_path(path: str | os.PathLike | None, base_dir: str | os.PathLike | None) -> Path | None:
    """``path`` with ``~`` expanded; a relative path is taken against ``base_dir`` and resolved.

    None stays None; without ``base_dir`` a relative path is returned as given.
    """
    if path is None:
        return None
    path = Path(os.path.expanduser(os.fspath(path)))
    if path.is_absolute() or base_dir is None:
        return path
    return (Path(base_dir) / path).resolve()


def _resolve_against_base(value: Path, info: ValidationInfo) -> Path:
    return resolve_path(value, (info.context or {}).get("base_dir"))


#: a path field of a config: a relative value is taken against ``base_dir`` (the file's folder)
ConfigPath = Annotated[Path, AfterValidator(_resolve_against_base)]


# ------------------------------------------------------------------------------ error messages


def format_errors(
    exc: ValidationError, source: str | os.PathLike = "", *, model: type[BaseModel] | None = None
) -> str:
    """One line per problem: ``source: dotted.key: message`` (no ``source: `` when empty).

    A path ``source`` is quoted. With ``model``, the key is the one written in the file: the
    labels pydantic inserts for unions (``data.virtual.root``) are dropped (``data.root``).
    """
    if isinstance(source, os.PathLike):
        source = repr(os.fspath(source))
    prefix = f"{source}: " if source else ""
    lines = []
    for err in exc.errors():
        key, parent = _dotted_key(err["loc"], model)
        message = _message(err)
        if err["type"] == "extra_forbidden" and parent is not None:
            near = difflib.get_close_matches(key.rsplit(".", 1)[-1], parent.model_fields, n=1)
            if near:
                message = f"unknown key; did you mean {near[0]!r}?"
        lines.append(f"{prefix}{key or '<root>'}: {message}")
    return "\n".join(lines)


def _message(err: dict) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check its spelling against the documented keys)"
    if kind == "missing":
        return "required key is missing"
    if kind in _BOUNDS:
        bound = next(iter(err.get("ctx", {}).values()), "?")
        return f"must be {_BOUNDS[kind]} {bound}, got {err.get('input')!r}"
    msg = err["msg"].removeprefix("Value error, ")
    got = f"got {err['input']!r}" if "input" in err else ""
    if got and not isinstance(err["input"], dict) and not msg.endswith(got):
        msg = f"{msg}, {got}"
    return msg


def _dotted_key(loc: tuple, model: type[BaseModel] | None) -> tuple[str, type | None]:
    """The key as written in the file, walking ``model``'s fields to spot union labels, and
    the model (section) its last part was looked up in (None where not a section)."""
    loc = [p for p in loc if not (isinstance(p, str) and p.startswith(("function-", "tagged")))]
    parts: list[str] = []
    tp: Any = model
    parent = None
    i = 0
    while i < len(loc):
        part = loc[i]
        i += 1
        parts.append(str(part))
        tp = _strip(tp)
        parent = tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None
        if parent is not None:
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            tp = None if field is None else field.annotation
            members = _union_members(tp)
            if field is not None and len(members) > 1 and i < len(loc) and isinstance(loc[i], str):
                # pydantic names the union member (or the discriminator's tag) next: skip it
                tp = _tagged_member(members, field.discriminator, loc[i])
                i += 1
        elif typing.get_origin(tp) in (list, tuple, set, frozenset, dict):
            args = typing.get_args(tp)
            tp = args[-1] if args else None
        else:
            tp = None
    return ".".join(parts), parent


def _strip(tp: Any) -> Any:
    """``tp`` without ``Annotated`` and without the ``None`` of an optional."""
    members = _union_members(tp)
    return members[0] if len(members) == 1 else tp


def _union_members(tp: Any) -> list:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _tagged_member(members: list, discriminator: Any, tag: str) -> Any:
    """The member of a discriminated union whose ``discriminator`` literal is ``tag``."""
    if not isinstance(discriminator, str):
        return None
    for member in members:
        member = _strip(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get(discriminator)
            if field is not None and typing.get_origin(field.annotation) is Literal:
                if tag in typing.get_args(field.annotation):
                    return member
    return None


__all__ = [
    "ConfigPath",
    "Section",
    "format_errors",
    "load_model",
    "merge_overrides",
    "read_toml",
    "resolve_path",
    "validate_model",
]
