"""Which frames a clip needs, and reading them with one sequential decode per dialogue video."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np


def clip_frame_times(window_start: float, window_end: float, n_frames: int) -> np.ndarray:
    """`n_frames` times spread evenly over a clip's window (centres of equal slices)."""
    return window_start + (window_end - window_start) * (np.arange(n_frames) + 0.5) / n_frames


def frame_indices(times: np.ndarray, fps: float) -> np.ndarray:
    """The frame shown at each time, at the file's own frame rate."""
    return np.floor(times * fps + 1e-6).astype(np.int64)


def speaker_half(frame: np.ndarray, markers: str, gender: str) -> np.ndarray:
    """The speaker's half of the split screen: the left half shows the actor wearing the markers."""
    half = frame.shape[1] // 2
    return frame[:, :half] if gender == markers else frame[:, half:]


class VideoError(Exception):
    """A video that cannot be opened or decoded."""


def open_video(path: str) -> tuple[cv2.VideoCapture, float, int]:
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise VideoError("video missing or unreadable")
    fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if not fps or fps <= 0:
        cap.release()
        raise VideoError("video has no frame rate")
    return cap, fps, count


def decode_frames(cap: cv2.VideoCapture, wanted: np.ndarray, seek_after: int = 48) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, BGR frame) for the sorted unique `wanted` indices, in one pass through the file.

    Short gaps are grabbed (decoded, not converted: ~0.1 ms a frame); a gap longer than
    `seek_after` frames is jumped with a seek (~4 ms, exact on these AVIs: tests check it).
    Stops early at the file's end.
    """
    position = 0
    for index in wanted:
        if index - position > seek_after:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            position = int(index)
        while position < index:
            if not cap.grab():
                return
            position += 1
        ok, frame = cap.read()
        if not ok:
            return
        position += 1
        yield int(index), frame
