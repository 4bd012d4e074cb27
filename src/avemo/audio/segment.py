"""Segmentation of utterances into the items a model sees (the study's `full` and `clip3s`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SegmentPolicy:
    """How utterances become items.

    segmentation: 'full' (one item per utterance) or 'clip3s' (consecutive fixed-length clips).
    remainder: what `clip3s` does with a tail shorter than a clip: 'drop' (the study) or 'pad'.
    short: what `clip3s` does with an utterance shorter than one clip: 'pad' (the study,
      with recorded noise) or 'drop'.
    min_remainder: a tail is padded (remainder='pad') only when at least this long.
    """

    segmentation: str = "clip3s"
    clip_seconds: float = 3.0
    remainder: str = "drop"
    short: str = "pad"
    min_remainder: float = 1.0

    def __post_init__(self) -> None:
        if self.segmentation not in ("full", "clip3s"):
            raise ValueError(f"segmentation must be 'full' or 'clip3s', not {self.segmentation!r}")
        if self.remainder not in ("drop", "pad") or self.short not in ("drop", "pad"):
            raise ValueError("audio.remainder and audio.short must be 'drop' or 'pad'")


@dataclass(frozen=True)
class Clip:
    index: int  # position within the utterance
    start: float  # seconds within the utterance
    end: float  # end of the real audio (before padding)
    padded: bool  # filled with noise up to clip_seconds


def plan_clips(duration: float, policy: SegmentPolicy) -> list[Clip]:
    """The clips of one utterance; an empty list means the policy drops it (the caller says why)."""
    if policy.segmentation == "full":
        return [Clip(0, 0.0, duration, False)]
    length = policy.clip_seconds
    if duration < length:
        return [Clip(0, 0.0, duration, True)] if policy.short == "pad" else []
    n_full = int(duration // length + 1e-9)
    clips = [Clip(k, k * length, (k + 1) * length, False) for k in range(n_full)]
    tail = duration - n_full * length
    if policy.remainder == "pad" and tail >= policy.min_remainder:
        clips.append(Clip(n_full, n_full * length, duration, True))
    return clips
