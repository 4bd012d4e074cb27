"""How much of a fusion model's decision comes from each branch, by removing a modality's input.

For each clip, the probability of the explained class is read with both inputs, without the
audio, without the video, and without either. A removed modality takes the input of each clip
of a **background** set in turn (a class-balanced sample of training clips, say) and the
probabilities are averaged: the interventional removal of SHAP. Without a background, a removed
modality takes one reference input, the training band means (`baselines.band_means`) or the
model-space zero face, and that is fragile: the model gives such an input a class of its own
(the tests' fusion model, given the band means for audio and each clip's own frames, answers
"high" with p = 0.97 on average, so the audio of "high" clips seemed to add nothing; the default
corpus's models read the band means as sad), and every clip of that class then seems not to need
the modality at all.

The leave-one-out **drops** are what the issue asks for; they miss evidence that both branches
carry (remove either and the other still carries it: both drops are small). The two-player
**Shapley values** share the whole change p(both) - p(neither) between the branches, averaging
each branch's drop over the two orders of removal, and the **audio share** is
max(phi_audio, 0) / (max(phi_audio, 0) + max(phi_video, 0)): 1 is all audio, 0 all video, NaN
where neither branch raises the probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avemo.explain.baselines import band_means, blank_face
from avemo.explain.outputs import audio_scores
from avemo.explain.summary import class_counts, class_means, mean
from avemo.models.fusion import FusionNet


@dataclass(frozen=True)
class ModalityShares:
    """p(target) of each clip with both inputs, without audio, without video, and without either."""

    classes: list[str]
    labels: np.ndarray | None
    targets: np.ndarray
    both: np.ndarray
    without_audio: np.ndarray
    without_video: np.ndarray
    neither: np.ndarray

    @property
    def audio_drop(self) -> np.ndarray:
        return self.both - self.without_audio

    @property
    def video_drop(self) -> np.ndarray:
        return self.both - self.without_video

    @property
    def audio_shapley(self) -> np.ndarray:
        return 0.5 * ((self.both - self.without_audio) + (self.without_video - self.neither))

    @property
    def video_shapley(self) -> np.ndarray:
        return 0.5 * ((self.both - self.without_video) + (self.without_audio - self.neither))

    @property
    def audio_share(self) -> np.ndarray:
        a, v = np.maximum(self.audio_shapley, 0), np.maximum(self.video_shapley, 0)
        return np.where(a + v > 0, a / np.where(a + v > 0, a + v, 1), np.nan)

    def class_audio_share(self) -> np.ndarray:
        """(classes,) mean audio share over the clips of each true class."""
        return class_means(self.audio_share, self.labels, len(self.classes))

    def metrics(self) -> dict:
        """Mean drops, Shapley values and audio share, overall and (with labels) per class."""
        def summary(keep: np.ndarray) -> dict:
            return {"audio_drop": mean(self.audio_drop[keep]), "video_drop": mean(self.video_drop[keep]),
                    "audio_shapley": mean(self.audio_shapley[keep]), "video_shapley": mean(self.video_shapley[keep]),
                    "audio_share": mean(self.audio_share[keep])}

        out = {"clips": len(self.targets), **summary(np.ones(len(self.targets), dtype=bool))}
        if self.labels is not None:
            counts = class_counts(self.labels, self.targets, self.classes)
            out["per_class"] = {name: {**counts[name], **summary(self.labels == c)}
                                for c, name in enumerate(self.classes)}
        return out


def modality_shares(model: FusionNet, spectrograms: torch.Tensor, frames: torch.Tensor, classes: list[str],
                    labels: np.ndarray | None = None, targets: torch.Tensor | None = None,
                    background: tuple[torch.Tensor, torch.Tensor] | None = None) -> ModalityShares:
    """The four probabilities of each clip's predicted class (or `targets`); `background`:
    (spectrograms, frames) of the reference clips a removed modality is drawn from. Puts the model in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    scores = audio_scores(model)  # f(spectrograms, frames)
    if background is None:
        background = (band_means(model, spectrograms.shape[3]),
                      blank_face(frames).expand(1, -1, frames.shape[2], -1, -1))
    bg_audio, bg_video = (b.to(device) for b in background)
    out: dict[str, list[float]] = {"both": [], "without_audio": [], "without_video": []}
    chosen = []
    with torch.no_grad():
        neither = scores(bg_audio, bg_video).mean(0)  # the same for every clip
        for i in range(len(spectrograms)):
            s, f = spectrograms[i: i + 1].to(device), frames[i: i + 1].to(device)
            p = scores(s, f)[0]
            t = int(targets[i]) if targets is not None else int(p.argmax())
            chosen.append(t)
            out["both"].append(float(p[t]))
            out["without_audio"].append(float(scores(bg_audio, f.expand_as(bg_video)).mean(0)[t]))
            out["without_video"].append(float(scores(s.expand_as(bg_audio), bg_video).mean(0)[t]))
    targets_ = np.array(chosen)
    return ModalityShares(classes=list(classes), labels=None if labels is None else np.asarray(labels),
                          targets=targets_, neither=neither.cpu().numpy()[targets_],
                          **{k: np.array(v) for k, v in out.items()})
