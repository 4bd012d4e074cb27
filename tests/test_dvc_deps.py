"""dvc.yaml is complete: every module of the package that a stage's command imports is among the stage's deps, so
changing the code a figure came from re-runs the stage that made it (directly imported or not, at a module's top or
inside a function)."""

from pathlib import Path

import pytest
import yaml

from scripts.stage_deps import PIPELINES, PROJECT, needed


def uncovered(stage: dict) -> set[Path]:
    """Package files the stage's command imports that none of its deps covers."""
    deps = [Path(d) for d in stage.get("deps", [])]
    return {f for f in needed(stage["cmd"]) if not any(f == d or d in f.parents for d in deps)}


def stages() -> dict[str, dict]:
    """Every stage of both pipelines, with its template fields as written (a dep path never needs them here)."""
    out = {}
    for path in PIPELINES:
        for name, stage in yaml.safe_load(path.read_text())["stages"].items():
            out[f"{path.relative_to(PROJECT)}:{name}"] = stage.get("do", stage)
    return out


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_module_a_stage_imports_is_among_its_deps(name):
    assert uncovered(stages()[name]) == set(), f"{name}: add these to its deps (`make deps`)"


def test_the_check_finds_a_module_missing_from_the_deps():
    stage = dict(stages()["dvc.yaml:train_video"])
    stage["deps"] = [d for d in stage["deps"] if d != "src/avemo/stats.py"]
    assert uncovered(stage) == {Path("src/avemo/stats.py")}
    stage["deps"] = [d for d in stage["deps"] if d != "src/avemo/models"]
    assert Path("src/avemo/models/checkpoint.py") in uncovered(stage)  # imported inside a function, not at the top
