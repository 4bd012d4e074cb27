"""What is explained: a model's class scores as a function of one modality's input.

Occlusion, integrated gradients and the deletion curves explain the class **probability**
(softmax), so that every importance is a change of probability and sums and means over clips
are in one unit. Grad-CAM weights the last convolution's maps by the gradient of the class
**logit**, as the method was defined (the softmax would mix in the other classes' scores).
A fusion model is explained one modality at a time, the other modality held fixed: it is
passed to Captum as an additional forward argument, which Captum repeats for every perturbed
copy of the explained input.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from avemo.models.audio import AudioNet
from avemo.models.fusion import FusionNet
from avemo.models.video import VideoNet, VideoOnly

Scores = Callable[..., torch.Tensor]


def audio_branch(model: nn.Module) -> AudioNet:
    """The network that reads the spectrogram (its band statistics define the audio baseline)."""
    if isinstance(model, AudioNet):
        return model
    if isinstance(model, FusionNet):
        return model.audio
    raise TypeError(f"no audio branch in a {type(model).__name__}")


def video_branch(model: nn.Module) -> VideoNet:
    """The 3-D CNN that reads the frames (its last convolution is Grad-CAM's layer)."""
    if isinstance(model, VideoNet):
        return model
    if isinstance(model, VideoOnly):
        return model.net
    if isinstance(model, FusionNet):
        return model.video
    raise TypeError(f"no video branch in a {type(model).__name__}")


def audio_scores(model: nn.Module, probabilities: bool = True) -> Scores:
    """f(spectrograms) for an AudioNet, f(spectrograms, frames) for a FusionNet."""
    out = _softmax if probabilities else _identity
    if isinstance(model, FusionNet):
        return lambda spectrograms, frames: out(model(spectrograms, frames))
    net = audio_branch(model)
    return lambda spectrograms: out(net(spectrograms))


def video_scores(model: nn.Module, probabilities: bool = True) -> Scores:
    """f(frames) for a VideoNet or VideoOnly, f(frames, spectrograms) for a FusionNet."""
    out = _softmax if probabilities else _identity
    if isinstance(model, FusionNet):
        return lambda frames, spectrograms: out(model(spectrograms, frames))
    net = video_branch(model)
    return lambda frames: out(net(frames))


def predicted_classes(scores: Scores, x: torch.Tensor, context: tuple[torch.Tensor, ...], batch: int) -> torch.Tensor:
    """The class each input is given (argmax of its scores), in batches."""
    with torch.no_grad():
        return torch.cat([scores(x[a: a + batch], *(c[a: a + batch] for c in context)).argmax(1)
                          for a in range(0, len(x), batch)])


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.float(), dim=1)


def _identity(logits: torch.Tensor) -> torch.Tensor:
    return logits.float()
