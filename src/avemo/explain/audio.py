"""Why an audio model (or a fusion model's audio side) gave its answer: which mel bands and which
moments of the spectrogram carried it, by occlusion and by integrated gradients, each checked
by its deletion curve; and the study's crop question, how much of a prediction the top
(highest-frequency) bands carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from avemo.explain.attribution import integrated_gradients, occlusion
from avemo.explain.baselines import band_means
from avemo.explain.deletion import Deletion, deletion_checks
from avemo.explain.outputs import audio_scores, predicted_classes
from avemo.explain.summary import class_counts, class_means, mean, number, ranked
from avemo.explain.units import band_mask, moment_mask

METHODS = ("occlusion", "integrated_gradients")
UNITS = ("band", "moment")


@dataclass(frozen=True)
class AudioExplanation:
    """Per-clip importances (in probability of the explained class), their deletion checks, and the crop answer."""

    classes: list[str]
    labels: np.ndarray | None  # (clips,) true class index, where known
    targets: np.ndarray  # (clips,) the class explained: the predicted one unless given
    probabilities: np.ndarray  # (clips,) p(target) of the intact clip
    bands: dict[str, np.ndarray]  # method -> (clips, bands): 0 = the lowest band
    moments: dict[str, np.ndarray]  # method -> (clips, moments): `window` frames each
    window: int
    n_frames: int  # frames per clip (the last moment may be shorter than `window`)
    top_fraction: float  # the crop question's share of the (highest) bands
    top_band_drop: np.ndarray  # (clips,) p(target) lost when all top bands are at the baseline at once
    at_baseline: np.ndarray  # (clips, classes): the model's probabilities with every unit removed
    deletions: dict[tuple[str, str], Deletion]  # (method, unit) -> its deletion check

    def faithful(self, method: str, unit: str) -> bool:
        """Whether `method`'s ranking of `unit`s passed the deletion check (only then draw it)."""
        return self.deletions[(method, unit)].passed

    def top_band_share(self, method: str) -> np.ndarray:
        """(clips,) share of each clip's total absolute band importance carried by the top bands."""
        return top_share(self.bands[method], self.top_fraction)

    def class_bands(self, method: str) -> np.ndarray:
        """(classes, bands): mean band importance over the clips of each true class."""
        return class_means(self.bands[method], self.labels, len(self.classes))

    def class_moments(self, method: str) -> np.ndarray:
        """(classes, moments): mean moment importance over the clips of each true class."""
        return class_means(self.moments[method], self.labels, len(self.classes))

    def moment_edges(self) -> np.ndarray:
        """(moments + 1,) the first frame of each moment, and the end of the clip."""
        n = self.moments[next(iter(self.moments))].shape[1]
        return np.minimum(self.window * np.arange(n + 1), self.n_frames)

    def metrics(self) -> dict:
        """Plain numbers for a metrics file: the class probabilities at the baseline (a baseline the
        model reads as a class explains little about that class), faithfulness per method and unit,
        the crop answer, and per class (with labels) the crop answer and the five most important
        bands and moments."""
        out = {"clips": len(self.targets), "window_frames": self.window,
               "at_baseline": dict(zip(self.classes, map(float, self.at_baseline.mean(axis=0)))),
               "faithfulness": {f"{m}/{u}": d.summary() for (m, u), d in self.deletions.items()},
               "top_bands": {"fraction": self.top_fraction, "drop": mean(self.top_band_drop),
                             "share": {m: mean(self.top_band_share(m)) for m in self.bands}}}
        if self.labels is None:
            return out
        n = len(self.classes)
        drop = class_means(self.top_band_drop, self.labels, n)
        share = {m: class_means(self.top_band_share(m), self.labels, n) for m in self.bands}
        bands = {m: self.class_bands(m) for m in self.bands}
        moments = {m: self.class_moments(m) for m in self.moments}
        counts = class_counts(self.labels, self.targets, self.classes)
        out["per_class"] = {name: {**counts[name], "top_band_drop": number(drop[c]),
                                   "top_band_share": {m: number(v[c]) for m, v in share.items()},
                                   "most_important_bands": {m: ranked(v[c]) for m, v in bands.items()},
                                   "most_important_moments": {m: ranked(v[c]) for m, v in moments.items()}}
                            for c, name in enumerate(self.classes)}
        return out


