"""The video stage's seek rule against the two plain ones, on gaps like IEMOCAP's.

In the real corpus about half the turns fall outside the four classes, so the frames a
dialogue needs come in runs (a 3 s clip: 90 frames, 20 of them wanted) separated by gaps of a
few seconds. Three ways through them: decode straight through (grab every frame between), seek
over every gap longer than 48 frames (the stage's rule until it read key frames), and the
stage's rule (`decode_frames`: seek only when a key frame lies beyond the frames it would
save). Each on files with key frames every 300 frames (DivX's default) and every 12.
Prints milliseconds per pass, best of 3.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from avemo.corpus.synth import write_divx_avi
from avemo.params import Synth
from avemo.video.frames import decode_frames, key_frames, open_video

FRAMES = 1800  # one minute at 29.97 fps


def moving_picture_avi(path: Path, keyframe_interval: int) -> str:
    """A minute of 720 x 480 video: a textured still with a moving disc (cheap P-frames, as in a dialogue)."""
    rng = np.random.default_rng(0)
    still = cv2.GaussianBlur(rng.integers(0, 255, (480, 720, 3), np.uint8), (9, 9), 0)

    def picture(k: int) -> np.ndarray:
        frame = still.copy()
        cv2.circle(frame, (100 + (3 * k) % 520, 240), 60, (0, 0, 255), -1)
        return frame

    write_divx_avi(path, map(picture, range(FRAMES)), Synth(keyframe_interval=keyframe_interval))
    return str(path)


def wanted_frames(gap_seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Runs of 20 frames spread over 90, separated by gaps of gap_seconds +/- 50 %."""
    wanted, position = [], 0
    while position + 90 < FRAMES:
        wanted.extend(range(position, position + 90, 90 // 20)[:20])
        position += 90 + int(rng.uniform(0.5, 1.5) * gap_seconds * 29.97)
    return np.array(wanted)


def seek_over_long_gaps(cap: cv2.VideoCapture, wanted: np.ndarray, seek_after: int = 48):
    position = 0
    for index in wanted:
        if index - position > seek_after:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            position = int(index)
        while position < index:
            cap.grab()
            position += 1
        yield int(index), cap.read()[1]
        position += 1


def best_ms(pass_through, avi: str, wanted: np.ndarray) -> float:
    times = []
    for _ in range(3):
        cap = open_video(avi)[0]  # as the stage opens it
        start = time.perf_counter()
        for _ in pass_through(cap, wanted):
            pass
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main() -> None:
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for interval in (300, 12):
            avi = moving_picture_avi(Path(tmp) / f"k{interval}.avi", interval)
            keys = key_frames(avi)
            ways = {"straight through": lambda cap, w: seek_over_long_gaps(cap, w, FRAMES),
                    "seek over gaps > 48": seek_over_long_gaps,
                    "stage (key frames)": lambda cap, w: decode_frames(cap, w, keys)}
            print(f"-- key frames every {interval} frames; ms per pass over one minute of video (best of 3)")
            print(f"{'gap':>6} " + " ".join(f"{name:>20}" for name in ways))
            for gap in (2.0, 5.0, 8.0):
                wanted = wanted_frames(gap, np.random.default_rng(0))
                print(f"{gap:5.0f}s " + " ".join(f"{best_ms(way, avi, wanted):20.0f}" for way in ways.values()))


if __name__ == "__main__":
    main()
