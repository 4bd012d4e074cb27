"""A model file that carries what rebuilds its model, as nanoGPT's checkpoints do.

`best.pt` holds the family, the class set and the built architectures (audio and video
configurations, input shapes included) beside the weights, so `load_checkpoint(path)` returns a
ready model without params.yaml, and a served, explained or fine-tuned model is exactly the one
trained. Plain containers only: it loads with `torch.load(weights_only=True)`, which runs no code.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from avemo.models.audio import AudioNet, AudioNetConfig
from avemo.models.fusion import FusionNet
from avemo.models.video import VideoNet, VideoNetConfig, VideoOnly
from avemo.params import FAMILIES


@dataclass(frozen=True)
class ModelSpec:
    family: str  # audio | video | fusion
    classes: tuple[str, ...]
    audio: AudioNetConfig | None = None  # audio and fusion
    video: VideoNetConfig | None = None  # video and fusion

    def build(self) -> nn.Module:
        n = len(self.classes)
        if self.family == "audio":
            return AudioNet(self.audio, n)
        if self.family == "video":
            return VideoOnly(VideoNet(self.video, n))
        if self.family == "fusion":
            return FusionNet(self.audio, self.video, n)
        raise ValueError(f"model family must be one of {FAMILIES}, not {self.family!r}")

    def to_dict(self) -> dict:
        return {"family": self.family, "classes": list(self.classes),
                "audio": self.audio.model_dump() if self.audio else None,
                "video": asdict(self.video) if self.video else None}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(d["family"], tuple(d["classes"]), _config(AudioNetConfig, d.get("audio")),
                   _config(VideoNetConfig, d.get("video")))


def _config(kind: type, d: dict | None):
    """A config from JSON-ish values: lists back to the tuples the frozen configs hold."""
    if d is None:
        return None
    return kind(**{k: _tuples(v) for k, v in d.items()})


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def save_checkpoint(path: Path, model: nn.Module, spec: ModelSpec) -> None:
    """Weights and spec, written atomically (a kill mid-write leaves the previous file whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"spec": spec.to_dict(), "state_dict": model.state_dict()}, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> tuple[ModelSpec, dict]:
    """(spec, state dict) of a model file; a clear error for anything else."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such model file") from None
    except Exception as exc:  # noqa: BLE001 - truncated, foreign or unsafe: never loaded
        raise ValueError(f"{path}: not a readable avemo model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(saved, dict) or "spec" not in saved or "state_dict" not in saved:
        raise ValueError(f"{path}: not an avemo model file (no spec beside the weights)")
    return ModelSpec.from_dict(saved["spec"]), saved["state_dict"]


def load_checkpoint(path: Path) -> tuple[nn.Module, ModelSpec]:
    """The model a file describes, with its weights, in eval mode."""
    spec, state = read_checkpoint(path)
    model = spec.build()
    model.load_state_dict(state)
    return model.eval(), spec
