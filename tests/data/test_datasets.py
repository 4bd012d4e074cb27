import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from avemo.data.datasets import SpectrogramDataset, frames_tensor
from avemo.models.video import scaled
from avemo.params import Augment, Balance

CLASSES = ["neutral", "happy", "angry", "sad"]
AUG = Augment(enabled=True)


def test_items_carry_their_role_from_the_splits_and_only_the_class_set(tiny_variant, tiny_splits):
    clips = pd.read_parquet(tiny_variant / "clips.parquet")
    for role, sessions in (("train", {1, 2, 3}), ("val", {4}), ("test", {5})):
        ds = SpectrogramDataset(tiny_variant, tiny_splits, role, CLASSES)
        assert set(ds.items["session"]) == sessions
        assert len(ds) == clips["session"].isin(sessions).sum()
        x, y = ds[0]
        assert x.shape == (1, 64, 300) and x.dtype == torch.float32 and -1 <= x.min() <= x.max() <= 1
        assert CLASSES[y] == ds.items["class"].iat[0]


def test_balancing_and_augmentation_touch_the_training_split_only(tiny_variant, tiny_splits):
    balance = Balance(mode="resample", per_class="max")
    for role in ("val", "test"):
        plain = SpectrogramDataset(tiny_variant, tiny_splits, role, CLASSES)
        treated = SpectrogramDataset(tiny_variant, tiny_splits, role, CLASSES, augment_params=AUG, balance=balance)
        assert len(treated) == len(plain)
        torch.manual_seed(0)
        assert all(torch.equal(treated[i][0], plain[i][0]) for i in range(len(plain)))
    train = SpectrogramDataset(tiny_variant, tiny_splits, "train", CLASSES, augment_params=AUG, balance=balance)
    counts = np.bincount(train.targets, minlength=4)
    assert len(set(counts[counts > 0])) == 1 and len(train) > len(train.items)
    plain_train = SpectrogramDataset(tiny_variant, tiny_splits, "train", CLASSES)
    torch.manual_seed(0)
    changed = [not torch.equal(train.spectrogram(i), plain_train[train.index[i]][0]) for i in range(8)]
    assert sum(changed) >= 6  # augmentation is random; an angle of exactly 0 and no shift is rare


def test_augmentation_never_flips_time(tiny_variant, tiny_splits):
    """Energy onsets stay where they were: a time flip would move them to the mirrored frame."""
    plain = SpectrogramDataset(tiny_variant, tiny_splits, "train", CLASSES)
    aug = SpectrogramDataset(tiny_variant, tiny_splits, "train", CLASSES,
                             augment_params=Augment(enabled=True, max_rotation_deg=0.0))
    x, a = plain[0][0], aug[0][0]
    profile_x, profile_a = x.mean(dim=1)[0], a.mean(dim=1)[0]
    assert torch.corrcoef(torch.stack([profile_x, profile_a]))[0, 1] > 0.9


def test_crop_ratio_changes_the_tensor_and_not_the_stored_array(tiny_variant, tiny_splits):
    digest = hashlib.sha256((tiny_variant / "spectrograms.npy").read_bytes()).hexdigest()
    full = SpectrogramDataset(tiny_variant, tiny_splits, "val", CLASSES)[0][0]
    cropped = SpectrogramDataset(tiny_variant, tiny_splits, "val", CLASSES, crop_ratio=0.6)[0][0]
    assert cropped.shape == full.shape and not torch.equal(cropped, full)
    # The crop keeps the lowest 40 % of the rows and stretches them over the whole height.
    assert torch.allclose(cropped[0, 0], full[0, 0], atol=0.05)
    assert hashlib.sha256((tiny_variant / "spectrograms.npy").read_bytes()).hexdigest() == digest


def test_an_unknown_fold_fails_clearly(tiny_variant, tiny_splits):
    with pytest.raises(ValueError, match="fold 3 is not in the splits table"):
        SpectrogramDataset(tiny_variant, tiny_splits, "train", CLASSES, fold=3)


@pytest.mark.parametrize("normalise", ["imagenet", "unit"])
def test_frame_stacks_are_scaled_pixel_by_pixel_as_the_formula_says(normalise):
    """Loaders hand over uint8 channels-first; the network's scaling gives (x / 255 - mean) / std per channel."""
    frames = np.random.default_rng(0).integers(0, 256, (4, 6, 10, 3), dtype=np.uint8)
    stack = frames_tensor(frames)
    assert stack.shape == (3, 4, 6, 10) and stack.dtype == torch.uint8
    assert torch.equal(stack, torch.from_numpy(frames).permute(3, 0, 1, 2))
    x = stack.float() / 255
    if normalise == "imagenet":
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        x = (x - mean.view(3, 1, 1, 1)) / std.view(3, 1, 1, 1)
    got = scaled(stack[None], normalise)[0]
    assert got.dtype == torch.float32 and torch.allclose(got, x, atol=1e-6)
    with pytest.raises(ValueError, match="video normalise must be one of \\['imagenet', 'unit'\\], not 'zscore'"):
        scaled(stack[None], "zscore")
