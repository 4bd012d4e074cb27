"""Small writers shared by stages: skipped-item tables and JSON metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd


def write_skipped(path: str | Path, rows: Iterable[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Write what a stage skipped, with the reason, so that nothing is dropped silently."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(list(rows), columns=columns)
    table.to_csv(path, index=False)
    return table


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
