"""The one configuration system: strict sections, one TOML reader, errors naming file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field

from brainalign.errors import ConfigError
from brainalign.utils.settings import (
    ConfigPath,
    Section,
    load_model,
    merge_overrides,
    read_toml,
    resolve_path,
    validate_model,
)


class _Inner(Section):
    radius: Annotated[float, Field(gt=0)] = 1.0
    names: list[str] = Field(default_factory=list)


class _A(Section):
    kind: Literal["a"] = "a"
    path: ConfigPath | None = None


class _B(Section):
    kind: Literal["b"]
    size: int = 1


class _Study(Section):
    data: Annotated[_A | _B, Field(discriminator="kind")]
    inner: _Inner = Field(default_factory=_Inner)
    items: list[_Inner] = Field(default_factory=list)
    subjects: list[int] | Literal["all"] = "all"


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"data": {"kind": "a"}, "inner": {"radius": -3}}, "inner.radius: must be > 0.0, got -3"),
        ({"data": {"kind": "a", "sise": 3}}, "data.sise: unknown key"),
        ({"data": {"kind": "b", "size": "x"}}, "data.size: Input should be a valid integer"),
        ({"data": {"kind": "c"}}, "data: Input tag 'c'"),
        ({"inner": {}}, "data: required key is missing"),
        ({"data": {"kind": "a"}, "items": [{}, {"radius": 0}]}, "items.1.radius: must be > 0"),
        ({"data": {"kind": "a"}, "subjects": [1, "x"]}, "subjects.1: Input should be a valid"),
    ],
)
def test_errors_name_file_and_dotted_key(data, line):
    with pytest.raises(ConfigError) as err:
        validate_model(_Study, data, Path("cfg/study.toml"))
    lines = str(err.value).splitlines()
    assert any(text.startswith(f"'cfg/study.toml': {line}") for text in lines), lines


def test_one_line_per_problem_and_no_source():
    with pytest.raises(ConfigError) as err:
        validate_model(_Study, {"data": {"kind": "a", "x": 1}, "inner": {"radius": 0}})
    lines = str(err.value).splitlines()
    assert sorted(lines) == sorted(
        ["data.x: unknown key (check its spelling against the documented keys)",
         "inner.radius: must be > 0.0, got 0"]
    )  # fmt: skip


def test_sections_are_strict_and_frozen():
    cfg = validate_model(_Study, {"data": {"kind": "b"}})
    assert cfg.data.size == 1 and cfg.inner.radius == 1.0
    with pytest.raises(ValueError):
        cfg.inner.radius = 2.0


def test_read_toml_and_load_model(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "study.toml"
    path.write_text('[data]\nkind = "a"\npath = "rel/x.txt"\n[inner]\nradius = 2.5\n')
    assert read_toml(path)["inner"] == {"radius": 2.5}
    cfg = load_model(_Study, path, overrides={"inner": {"names": ["v1"]}})
    assert cfg.data.path == (tmp_path / "sub" / "rel" / "x.txt").resolve()
    assert cfg.inner.radius == 2.5 and cfg.inner.names == ["v1"]
    path.write_text("[data\nkind=")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        read_toml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_model(_Study, tmp_path / "missing.toml")


def test_paths_and_overrides(tmp_path):
    assert resolve_path(None, tmp_path) is None
    assert resolve_path("a/b", tmp_path) == (tmp_path / "a" / "b").resolve()
    assert resolve_path("/abs", tmp_path) == Path("/abs")
    assert resolve_path("rel", None) == Path("rel")
    assert resolve_path("~/x", tmp_path) == Path.home() / "x"
    cfg = validate_model(_Study, {"data": {"kind": "a", "path": "p"}})
    assert cfg.data.path == Path("p")  # no base_dir: left as given
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    assert merge_overrides(base, {"a": {"b": 5}, "e": 6}) == {"a": {"b": 5, "c": 2}, "d": 3, "e": 6}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}


def test_a_misspelt_key_gets_a_suggestion():
    """A typo'd key names the section's key it most resembles (issue 21)."""
    from brainalign.pipeline.config import validate_config

    with pytest.raises(ConfigError) as err:
        validate_config(
            {
                "data": {"kind": "virtual"},
                "analyses": {"roi_rsa": {"subset_sise": 50}},
                "output": {"dir": "o"},
            }
        )
    assert "analyses.roi_rsa.subset_sise: unknown key; did you mean 'subset_size'?" in str(
        err.value
    )
