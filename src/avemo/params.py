"""params.yaml access: the single source of every knob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read the whole params file; stages pick only the sections they declare in dvc.yaml."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no params file (run from the project root or pass --params)")
    with path.open() as f:
        return yaml.safe_load(f) or {}


def as_tuples(value: Any) -> Any:
    """YAML lists -> tuples, recursively: the frozen config dataclasses hold tuples."""
    if isinstance(value, list):
        return tuple(as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: as_tuples(v) for k, v in value.items()}
    return value
