"""A tiny copy of the project in a temp dir, as a git repo, for running the real DVC pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import PROJECT

#: Overrides that make every stage run in seconds.
TINY_PARAMS = {
    "synth": {"dialogues_per_session": 1, "turns_per_dialogue": 6, "max_seconds": 4.5, "workers": 2},
    "audio": {"workers": 2},
}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def project_env() -> dict[str, str]:
    """The test's environment, with this venv first on PATH and MLflow left to the project's own store."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=project_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def make_project(root: Path, overrides: dict | None = None) -> Path:
    """Copy dvc.yaml, study/dvc.yaml, params.yaml (made tiny), src/ and .dvc/config; git init and commit."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    (root / "study").mkdir()
    shutil.copy(PROJECT / "study" / "dvc.yaml", root / "study" / "dvc.yaml")
    shutil.copytree(PROJECT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (root / ".dvc").mkdir()
    shutil.copy(PROJECT / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copy(PROJECT / ".dvc" / ".gitignore", root / ".dvc" / ".gitignore")
    shutil.copy(PROJECT / ".gitignore", root / ".gitignore")
    params = _merge(yaml.safe_load((PROJECT / "params.yaml").read_text()), _merge(TINY_PARAMS, overrides or {}))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "tiny project"], root)
    return root
