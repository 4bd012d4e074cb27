"""Self-supervised audio-video synchronisation pre-training (after Korbar, Tran and Torresani 2018).

The two branches of the fusion model learn, without a single emotion label, whether a clip's
audio and a stack of face frames belong together. Positives: the audio and frames of one
clip. Negatives, from easy to hard: frames of another dialogue, frames of another utterance of
the same dialogue, and the clip's own frames with the audio shifted in time (the hardest: same
voice, same face, same emotion; only the synchrony of mouth and voice differs). The share of
each kind moves from `curriculum.start` to `curriculum.end` over the epochs.

Loss: contrastive with a margin, on the distance d between the L2-normalised embeddings:
d for a positive pair, max(0, margin - d) for a negative. (The study's published code clamped
this hinge the wrong way, max=0, so embeddings could collapse at zero loss.) InfoNCE over the
positives of a batch is the alternative. Validation: for each held-out clip, is its positive
closer than each kind of negative (synchronisation accuracy, chance 0.5), on held-out speakers.

The data path reads only clip ids, utterance and dialogue names, and array rows: the clip
tables' emotion columns are never loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from avemo.data.datasets import band_statistics, frames_tensor, model_input
from avemo.models.audio import AudioNet, audio_config
from avemo.models.video import VideoNet, video_config
from avemo.params import Models, Sync
from avemo.training.loop import seed_everything

NEGATIVES = ("other_dialogue", "same_dialogue", "shifted")  # easy, hard, hardest
#: What the data path may read from the clip tables: nothing about emotions.
AUDIO_COLUMNS = ["clip_id", "utterance_id", "dialog", "row"]
VIDEO_COLUMNS = ["clip_id", "row", "has_video"]


def contrastive_loss(audio: torch.Tensor, video: torch.Tensor, positive: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of d (positive pairs) and max(0, margin - d) (negative pairs), d the Euclidean distance."""
    distance = (audio - video).norm(dim=1)
    return torch.where(positive, distance, F.relu(margin - distance)).mean()


