"""Torch Datasets over the stage outputs; split roles, balancing and augmentation at load time."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from avemo.data.augment import augment, crop_frequency
from avemo.data.balance import resample_indices
from avemo.params import Augment, Balance

if TYPE_CHECKING:  # pandas costs a cold `avemo predict` ~0.3 s: imported where a table is made or read
    import pandas as pd

def model_input(db: np.ndarray, floor: float, ceiling: float, crop_ratio: float) -> torch.Tensor:
    """A stored dB spectrogram (bins x frames) as the model sees it: (1, bins, frames) scaled to [-1, 1],
    frequency-cropped. Training, evaluation and serving all go through here."""
    raw = torch.from_numpy(np.asarray(db, dtype=np.float32))[None]
    return crop_frequency((raw - floor) / (ceiling - floor) * 2 - 1, crop_ratio)


#: A training stage's record of the items it could not use (beside its details.json).
SKIPPED_COLUMNS = ["clip_id", "role", "reason"]


class SpectrogramDataset(Dataset):
    """(spectrogram (1 x bins x frames, scaled to [-1, 1]), class index) for one role of one fold.

    Balancing and augmentation apply to the train role only; the frequency crop applies to
    every role (it is part of the input definition), without touching the stored array.
    """

    def __init__(self, variant_dir: str | Path, splits: pd.DataFrame, role: str, classes: list[str], fold: int = 0,
                 crop_ratio: float = 0.0, augment_params: Augment | None = None,
                 balance: Balance | None = None):
        import pandas as pd

        from avemo.data.splits import items_for_role

        variant_dir = Path(variant_dir)
        meta = json.loads((variant_dir / "meta.json").read_text())["spectrogram"]
        self.floor, self.ceiling = meta["floor_db"], meta["ceiling_db"]
        self.items = items_for_role(pd.read_parquet(variant_dir / "clips.parquet"), splits, role, fold, classes)
        self.items_in = len(self.items)  # the role's items; those not used are in `skipped`, with the reason
        self.skipped = pd.DataFrame(columns=SKIPPED_COLUMNS)
        self.array = np.load(variant_dir / "spectrograms.npy", mmap_mode="r")
        self.role, self.classes, self.crop_ratio = role, classes, crop_ratio
        self.augment = augment_params if role == "train" and augment_params and augment_params.enabled else None
        self.balance = balance
        self._make_index()

    def _make_index(self) -> None:
        """Item order (the study's re-sampling on the train role, every item once otherwise), and
        the per-item columns as arrays, so that loading an item never touches pandas."""
        targets = self.items["target"].to_numpy()
        index = np.arange(len(self.items))
        if self.role == "train" and self.balance is not None and self.balance.mode == "resample" and len(targets):
            index = resample_indices(targets, len(self.classes), self.balance.per_class, self.balance.seed)
        self.index = index
        self.targets = targets[index]
        self._rows = self.items["row"].to_numpy()[index]

    def __len__(self) -> int:
        return len(self.index)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(frequency rows, time frames) of every item."""
        return tuple(self.array.shape[1:3])

    def spectrogram(self, i: int) -> torch.Tensor:
        x = model_input(self.array[self._rows[i]], self.floor, self.ceiling, self.crop_ratio)
        return augment(x, self.augment) if self.augment else x

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.spectrogram(i), int(self.targets[i])

    def band_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and sd of each frequency row over this role's items (each once: no re-sampling copies,
        no augmentation), as the model sees them. Models standardise with the training split's."""
        return band_statistics(self.array, self.items["row"].to_numpy(), self.floor, self.ceiling, self.crop_ratio)

    def restricted(self, keep: np.ndarray) -> "SpectrogramDataset":
        """The same dataset on a subset of its items (`keep`: a mask over `items`), balanced again."""
        subset = copy.copy(self)
        subset.items = self.items[keep].reset_index(drop=True)
        subset._make_index()
        return subset


