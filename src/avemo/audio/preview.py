"""Preview PNGs so that a person can look at what a variant holds."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def spectrogram_sheet(array: np.ndarray, clips: pd.DataFrame, classes: list[str], path: Path, title: str,
                      per_class: int = 3, vmin: float = -60, vmax: float = 60) -> None:
    """A grid: one row per class, `per_class` items each, on the fixed dB scale."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(3 * per_class, 2.2 * len(classes)), squeeze=False)
    for r, cls in enumerate(classes):
        members = clips[clips["class"] == cls].head(per_class)
        for c in range(per_class):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(members):
                item = members.iloc[c]
                ax.imshow(np.asarray(array[item["row"]], np.float32), origin="lower", aspect="auto",
                          vmin=vmin, vmax=vmax, cmap="magma")
                ax.set_title(item["clip_id"], fontsize=7)
            if c == 0:
                ax.set_ylabel(cls)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
