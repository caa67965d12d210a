"""Every third-party module the project imports is declared in ``pyproject.toml``.

An import that works only because another package happened to pull it in (``psutil`` through
``distributed``) or because the machine has it (``cryptography``) passes every test here and
fails for a newcomer. The rules, by where the import sits:

* ``src/``, at module level: a core dependency (``[project] dependencies``);
* ``src/``, inside a function or a ``try``: a core dependency or any extra (optional paths);
* ``tests/``: a core dependency or the ``test`` extra (which the README's test command installs),
  or any extra when the test skips without it (``pytest.importorskip``, ``try``);
* ``benchmarks/``: a core dependency or any extra.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCAL = {"brainalign", "tests", "benchmarks", "conftest", "__future__"}

#: import name -> distribution, for modules whose distribution is not installed here (optional
#: extras) or whose name differs from the distribution's
KNOWN_DISTRIBUTIONS = {
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "open_clip": "open-clip-torch",
    "faiss": "faiss-cpu",
    "yaml": "pyyaml",
    "timm": "timm",
    "torchvision": "torchvision",
    "nltk": "nltk",
}

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse(requirement: str) -> tuple[str, list[str]]:
    name, extras = _REQUIREMENT.match(requirement).groups()
    return _normalise(name), [e.strip() for e in (extras or "").split(",") if e.strip()]


def _extra_requirements(dist: str, extra: str) -> list[str]:
    """Requirements a third-party distribution adds for one of its extras (empty if unknown)."""
    try:
        requires = md.requires(dist) or []
    except md.PackageNotFoundError:
        return []
    marker = re.compile(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]")
    return [r.split(";")[0] for r in requires if ";" in r and marker.search(r.split(";", 1)[1])]


def declared(groups: list[str]) -> set[str]:
    """Normalised distribution names the given groups declare (``"core"`` or extra names).

    Extras of a requirement count as declared (``dask[distributed]`` declares ``distributed``),
    as do the project's own extras named in another (``brainalign[cluster]``).
    """
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    pending = [r for g in groups for r in (project["dependencies"] if g == "core" else extras[g])]
    names: set[str] = set()
    while pending:
        name, wanted = _parse(pending.pop())
        if name == "brainalign":
            pending += [r for e in wanted for r in extras[e]]
            continue
        names.add(name)
        pending += [r for e in wanted for r in _extra_requirements(name, e)]
    return names


class _Imports(ast.NodeVisitor):
    """Top-level module names imported by one file, each marked guarded or not.

    Guarded: inside a function, a ``try`` block, or named by ``pytest.importorskip``.
    """

    def __init__(self):
        self.found: dict[str, bool] = {}
        self._depth = 0

    def _add(self, module: str | None, guarded: bool):
        if module:
            top = module.split(".")[0]
            self.found[top] = self.found.get(top, True) and guarded

    def _nested(self, node):
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Try = _nested

    def visit_Import(self, node):
        for alias in node.names:
            self._add(alias.name, self._depth > 0)

    def visit_ImportFrom(self, node):
        if node.level == 0:
            self._add(node.module, self._depth > 0)

    def visit_Call(self, node):
        func = node.func
        if getattr(func, "attr", getattr(func, "id", None)) == "importorskip" and node.args:
            if isinstance(node.args[0], ast.Constant):
                self._add(node.args[0].value, True)
        self.generic_visit(node)


def third_party_imports(folder: str) -> dict[str, dict[str, bool]]:
    """``{module: {file: guarded}}`` for every non-stdlib, non-local import under ``folder``."""
    result: dict[str, dict[str, bool]] = {}
    for path in sorted((REPO / folder).rglob("*.py")):
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        for module, guarded in visitor.found.items():
            if module not in sys.stdlib_module_names and module not in LOCAL:
                result.setdefault(module, {})[str(path.relative_to(REPO))] = guarded
    return result


@functools.cache
def _installed_modules() -> dict[str, list[str]]:
    # reads every installed distribution's file list: seconds, so once per test run
    return md.packages_distributions()


def distribution_of(module: str) -> str | None:
    installed = _installed_modules().get(module)
    if installed:
        return _normalise(installed[0])
    known = KNOWN_DISTRIBUTIONS.get(module)
    return _normalise(known) if known else None


def _pulled_in_by(dist: str) -> list[str]:
    """Installed distributions that require ``dist`` (why an undeclared import still works)."""
    users = []
    for other in md.distributions():
        for req in other.requires or []:
            if _parse(req)[0] == dist:
                users.append(other.metadata["Name"])
                break
    return sorted(set(users))


def undeclared(folder: str, strict: list[str], loose: list[str]) -> list[str]:
    """One line per import in ``folder`` not covered by its allowed groups."""
    strict_names, loose_names = declared(strict), declared(loose)
    problems = []
    for module, files in third_party_imports(folder).items():
        dist = distribution_of(module)
        if dist is None:
            problems.append(
                f"{module} (imported in {', '.join(files)}): not installed and not in "
                "KNOWN_DISTRIBUTIONS; declare its distribution in pyproject.toml and map it here"
            )
            continue
        for file, guarded in files.items():
            if dist in (loose_names if guarded else strict_names):
                continue
            why = ", ".join(_pulled_in_by(dist)) or "nothing declared"
            groups = " or ".join(loose if guarded else strict)
            problems.append(
                f"{module} ({dist}) imported in {file} is not declared in {groups}; "
                f"it is installed here only because of: {why}"
            )
    return problems


def _extras() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project.get("optional-dependencies", {}))


@pytest.mark.parametrize(
    "folder, strict, loose",
    [
        ("src", ["core"], ["core", *_extras()]),
        ("tests", ["core", "test"], ["core", *_extras()]),
        ("benchmarks", ["core", *_extras()], ["core", *_extras()]),
    ],
)
def test_every_import_is_declared(folder, strict, loose):
    problems = undeclared(folder, strict, loose)
    assert not problems, "\n".join(problems)


def test_the_check_names_an_undeclared_import(tmp_path, monkeypatch):
    """The check itself can fail: an import of a package nothing declares is named."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "uses.py").write_text("import numpy\nimport psutil\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["numpy"]\n[project.optional-dependencies]\ntest = ["psutil"]\n'
    )
    problems = undeclared("src", ["core"], ["core", "test"])
    assert len(problems) == 1 and problems[0].startswith("psutil (psutil) imported in src/uses.py")


def test_extras_of_requirements_count_as_declared():
    assert "distributed" in declared(["core"])  # dask[distributed]
    assert "cryptography" in declared(["test"])  # brainalign[cluster]