def band_statistics(array: np.ndarray, rows: np.ndarray, floor: float, ceiling: float,
                    crop_ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frequency-row mean and sd over the stored items `rows` and all their frames."""
    total = torch.zeros(array.shape[1], dtype=torch.float64)
    squares, count = torch.zeros_like(total), 0
    for a in range(0, len(rows), 256):
        x = model_input(array[np.sort(rows[a: a + 256])], floor, ceiling, crop_ratio)
        x = x.transpose(0, 1).double()  # (items, 1, bins, frames)
        total += x.sum(dim=(0, 1, 3))
        squares += x.square().sum(dim=(0, 1, 3))
        count += x.shape[0] * x.shape[3]
    mean = total / max(1, count)
    return mean.float(), (squares / max(1, count) - mean.square()).clamp_min(0).sqrt().float()


def frames_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) RGB -> uint8 (3, T, H, W): the network scales it, per batch (models/video.py)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(frames, -1, 0)))


#: The stack of a clip without video (missing_video='blank'): every pixel ImageNet's mean colour.
BLANK_PIXEL = (124, 116, 104)
#: What the video model's loader hands over in place of a spectrogram (a batch of them: N x 0).
NO_AUDIO = torch.empty(0)


class AudioVisualDataset(SpectrogramDataset):
    """(spectrogram, frames (uint8, 3 x T x H x W), class), joined on clip id with the video stage's output.

    Same roles, balancing and augmentation as the audio loader; augmentation touches the
    spectrogram's frequency axis and a small rotation only, so audio and frames stay in sync.
    Items without video are dropped (listed in `skipped`, with their role and reason) or given a blank stack of the
    mean colour (`missing_video`).
    The video model reads the same items without their audio (`with_audio=False`): an empty tensor
    stands for the spectrogram, whose loading was about half of its loader's time.
    """

    def __init__(self, variant_dir: str | Path, video_dir: str | Path, splits: pd.DataFrame, role: str,
                 classes: list[str], fold: int = 0, crop_ratio: float = 0.0,
                 augment_params: Augment | None = None, balance: Balance | None = None,
                 missing_video: str = "drop", with_audio: bool = True):
        import pandas as pd

        super().__init__(variant_dir, splits, role, classes, fold, crop_ratio, augment_params, balance)
        self.with_audio = with_audio
        if missing_video not in ("drop", "blank"):
            raise ValueError(f"missing_video must be 'drop' or 'blank', not {missing_video!r}")
        video = pd.read_parquet(Path(video_dir) / "clips.parquet")[["clip_id", "row", "has_video"]]
        items = self.items.merge(video.rename(columns={"row": "video_row"}), on="clip_id", how="left")
        if items["video_row"].isna().any():
            missing = items.loc[items["video_row"].isna(), "clip_id"].iloc[0]
            raise ValueError(f"{video_dir}: clip {missing} of the audio variant has no video row; "
                             "the video stage was built from another audio variant")
        self.missing_video = missing_video
        if missing_video == "drop":  # blanked items are used, not skipped
            self.skipped = pd.DataFrame({"clip_id": items.loc[~items["has_video"], "clip_id"], "role": role,
                                         "reason": "no usable video (the video stage's skip table says why), "
                                                   "train.missing_video=drop"}, columns=SKIPPED_COLUMNS)
            items = items[items["has_video"]].reset_index(drop=True)
        self.items = items
        self.frames = np.load(Path(video_dir) / "frames.npy", mmap_mode="r")
        self._make_index()

    @property
    def frames_shape(self) -> tuple[int, int, int]:
        """(frames, height, width) of every item's face stack."""
        return tuple(self.frames.shape[1:4])

    def _make_index(self) -> None:
        super()._make_index()
        if "video_row" not in self.items:  # called by the audio loader's __init__, before the join
            return
        self._video_rows = self.items["video_row"].to_numpy(dtype=np.int64)[self.index]
        self._has_video = self.items["has_video"].to_numpy(dtype=bool)[self.index]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self._has_video[i]:
            frames = frames_tensor(self.frames[self._video_rows[i]])
        else:  # a blank stack (missing_video='blank')
            frames = torch.tensor(BLANK_PIXEL, dtype=torch.uint8).view(3, 1, 1, 1).expand(3, *self.frames.shape[1:4])
        return self.spectrogram(i) if self.with_audio else NO_AUDIO, frames, int(self.targets[i])
