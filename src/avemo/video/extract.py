"""Face frames for every audio item: N frames of the speaking actor's face, one decode per dialogue video.

Output folder: `clips.parquet` (the audio variant's clip ids, one-to-one and in the same
order; `row` indexes the array) and `frames.npy` (uint8, items x N x H x W x 3, RGB,
memory-mappable). Each dialogue video is decoded once, in order, for all its clips;
dialogues are processed in parallel. Clips whose video is missing, unreadable or too short
keep a blank (zero) slot, `has_video = False`, and a row in the skipped table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from avemo.corpus.iemocap import speaker_side
from avemo.parallel import parallel_map
from avemo.params import Face, Video
from avemo.video.face_crop import cascade, clip_boxes, crop
from avemo.video.frames import (
    VideoError,
    clip_frame_times,
    decode_frames,
    frame_indices,
    key_frames,
    open_video,
    speaker_half,
)

if TYPE_CHECKING:  # pandas costs a cold `avemo predict` ~0.3 s: imported where a table is made
    import pandas as pd

SKIPPED_COLUMNS = ["clip_id", "file", "reason"]


@dataclass
class ClipFrames:
    clip_id: str
    frames: np.ndarray | None  # (n, H, W, 3) uint8 RGB, or None
    face_frames: int = 0  # frames with a detected face (0 with frames: the fallback box)
    first_frame: int = -1
    last_frame: int = -1
    reason: str = ""

    def written(self) -> "ClipFrames":
        """What goes back to the parent once the frames are in the array: everything but them."""
        return replace(self, frames=None)


@dataclass(frozen=True)
class DialogueJob:
    avi_path: str
    clip_ids: tuple[str, ...]
    sides: tuple[str, ...]  # the speaker's half of the frame, per clip
    windows: tuple[tuple[float, float], ...]  # seconds within the dialogue
    rows: tuple[int, ...]  # where each clip's frames go in the array
    cfg: Video


_ARRAY: np.ndarray | None = None


def _init_worker(array_path: str) -> None:
    """Each worker writes frames straight into the memory-mapped array (no pickling back)."""
    global _ARRAY
    _ARRAY = np.load(array_path, mmap_mode="r+")


def extract_and_store(job: DialogueJob) -> list[ClipFrames]:
    """process_dialogue, writing each clip's frames at its row; returns the clips without frames."""
    results = process_dialogue(job)
    for row, r in zip(job.rows, results):
        if r.frames is not None:
            _ARRAY[row] = r.frames
    return [r.written() for r in results]


def process_dialogue(job: DialogueJob) -> list[ClipFrames]:
    """Decode one dialogue video once and cut every clip's face frames from it."""
    cv2.setNumThreads(1)
    try:
        cap, fps, count = open_video(job.avi_path)
    except VideoError as exc:
        return [ClipFrames(c, None, reason=str(exc)) for c in job.clip_ids]
    return cut_clips(job, cap, fps, count)


def cut_clips(job: DialogueJob, cap: cv2.VideoCapture, fps: float, count: int) -> list[ClipFrames]:
    """Every clip's face frames from an opened video (open_video), in one pass; releases it."""
    n = job.cfg.n_frames
    indices = [frame_indices(clip_frame_times(a, b, n), fps) for a, b in job.windows]
    results, needs = {}, defaultdict(list)
    for c, idx in enumerate(indices):
        if count and idx[-1] >= count:
            results[c] = ClipFrames(job.clip_ids[c], None, reason=f"video too short: needs frame {idx[-1]}, has {count}")
            continue
        for k, i in enumerate(idx):
            needs[int(i)].append((c, k))
    buffers: dict[int, list] = {}
    remaining = {c: n for c in range(len(indices)) if c not in results}
    try:
        for index, frame in decode_frames(cap, np.array(sorted(needs)), key_frames(job.avi_path)):
            for c, k in needs[index]:
                half = speaker_half(frame, job.sides[c])
                buffers.setdefault(c, [None] * n)[k] = half  # a view: read() returns a new frame each time
                remaining[c] -= 1
                if remaining[c] == 0:
                    results[c] = _face_clip(job.clip_ids[c], buffers.pop(c), indices[c], job.cfg.face)
    finally:
        cap.release()
    for c, left in remaining.items():
        if left and c not in results:
            results[c] = ClipFrames(job.clip_ids[c], None,
                                    reason=f"video ended before frame {indices[c][-1]} (truncated or corrupt)")
    return [results[c] for c in range(len(indices))]


def _face_clip(clip_id: str, halves: list[np.ndarray], idx: np.ndarray, p: Face) -> ClipFrames:
    boxes, hits = clip_boxes(halves, p)
    frames = np.stack([crop(h, b, p) for h, b in zip(halves, boxes)])
    return ClipFrames(clip_id, frames, hits, int(idx[0]), int(idx[-1]))


def dialogue_jobs(clips: pd.DataFrame, cfg: Video) -> list[DialogueJob]:
    jobs = []
    for avi, part in clips.groupby("avi_path", sort=True):
        windows = tuple(zip(part["utt_start"] + part["start"], part["utt_start"] + part["end"]))
        sides = tuple(speaker_side(g, m) for g, m in zip(part["gender"], part["markers"]))
        jobs.append(DialogueJob(str(avi), tuple(part["clip_id"]), sides, windows, tuple(int(r) for r in part.index), cfg))
    return jobs


def build_video(audio_clips: pd.DataFrame, cfg: Video, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write frames for every audio item; return (video clip table, skipped table)."""
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    p = cfg.face
    audio_clips = audio_clips.reset_index(drop=True)  # the index is the row in the array
    array_path = out_dir / "frames.npy"
    np.lib.format.open_memmap(array_path, mode="w+", dtype=np.uint8,
                              shape=(len(audio_clips), cfg.n_frames, p.height, p.width, 3)).flush()
    row_of = {c: r for r, c in enumerate(audio_clips["clip_id"])}
    table = audio_clips[["clip_id", "utterance_id", "class", "session", "speaker", "dialog", "avi_path"]].copy()
    table["row"] = np.arange(len(table))
    info = {}
    jobs = dialogue_jobs(audio_clips, cfg)
    cascade(p.cascade)  # load the detector once, before the workers are forked
    for results in parallel_map(extract_and_store, jobs, cfg.workers, "video: dialogues", _init_worker,
                                (str(array_path),), ordered=False):
        for r in results:
            info[r.clip_id] = r
    table["has_video"] = [not info[c].reason for c in table["clip_id"]]
    table["face_frames"] = [info[c].face_frames for c in table["clip_id"]]
    table["fallback_box"] = table["has_video"] & (table["face_frames"] == 0)
    table["first_frame"] = [info[c].first_frame for c in table["clip_id"]]
    table["last_frame"] = [info[c].last_frame for c in table["clip_id"]]
    table.to_parquet(out_dir / "clips.parquet", index=False)
    skipped = pd.DataFrame([{"clip_id": c, "file": table.loc[row_of[c], "avi_path"], "reason": r.reason}
                            for c, r in info.items() if r.reason], columns=SKIPPED_COLUMNS)
    return table, skipped


def video_summary(n_clips: int, table: pd.DataFrame, skipped: pd.DataFrame) -> dict:
    """Face-detection counts: clips in, with video, skipped, detected faces and fallback boxes."""
    with_video = int(table["has_video"].sum())
    detected = int((table["face_frames"] > 0).sum())
    return {"clips_in": n_clips, "with_video": with_video, "skipped": len(skipped), "face_detected": detected,
            "fallback_box": int(table["fallback_box"].sum()),
            "detection_rate": round(detected / max(1, with_video), 4)}