def infonce_loss(audio: torch.Tensor, video: torch.Tensor, temperature: float) -> torch.Tensor:
    """Each audio should pick its own frames among the batch's (and each stack its own audio)."""
    logits = audio @ video.T / temperature
    targets = torch.arange(len(audio), device=audio.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


class SyncNet(nn.Module):
    """The fusion model's two convolutional encoders, read as sequences over time and projected into one space.

    Synchrony is about *when*: each encoder's feature map is averaged over frequency (audio) or
    over the image (video), pooled to `steps` moments, and each moment projected into a shared
    space; a pair's embedding is that sequence, L2-normalised. Audio out of step with the face
    then lands far from it even when voice and face match. The encoders' own read-outs (the
    time-pooled embedding layers) are not trained here: fusion learns them on the labels.
    """

    def __init__(self, audio: AudioNet, video: VideoNet, dim: int, steps: int = 8):
        super().__init__()
        self.audio, self.video, self.steps = audio, video, steps
        self.audio_projection = nn.Linear(audio.cfg.channels[-1], dim)
        self.video_projection = nn.Linear(video.cfg.channels[-1], dim)

    def forward(self, spectrogram: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """(batch, 2, steps * dim): the normalised audio and video sequences of each pair."""
        a = self.audio.conv((spectrogram - self.audio.input_mean) / self.audio.input_std).mean(dim=2)  # (B, C, T)
        v = self.video.features(frames).mean(dim=(3, 4))  # (B, C, T)
        a, v = (F.adaptive_avg_pool1d(x, self.steps).transpose(1, 2) for x in (a, v))  # (B, steps, C)
        a = F.normalize(self.audio_projection(a).flatten(1), dim=1)
        v = F.normalize(self.video_projection(v).flatten(1), dim=1)
        return torch.stack([a, v], dim=1)


class SyncTask:
    """The loop's task for pre-training: targets are (is_positive, negative kind, anchor) per pair."""

    score = "sync_acc"

    def __init__(self, p: Sync):
        self.p = p

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        audio, video = outputs[:, 0].float(), outputs[:, 1].float()
        positive = targets[:, 0] == 1
        if self.p.loss == "infonce":
            return infonce_loss(audio[positive], video[positive], self.p.temperature) if positive.sum() > 1 else \
                (audio.sum() * 0)
        return contrastive_loss(audio, video, positive, self.p.margin)

    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict:
        """Synchronisation accuracy: how often a clip's positive is closer than a negative, per kind and overall."""
        model.eval()
        distances, targets, losses = [], [], []
        with torch.no_grad():
            for *inputs, y in loader:
                out = model(*(x.to(device) for x in inputs)).float()
                distances.append((out[:, 0] - out[:, 1]).norm(dim=1).cpu())
                losses.append(self.loss(out, y.to(device)).item() * len(y))
                targets.append(y)
        d, t = torch.cat(distances).numpy(), torch.cat(targets).numpy()
        table = pd.DataFrame({"d": d, "positive": t[:, 0] == 1, "kind": t[:, 1], "anchor": t[:, 2]})
        positive = table[table["positive"]].set_index("anchor")["d"]
        negatives = table[~table["positive"]]
        won = negatives["d"].to_numpy() > positive.loc[negatives["anchor"]].to_numpy()
        out = {"loss": float(sum(losses) / max(1, len(t))), "sync_acc": float(won.mean()) if len(won) else 0.0}
        for k, name in enumerate(NEGATIVES):
            of_kind = (negatives["kind"] == k).to_numpy()
            if of_kind.any():
                out[f"sync_acc_{name}"] = float(won[of_kind].mean())
        return out


class SyncPairs(Dataset):
    """(spectrogram, frames, [is_positive, negative kind, anchor]) pairs from one role's clips.

    Training pairs are drawn anew each epoch (`set_epoch`), seeded, with the curriculum's mix of
    negatives; validation pairs are fixed: for every clip its positive and one negative of each kind.
    """

    def __init__(self, audio_dir: Path, video_dir: Path, splits: pd.DataFrame, role: str, fold: int, crop_ratio: float,
                 p: Sync, epochs: int, validation: bool = False):
        import json

        meta = json.loads((Path(audio_dir) / "meta.json").read_text())["spectrogram"]
        self.floor, self.ceiling, self.crop_ratio = meta["floor_db"], meta["ceiling_db"], crop_ratio
        clips = pd.read_parquet(Path(audio_dir) / "clips.parquet", columns=AUDIO_COLUMNS)
        video = pd.read_parquet(Path(video_dir) / "clips.parquet", columns=VIDEO_COLUMNS)
        roles = splits.loc[(splits["fold"] == fold) & (splits["role"] == role), ["utterance_id"]]
        items = clips.merge(roles, on="utterance_id").merge(video.rename(columns={"row": "video_row"}), on="clip_id")
        self.items = items[items["has_video"]].reset_index(drop=True)
        if len(self.items) < 2 or self.items["dialog"].nunique() < 2:
            raise ValueError(f"sync pre-training needs clips of at least two dialogues in the {role} split")
        self.spectrograms = np.load(Path(audio_dir) / "spectrograms.npy", mmap_mode="r")
        self.frames = np.load(Path(video_dir) / "frames.npy", mmap_mode="r")
        self.p, self.epochs = p, epochs
        self.validation = validation
        self._index_dialogues()
        self.set_epoch(0)

    def band_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        return band_statistics(self.spectrograms, self.items["row"].to_numpy(), self.floor, self.ceiling,
                               self.crop_ratio)

    def mix(self, epoch: int) -> np.ndarray:
        """Shares of the negative kinds at an epoch: a straight line from the curriculum's start to its end."""
        t = epoch / max(1, self.epochs - 1)
        mix = (1 - t) * np.array(self.p.curriculum_start) + t * np.array(self.p.curriculum_end)
        return mix / mix.sum()

    def _index_dialogues(self) -> None:
        """Each clip's dialogue and each dialogue's clips (sorted), so a partner is found without a scan."""
        codes, dialogs = np.unique(self.items["dialog"].to_numpy(), return_inverse=True)
        self._dialog = dialogs
        self._members = [np.flatnonzero(dialogs == d) for d in range(len(codes))]
        self._utterances = self.items["utterance_id"].to_numpy()

    def _same_dialog_other_utterance(self, a: int) -> np.ndarray:
        members = self._members[self._dialog[a]]
        return members[self._utterances[members] != self._utterances[a]]

    def _other_dialog(self, a: int, k: int) -> int:
        """The k-th clip (in order) outside clip a's dialogue: k plus the number of members before it."""
        members = self._members[self._dialog[a]]
        return int(k + np.searchsorted(members - np.arange(len(members)), k, side="right"))

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.p.seed, epoch, int(self.validation)])
        n = len(self.items)
        anchors = np.arange(n)
        if self.validation:  # every clip: its positive, then one negative of each kind
            anchors = np.repeat(anchors, 1 + len(NEGATIVES))
            kinds = np.tile(np.arange(-1, len(NEGATIVES)), n)
        else:
            kinds = np.where(rng.random(n) < self.p.positive_share, -1,
                             rng.choice(len(NEGATIVES), size=n, p=self.mix(epoch)))
        partners, shifts = anchors.copy(), np.zeros(len(anchors), np.int64)
        for j, (a, kind) in enumerate(zip(anchors, kinds)):
            if kind == 1:
                pool = self._same_dialog_other_utterance(a)
                if not len(pool):  # a dialogue with one utterance: fall back to another dialogue
                    kinds[j] = kind = 0
                else:
                    partners[j] = pool[rng.integers(len(pool))]
            if kind == 0:
                partners[j] = self._other_dialog(a, rng.integers(n - len(self._members[self._dialog[a]])))
            elif kind == 2:
                shifts[j] = rng.integers(self.p.shift_frames[0], self.p.shift_frames[1] + 1)
        self.pairs = np.stack([anchors, partners, kinds, shifts], axis=1)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, j: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        anchor, partner, kind, shift = self.pairs[j]
        audio = model_input(self.spectrograms[self.items["row"].iat[anchor]], self.floor, self.ceiling, self.crop_ratio)
        if shift:
            audio = torch.roll(audio, int(shift), dims=-1)  # the same audio, out of step with the face
        frames = frames_tensor(self.frames[self.items["video_row"].iat[partner]])
        return audio, frames, torch.tensor([int(kind == -1), max(int(kind), 0), int(anchor)])


def sync_model(models: Models, p: Sync, train_set: SyncPairs, normalise: str = "imagenet") -> SyncNet:
    """Both encoders as the fusion model builds them (the same architecture, so they can start it)."""
    seed_everything(p.seed)
    audio = AudioNet(audio_config(models.audio, train_set.spectrograms.shape[1:3]), 2)
    audio.set_input_statistics(*train_set.band_statistics())
    video = VideoNet(video_config(models.video, train_set.frames.shape[1:4], normalise), 2)
    return SyncNet(audio, video, p.embedding)
