"""Contact sheets: one PNG per class, a row per clip, a few frames per row."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd


def contact_sheets(frames: np.ndarray, table: pd.DataFrame, classes: list[str], folder: Path,
                   clips_per_class: int = 6, frames_per_clip: int = 5) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for cls in classes:
        members = table[(table["class"] == cls) & table["has_video"]].head(clips_per_class)
        if members.empty:
            continue
        picks = np.linspace(0, frames.shape[1] - 1, frames_per_clip).round().astype(int)
        rows = [np.hstack([frames[r, k] for k in picks]) for r in members["row"]]
        sheet = cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR)
        sheet = cv2.resize(sheet, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(folder / f"{cls}.png"), sheet)
