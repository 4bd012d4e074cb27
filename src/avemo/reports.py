"""Small writers shared by stages: skipped-item tables, JSON metrics, and the in = out + skipped check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


def write_table(path: str | Path, table: pd.DataFrame) -> None:
    """Write a report table (e.g. what a stage skipped, with the reason) as CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


def check_reconciled(what: str, n_in: int, n_out: int, n_skipped: int) -> None:
    """A stage never loses data silently: everything that came in went out or was reported."""
    if n_in != n_out + n_skipped:
        raise RuntimeError(f"{what}: {n_in} in, but {n_out} out + {n_skipped} skipped")
