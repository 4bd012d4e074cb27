"""params.yaml `audio` section -> the configuration of one dataset variant."""

from __future__ import annotations

from avemo.audio.cleanup import CleanupParams
from avemo.audio.segment import SegmentPolicy
from avemo.audio.spectrogram import SpectrogramParams
from avemo.audio.stage import VariantConfig

#: The study's names for the four variants.
STUDY_NAMES = {"full-raw": "DS I", "full-clean": "DS II", "clip3s-raw": "DS III", "clip3s-clean": "DS IV"}


def variant_config(audio: dict, segmentation: str, cleanup: str) -> VariantConfig:
    seg = audio["segment"]
    return VariantConfig(
        policy=SegmentPolicy(segmentation=segmentation, **seg),
        cleanup=CleanupParams(**audio["cleanup"]["clean"]) if cleanup == "clean" else None,
        spectrogram=SpectrogramParams(**audio["spectrogram"]),
        min_seconds=audio["min_seconds"],
        workers=audio["workers"],
    )
