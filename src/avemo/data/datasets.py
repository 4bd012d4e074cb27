"""Torch Datasets over the stage outputs; split roles, balancing and augmentation at load time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from avemo.data.augment import AugmentParams, augment, crop_frequency
from avemo.data.balance import resample_indices

ROLES = ("train", "val", "test")


@dataclass(frozen=True)
class BalanceParams:
    mode: str = "resample"  # 'resample' (the study), 'class_weight' (in the loss) or 'none'
    per_class: int | str = "median"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("resample", "class_weight", "none"):
            raise ValueError(f"balance.mode must be 'resample', 'class_weight' or 'none', not {self.mode!r}")


def items_for_role(clips: pd.DataFrame, splits: pd.DataFrame, role: str, fold: int, classes: list[str]) -> pd.DataFrame:
    """The clips of one role of one fold, restricted to the class set, with `target` (class index)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    fold_roles = splits.loc[splits["fold"] == fold, ["utterance_id", "role"]]
    if fold_roles.empty:
        raise ValueError(f"fold {fold} is not in the splits table (folds: {sorted(splits['fold'].unique())})")
    items = clips.merge(fold_roles, on="utterance_id", how="inner")
    items = items[(items["role"] == role) & items["class"].isin(classes)].reset_index(drop=True)
    items["target"] = items["class"].map({c: i for i, c in enumerate(classes)}).astype(np.int64)
    return items


class SpectrogramDataset(Dataset):
    """(spectrogram (1 x bins x frames, scaled to [-1, 1]), class index) for one role of one fold.

    Balancing and augmentation apply to the train role only; the frequency crop applies to
    every role (it is part of the input definition), without touching the stored array.
    """

    def __init__(self, variant_dir: str | Path, splits: pd.DataFrame, role: str, classes: list[str], fold: int = 0,
                 crop_ratio: float = 0.0, augment_params: AugmentParams | None = None,
                 balance: BalanceParams | None = None):
        variant_dir = Path(variant_dir)
        meta = json.loads((variant_dir / "meta.json").read_text())["spectrogram"]
        self.floor, self.ceiling = meta["floor_db"], meta["ceiling_db"]
        self.items = items_for_role(pd.read_parquet(variant_dir / "clips.parquet"), splits, role, fold, classes)
        self.array = np.load(variant_dir / "spectrograms.npy", mmap_mode="r")
        self.role, self.classes, self.crop_ratio = role, classes, crop_ratio
        self.augment = augment_params if role == "train" and augment_params and augment_params.enabled else None
        targets = self.items["target"].to_numpy()
        self.index = np.arange(len(self.items))
        if role == "train" and balance is not None and balance.mode == "resample" and len(targets):
            self.index = resample_indices(targets, len(classes), balance.per_class, balance.seed)

    @property
    def targets(self) -> np.ndarray:
        return self.items["target"].to_numpy()[self.index]

    def __len__(self) -> int:
        return len(self.index)

    def spectrogram(self, i: int) -> torch.Tensor:
        item = self.items.iloc[self.index[i]]
        raw = torch.from_numpy(np.asarray(self.array[item["row"]], dtype=np.float32))[None]
        x = (raw - self.floor) / (self.ceiling - self.floor) * 2 - 1
        x = crop_frequency(x, self.crop_ratio)
        return augment(x, self.augment) if self.augment else x

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.spectrogram(i), int(self.items["target"].iat[self.index[i]])
