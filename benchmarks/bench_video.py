"""Face frames: the `video` stage against the naive way, same clips, one run per corpus.

Naive: for every clip, open its dialogue avi, seek to each of the clip's frames
(`CAP_PROP_POS_FRAMES`) and decode it; then the same speaker-half and face crop.
Ours: `avemo.video.extract.build_video`, which decodes each dialogue once, in order, for all
its clips, in parallel across dialogues. Prints frames per second and the ratio.

What a seek costs depends on how far apart the key frames are, so the benchmark runs on two
synthetic corpora that differ only in that: key frames every 300 frames (the default corpus,
as DivX and Xvid encode by default) and every 12 (what OpenCV's own writer makes). With
`BENCH_CORPUS=/path/to/IEMOCAP_full_release` it runs on the first `BENCH_DIALOGUES` (4)
dialogues of that corpus instead, and prints its key-frame spacing.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from avemo.audio.segment import SegmentPolicy
from avemo.audio.variant import VariantConfig, build_variant
from avemo.corpus.iemocap import read_corpus, speaker_side
from avemo.corpus.synth import synthesize
from avemo.params import STUDY_SPECTROGRAM, Synth, Video
from avemo.video.extract import build_video
from avemo.video.face_crop import clip_boxes, crop
from avemo.video.frames import clip_frame_times, frame_indices, key_frames, speaker_half

MAPPING = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}
KEYFRAME_INTERVALS = {"DivX key frames (every 300 frames, the default corpus)": 300,
                      "OpenCV-writer key frames (every 12 frames)": 12}


def naive(clips: pd.DataFrame, cfg: Video) -> int:
    done = 0
    for c in clips.itertuples():
        cap = cv2.VideoCapture(c.avi_path)
        fps = cap.get(cv2.CAP_PROP_FPS)
        halves = []
        for index in frame_indices(clip_frame_times(c.utt_start + c.start, c.utt_start + c.end, cfg.n_frames), fps):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = cap.read()
            halves.append(speaker_half(frame, speaker_side(c.gender, c.markers)).copy())
        cap.release()
        boxes, _ = clip_boxes(halves, cfg.face)
        np.stack([crop(h, b, cfg.face) for h, b in zip(halves, boxes)])
        done += 1
    return done


def audio_clips(root: Path, tmp: Path, dialogues: int | None = None) -> pd.DataFrame:
    """The `clip3s-raw` items of a corpus (of its first `dialogues` dialogues, if given)."""
    utterances, _ = read_corpus(root, MAPPING)
    if dialogues:
        utterances = utterances[utterances["dialog"].isin(sorted(utterances["dialog"].unique())[:dialogues])]
    clips, _ = build_variant(utterances, VariantConfig(SegmentPolicy(), None, STUDY_SPECTROGRAM, workers=2),
                             tmp / "audio")
    return clips


def compare(name: str, clips: pd.DataFrame, out: Path) -> None:
    cfg = Video(workers=int(os.environ.get("BENCH_WORKERS", "0")))
    spacing = np.concatenate([np.diff(key_frames(p)) for p in clips["avi_path"].unique()])
    start = time.perf_counter()
    naive(clips, cfg)
    t_naive = time.perf_counter() - start
    start = time.perf_counter()
    build_video(clips, cfg, out)
    t_ours = time.perf_counter() - start
    frames = len(clips) * cfg.n_frames
    print(f"-- {name}")
    print(f"clips: {len(clips)} ({frames} frames) from {clips['dialog'].nunique()} dialogues, cores: {os.cpu_count()}; "
          f"key frames every {np.median(spacing) if len(spacing) else float('nan'):.0f} frames (median)")
    print(f"naive (open + seek per clip):        {frames / t_naive:8.1f} frames/s")
    print(f"avemo video stage (one decode each): {frames / t_ours:8.1f} frames/s")
    print(f"speed-up: {t_naive / t_ours:6.1f}x   (target >= 5x)")


def main() -> None:
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if os.environ.get("BENCH_CORPUS"):
            clips = audio_clips(Path(os.environ["BENCH_CORPUS"]), tmp, int(os.environ.get("BENCH_DIALOGUES", "4")))
            compare(os.environ["BENCH_CORPUS"], clips, tmp / "video")
            return
        for name, interval in KEYFRAME_INTERVALS.items():
            corpus = tmp / f"synthetic-{interval}"
            synthesize(Synth(sessions=2, dialogues_per_session=2, turns_per_dialogue=20,
                                   keyframe_interval=interval, workers=2), corpus)
            clips = audio_clips(corpus / "IEMOCAP_full_release", corpus)
            compare(name, clips, corpus / "video")


if __name__ == "__main__":
    main()
