"""Why a video model (or a fusion model's video side) gave its answer: which face regions and
which of the frames carried it, by Grad-CAM on the last convolution and by occlusion, each
checked by its deletion curve.

Grad-CAM maps are normalised per clip to sum to one (their scale has no meaning from one clip to
the next), so a class mean is the average share of each region and frame; occlusion values are
drops of the class probability, as for audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from avemo.explain.attribution import occlusion
from avemo.explain.baselines import blank_face
from avemo.explain.deletion import Deletion, deletion_checks
from avemo.explain.gradcam import grad_cam
from avemo.explain.outputs import predicted_classes, video_branch, video_scores
from avemo.explain.summary import class_counts, class_means, ranked
from avemo.explain.units import frame_mask, region_mask, unit_means

METHODS = ("grad_cam", "occlusion")
UNITS = ("frame", "region")


@dataclass(frozen=True)
class VideoExplanation:
    """Per-clip frame and region importances, the clips' mean faces to draw them on, and the deletion checks."""

    classes: list[str]
    labels: np.ndarray | None  # (clips,) true class index, where known
    targets: np.ndarray  # (clips,) the class explained: the predicted one unless given
    probabilities: np.ndarray  # (clips,) p(target) of the intact clip
    frames: dict[str, np.ndarray]  # method -> (clips, frames)
    regions: dict[str, np.ndarray]  # method -> (clips, height, width): importance over the face
    grid: tuple[int, int]  # the (rows, columns) of face regions that occlusion and the deletion check use
    faces: np.ndarray  # (clips, 3, height, width): each clip's frames averaged over time, model space
    at_baseline: np.ndarray  # (clips, classes): the model's probabilities with every unit removed
    deletions: dict[tuple[str, str], Deletion]

    def faithful(self, method: str, unit: str) -> bool:
        """Whether `method`'s ranking of `unit`s passed the deletion check (only then draw it)."""
        return self.deletions[(method, unit)].passed

    def class_frames(self, method: str) -> np.ndarray:
        """(classes, frames): mean frame importance over the clips of each true class."""
        return class_means(self.frames[method], self.labels, len(self.classes))

    def class_regions(self, method: str) -> np.ndarray:
        """(classes, height, width): mean region map over the clips of each true class."""
        return class_means(self.regions[method], self.labels, len(self.classes))

    def class_cells(self, method: str) -> np.ndarray:
        """(classes, cells): mean importance of each region of the grid (numbered row by row)."""
        return self.cells(self.class_regions(method))

    def cells(self, regions: np.ndarray) -> np.ndarray:
        """(maps, cells): the mean of each (H, W) map over each region of the grid (numbered row by row)."""
        height, width = regions.shape[1:]
        cells = region_mask(1, height, width, self.grid)[0, 0, 0].numpy().ravel()
        return np.stack([np.bincount(cells, r.ravel()) / np.bincount(cells) for r in regions])

    def class_faces(self) -> np.ndarray:
        """(classes, 3, height, width): the mean face of each true class, model space."""
        return class_means(self.faces, self.labels, len(self.classes))

    def metrics(self) -> dict:
        """The class probabilities at the baseline, faithfulness per method and unit; per class (with
        labels) the five most important frames and regions (grid cells numbered row by row)."""
        out = {"clips": len(self.targets), "region_grid": list(self.grid),
               "at_baseline": dict(zip(self.classes, map(float, self.at_baseline.mean(axis=0)))),
               "faithfulness": {f"{m}/{u}": d.summary() for (m, u), d in self.deletions.items()}}
        if self.labels is not None:
            frames = {m: self.class_frames(m) for m in self.frames}
            cells = {m: self.class_cells(m) for m in self.regions}
            counts = class_counts(self.labels, self.targets, self.classes)
            out["per_class"] = {name: {**counts[name],
                                       "most_important_frames": {m: ranked(v[c]) for m, v in frames.items()},
                                       "most_important_regions": {m: ranked(v[c]) for m, v in cells.items()}}
                                for c, name in enumerate(self.classes)}
        return out


def explain_frames(model: nn.Module, frames: torch.Tensor, classes: list[str], labels: np.ndarray | None = None,
                   targets: torch.Tensor | None = None, spectrograms: torch.Tensor | None = None,
                   baseline: torch.Tensor | None = None, grid: tuple[int, int] = (3, 5), repeats: int = 4,
                   seed: int = 0, batch: int = 16) -> VideoExplanation:
    """Explain each frame stack (N, 3, T, H, W, float: scaled to model space by `models.video.scaled`)
    for its predicted class (or `targets`). A fusion model needs the clips' `spectrograms`, held
    fixed. `baseline` (1, 3, 1, H, W): what a removed frame or region becomes (`baselines.mean_face`
    of the training clips; default the model-space zero). Puts the model in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    x = frames.to(device)
    context = (spectrograms.to(device),) if spectrograms is not None else ()
    baseline = (baseline if baseline is not None else blank_face(x)).to(device)
    scores, logits, net = video_scores(model), video_scores(model, probabilities=False), video_branch(model)
    n_frames, height, width = x.shape[2:]
    masks = {"frame": frame_mask(n_frames, height, width), "region": region_mask(n_frames, height, width, grid)}
    target = targets.to(device) if targets is not None else predicted_classes(scores, x, context, batch)

    cams, importance, probabilities, at_baseline = [], {(m, u): [] for m in METHODS for u in UNITS}, [], []
    for a in range(0, len(x), batch):
        xs, ts, cs = x[a: a + batch], target[a: a + batch], tuple(c[a: a + batch] for c in context)
        cam = grad_cam(logits, net, xs, ts, cs)
        cam = cam / cam.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)  # a share of the clip's map
        cams.append(cam)
        importance[("grad_cam", "frame")].append(cam.sum(dim=(2, 3)))
        importance[("grad_cam", "region")].append(unit_means(cam[:, None], masks["region"]))
        for unit, mask in masks.items():
            importance[("occlusion", unit)].append(occlusion(scores, xs, mask, baseline, ts, cs, batch))
        with torch.no_grad():
            probabilities.append(scores(xs, *cs).gather(1, ts[:, None])[:, 0])
            at_baseline.append(scores(baseline.expand_as(xs), *cs))
    importance = {key: torch.cat(v).cpu().numpy() for key, v in importance.items()}
    cells = masks["region"][0, 0, 0].numpy()  # (H, W): each pixel's region

    deletions = {}
    for u in UNITS:
        deletions.update(deletion_checks(u, {m: importance[(m, u)] for m in METHODS}, scores, x, masks[u], baseline,
                                         target, context, repeats, seed, batch))
    return VideoExplanation(
        classes=list(classes), labels=None if labels is None else np.asarray(labels),
        targets=target.cpu().numpy(), probabilities=torch.cat(probabilities).cpu().numpy(),
        frames={m: importance[(m, "frame")] for m in METHODS},
        regions={"grad_cam": torch.cat(cams).sum(dim=1).cpu().numpy(),
                 "occlusion": importance[("occlusion", "region")][:, cells]},
        grid=grid, faces=x.mean(dim=2).cpu().numpy(), at_baseline=torch.cat(at_baseline).cpu().numpy(),
        deletions=deletions)
