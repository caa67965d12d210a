"""The reference of every study-config key, written from the config models themselves.

Each ``[section]`` is a :class:`~brainalign.utils.settings.Section` model: its keys, their types
and defaults come from the model's fields, and a key's meaning from the comment lines written
just above the field in the model's source (``# ...`` or ``#: ...``) or the section's
docstring. ``docs/config.md`` is this module's output (a test keeps them equal), so the
reference cannot drift from the code::

    python -m brainalign.pipeline.config_reference > docs/config.md
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
import types
import typing

from pydantic import BaseModel

from brainalign.pipeline.config import StudyConfig
from brainalign.pipeline.data_kinds import DATA_KINDS

_FIELD = re.compile(r"^    (\w+)\s*:")


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """``{field: the comment lines just above it}`` from the source of ``model``'s class."""
    try:
        lines = inspect.getsource(model).splitlines()
    except (OSError, TypeError):  # a model made by create_model has no source
        return {}
    out, above = {}, []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#:").strip())
            continue
        m = _FIELD.match(line)
        if m and above:
            out[m.group(1)] = " ".join(above)
        above = []
    return out


def _type_name(t) -> str:
    """A short name of a field's type (``list[str]``, ``"auto" | "dual"``, ``Path | None``)."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(map(_type_name, args))}]"
    if t is type(None):
        return "None"
    return t.__name__ if isinstance(t, type) else str(t).replace("typing.", "")


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _section_model(annotation) -> type[BaseModel] | None:
    """The Section model of a field that is a sub-section (also ``Model | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def _section(path: str, model: type[BaseModel], note: str = "", many: bool = False) -> list[str]:
    """The Markdown of ``[path]`` and, after it, of its sub-sections."""
    doc = inspect.getdoc(model) or ""
    if doc.startswith("Create a new model") or model.__module__ == "pydantic.main":
        doc = ""
    comments = field_comments(model)
    rows, subs = [], []
    for name, field in model.model_fields.items():
        if model is StudyConfig and name == "data":
            continue  # one section per data kind, below
        sub = _section_model(field.annotation)
        if sub is not None:
            array = typing.get_origin(field.annotation) is list  # an array of tables
            subs.append((f"{path}.{name}" if path else name, sub, array))
            continue
        meaning = comments.get(name, "").replace("|", "\\|")
        kind = _type_name(field.annotation).replace("|", "\\|")
        rows.append(f"| `{name}` | `{kind}` | `{_default(field)}` | {meaning} |")
    out = []
    if rows:
        header = f"[[{path}]]" if many else f"[{path}]"
        out += [f"## `{header}`{note}" if path else "## top level", ""]
        if doc:
            out += [textwrap.fill(" ".join(doc.split()), 100), ""]
        out += ["| key | type | default | meaning |", "|---|---|---|---|", *rows, ""]
    for sub_path, sub, sub_many in subs:
        out += _section(sub_path, sub, many=sub_many)
    return out


def config_reference() -> str:
    """The Markdown reference of every key of a study config (``docs/config.md``)."""
    out = [
        "# Study config keys",
        "",
        "Every key of a study TOML (`brainalign run study.toml`), its type, its default and what "
        "it does. Written by `python -m brainalign.pipeline.config_reference` from the config "
        "models (a test keeps this file equal to its output); examples in `configs/`.",
        "",
    ]
    out += _section("", StudyConfig)
    for name, kind in DATA_KINDS.items():
        out += _section("data", kind.config, f' with `kind = "{name}"`')
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    print(config_reference(), end="")


if __name__ == "__main__":
    main()

__all__ = ["config_reference", "field_comments"]