def explain_spectrograms(model: nn.Module, spectrograms: torch.Tensor, classes: list[str],
                         labels: np.ndarray | None = None, targets: torch.Tensor | None = None,
                         frames: torch.Tensor | None = None, baseline: torch.Tensor | None = None,
                         window: int = 10, top_fraction: float = 0.4, steps: int = 32, repeats: int = 4,
                         seed: int = 0, batch: int = 64) -> AudioExplanation:
    """Explain each spectrogram (N, 1, bands, frames, scaled as `model_input` does) for its predicted
    class (or `targets`). A fusion model needs the clips' `frames`, held fixed. `baseline`
    (1, 1, bands, frames): what a removed band or moment becomes (default `baselines.band_means`).
    Puts the model in eval mode. `steps`: integration steps; `repeats`: random orders per clip in
    the deletion check."""
    model.eval()
    device = next(model.parameters()).device
    x = spectrograms.to(device)
    context = (frames.to(device),) if frames is not None else ()
    scores = audio_scores(model)
    n_bands, n_frames = x.shape[2:]
    baseline = (baseline if baseline is not None else band_means(model, n_frames)).to(device)
    masks = {"band": band_mask(n_bands, n_frames), "moment": moment_mask(n_bands, n_frames, window)}
    target = (targets.to(device) if targets is not None else predicted_classes(scores, x, context, batch))

    importance = {(m, u): [] for m in METHODS for u in UNITS}
    probabilities, top_drop, at_baseline = [], [], []
    top = torch.zeros(1, 1, n_bands, 1, dtype=torch.bool, device=device)
    top[:, :, top_bands(n_bands, top_fraction)] = True
    for a in range(0, len(x), batch):
        xs, ts, cs = x[a: a + batch], target[a: a + batch], tuple(c[a: a + batch] for c in context)
        for unit, mask in masks.items():
            importance[("occlusion", unit)].append(occlusion(scores, xs, mask, baseline, ts, cs, batch))
        for unit, values in integrated_gradients(scores, xs, masks, baseline, ts, cs, steps, batch).items():
            importance[("integrated_gradients", unit)].append(values)
        with torch.no_grad():
            p = scores(xs, *cs).gather(1, ts[:, None])[:, 0]
            probabilities.append(p)
            top_drop.append(p - scores(torch.where(top, baseline, xs), *cs).gather(1, ts[:, None])[:, 0])
            at_baseline.append(scores(baseline.expand_as(xs), *cs))
    importance = {key: torch.cat(v).cpu().numpy() for key, v in importance.items()}

    deletions = {}
    for u in UNITS:
        deletions.update(deletion_checks(u, {m: importance[(m, u)] for m in METHODS}, scores, x, masks[u], baseline,
                                         target, context, repeats, seed, batch))
    return AudioExplanation(
        classes=list(classes), labels=None if labels is None else np.asarray(labels),
        targets=target.cpu().numpy(), probabilities=torch.cat(probabilities).cpu().numpy(),
        bands={m: importance[(m, "band")] for m in METHODS}, moments={m: importance[(m, "moment")] for m in METHODS},
        window=window, n_frames=n_frames, top_fraction=top_fraction, top_band_drop=torch.cat(top_drop).cpu().numpy(),
        at_baseline=torch.cat(at_baseline).cpu().numpy(), deletions=deletions)


def top_bands(n_bands: int, fraction: float) -> slice:
    """The highest `fraction` of the bands (the top of the spectrogram image, which the study cropped)."""
    if not 0 < fraction < 1:
        raise ValueError(f"the top-band fraction must be in (0, 1), not {fraction}")
    return slice(n_bands - max(1, round(n_bands * fraction)), n_bands)


def top_share(importance: np.ndarray, fraction: float) -> np.ndarray:
    """(clips,) share of the absolute importance (clips, bands) in the top bands; NaN where all is zero."""
    magnitude = np.abs(importance)
    total = magnitude.sum(axis=1)
    top = magnitude[:, top_bands(importance.shape[1], fraction)].sum(axis=1)
    return np.where(total > 0, top / np.where(total > 0, total, 1), np.nan)
