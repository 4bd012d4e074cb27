"""dvc.yaml is complete: every module of the package that a stage's command imports is among the stage's deps, so
changing the code a figure came from re-runs the stage that made it (directly imported or not, at a module's top or
inside a function)."""

import ast
import shlex
from pathlib import Path

import pytest
import yaml

from avemo.cli import BY_NAME
from tests.conftest import PROJECT

SRC = PROJECT / "src"


def module_file(name: str) -> Path | None:
    """The source file of a dotted module name of the package, or None for a name that is not a module."""
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every `avemo...` module a file imports, anywhere in it, with the packages that import pulls in."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name == "avemo" or name.startswith("avemo."):
                parts = name.split(".")
                found |= {".".join(parts[:k]) for k in range(1, len(parts) + 1) if module_file(".".join(parts[:k]))}
    return found


def closure(entry: str) -> set[Path]:
    """The files of every module the entry module imports, directly or not."""
    seen, todo = set(), [entry, "avemo"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += imported_modules(module_file(name))
    return {module_file(n).relative_to(PROJECT) for n in seen}


def verb_of(cmd: str) -> str:
    """The `avemo` verb of a stage's command (global options such as --set skipped)."""
    words = shlex.split(cmd)
    assert words[0] == "avemo", cmd
    rest = words[1:]
    while rest[0].startswith("--"):
        rest = rest[2:]
    return rest[0]


def uncovered(stage: dict) -> set[Path]:
    """Package files the stage's command imports that none of its deps covers."""
    verb = BY_NAME[verb_of(stage["cmd"])]
    needed = closure("avemo.cli") | closure(f"avemo.stages.{verb.module}")
    deps = [Path(d) for d in stage.get("deps", [])]
    return {f for f in needed if not any(f == d or d in f.parents for d in deps)}


def stages() -> dict[str, dict]:
    """Every stage of both pipelines, with its template fields as written (a dep path never needs them here)."""
    out = {}
    for path in (PROJECT / "dvc.yaml", PROJECT / "study" / "dvc.yaml"):
        for name, stage in yaml.safe_load(path.read_text())["stages"].items():
            out[f"{path.relative_to(PROJECT)}:{name}"] = stage.get("do", stage)
    return out


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_module_a_stage_imports_is_among_its_deps(name):
    assert uncovered(stages()[name]) == set(), f"{name}: add these to its deps"


def test_the_check_finds_a_module_missing_from_the_deps():
    stage = dict(stages()["dvc.yaml:train_video"])
    stage["deps"] = [d for d in stage["deps"] if d != "src/avemo/stats.py"]
    assert uncovered(stage) == {Path("src/avemo/stats.py")}
    stage["deps"] = [d for d in stage["deps"] if d != "src/avemo/models"]
    assert Path("src/avemo/models/checkpoint.py") in uncovered(stage)  # imported inside a function, not at the top
