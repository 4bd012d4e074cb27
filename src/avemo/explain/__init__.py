"""Why a prediction: which mel bands, moments, face regions and frames drove a model's answer,
how much each modality of a fusion model contributed, and whether each explanation is faithful.

A library, like `models/` and `training/`: it takes models and model-space tensors and returns
dataclasses with per-clip values, per-class means, deletion checks and a `metrics()` dict of
plain numbers; `figures` draws them. A stage or a command loads the model and the clips, calls

    explain_spectrograms(model, spectrograms, classes, labels)   # audio (or fusion with frames=)
    explain_frames(model, frames, classes, labels, baseline=mean_face(training frames))
    modality_shares(fusion, spectrograms, frames, classes, labels, background=(s, f) of training clips)

and writes `.metrics()` as JSON and `figures.audio_figures(...)` etc. as PNGs. What the maps mean
and what they cannot say: docs/explain.md.
"""

from avemo.explain.audio import AudioExplanation, explain_spectrograms
from avemo.explain.baselines import band_means, mean_face
from avemo.explain.deletion import Deletion
from avemo.explain.modality import ModalityShares, modality_shares
from avemo.explain.video import VideoExplanation, explain_frames

__all__ = ["AudioExplanation", "Deletion", "ModalityShares", "VideoExplanation", "band_means", "explain_frames",
           "explain_spectrograms", "mean_face", "modality_shares"]
