"""Which frames a clip needs, and reading them with one sequential decode per dialogue video."""

from __future__ import annotations

import os
from collections.abc import Iterator

import av
import cv2
import numpy as np

#: FFmpeg may read local files only, with the AVI, MP4/MOV and Matroska demuxers only: other
#: protocols and formats (an HLS playlist, `concat:`, `http:`) make it open URLs, which a
#: client could use to make a server send requests. PyAV takes these as options; OpenCV reads
#: them from its environment variable at every open, so they are set here, after any the user set.
FFMPEG_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": "avi,mov,matroska"}
_OPENCV_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
os.environ[_OPENCV_OPTIONS] = "|".join(filter(None, [os.environ.get(_OPENCV_OPTIONS),
                                                     *(f"{k};{v}" for k, v in FFMPEG_OPTIONS.items())]))


def container(head: bytes) -> str | None:
    """'avi', 'mov' (MP4/QuickTime) or 'matroska' (also WebM) from a file's first 12 bytes, else None."""
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return None


def clip_frame_times(window_start: float, window_end: float, n_frames: int) -> np.ndarray:
    """`n_frames` times spread evenly over a clip's window (centres of equal slices)."""
    return window_start + (window_end - window_start) * (np.arange(n_frames) + 0.5) / n_frames


def frame_indices(times: np.ndarray, fps: float) -> np.ndarray:
    """The frame shown at each time, at the file's own frame rate."""
    return np.floor(times * fps + 1e-6).astype(np.int64)


def speaker_half(frame: np.ndarray, side: str) -> np.ndarray:
    """The speaker's half of the split screen (corpus.iemocap.speaker_side says which)."""
    half = frame.shape[1] // 2
    return frame[:, :half] if side == "left" else frame[:, half:]


class VideoError(Exception):
    """A video that cannot be opened or decoded."""


def open_video(path: str) -> tuple[cv2.VideoCapture, float, int]:
    """Open with FFmpeg and one decoding thread: the stage already runs one process per core."""
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    if not cap.isOpened():
        raise VideoError("video missing or unreadable")
    fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if not fps or fps <= 0:
        cap.release()
        raise VideoError("video has no frame rate")
    return cap, fps, count


def key_frames(path: str) -> np.ndarray:
    """Frame numbers of the key frames, from the container's index (read, not decoded: ~5 ms).

    In an AVI the index has one entry per frame. A file that lost its index (a truncated AVI
    loses the idx1 at its end) yields only the key frames FFmpeg saw while opening it; an
    unreadable one, none. Fewer key frames only means fewer seeks.
    """
    try:
        with av.open(path, options=FFMPEG_OPTIONS) as opened:
            entries = opened.streams.video[0].index_entries
            return np.flatnonzero([e.is_keyframe for e in entries])
    except Exception:  # PyAV raises FFmpeg's errors, IndexError, UnicodeDecodeError (metadata)... on a bad file
        return np.empty(0, np.int64)


# OpenCV's seek restarts decoding at the last key frame at least this many frames before the target.
SEEK_LEAD = 16


def decode_frames(cap: cv2.VideoCapture, wanted: np.ndarray, keyframes: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, BGR frame) for the sorted unique `wanted` indices, in one pass through the file.

    Frames in between are grabbed (decoded, not converted). A seek restarts decoding at the
    last key frame at least `SEEK_LEAD` frames before its target, so it is taken only when
    that key frame lies more than `SEEK_LEAD` frames past the current position: then it skips
    decoding instead of repeating it (and lands exactly: tests check it). In a DivX file key
    frames can be 300 frames apart, where a blind "seek over long gaps" rule often decodes
    more, not less (benchmarks/bench_seek.py). Stops early at the file's end.
    """
    position = 0
    for index in wanted:
        k = np.searchsorted(keyframes, index - SEEK_LEAD, side="right") - 1
        if k >= 0 and keyframes[k] - position > SEEK_LEAD:
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
