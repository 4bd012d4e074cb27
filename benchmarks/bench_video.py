"""Face frames: the `video` stage against the naive way, same clips, one run.

Naive: for every clip, open its dialogue avi, seek to each of the clip's frames
(`CAP_PROP_POS_FRAMES`) and decode it; then the same speaker-half and face crop.
Ours: `avemo.video.stage.build_video`, which decodes each dialogue once, in order, for all
its clips, in parallel across dialogues. Prints frames per second and the ratio.
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
from avemo.audio.spectrogram import SpectrogramParams
from avemo.audio.stage import VariantConfig, build_variant
from avemo.corpus.iemocap import read_corpus
from avemo.corpus.synth import SynthConfig, synthesize
from avemo.video.face_crop import clip_boxes, crop
from avemo.video.frames import clip_frame_times, frame_indices, speaker_half
from avemo.video.stage import VideoConfig, build_video

MAPPING = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}


def naive(clips: pd.DataFrame, cfg: VideoConfig) -> int:
    done = 0
    for c in clips.itertuples():
        cap = cv2.VideoCapture(c.avi_path)
        fps = cap.get(cv2.CAP_PROP_FPS)
        halves = []
        for index in frame_indices(clip_frame_times(c.utt_start + c.start, c.utt_start + c.end, cfg.n_frames), fps):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = cap.read()
            halves.append(speaker_half(frame, c.markers, c.gender).copy())
        cap.release()
        boxes, _ = clip_boxes(halves, cfg.face)
        np.stack([crop(h, b, cfg.face) for h, b in zip(halves, boxes)])
        done += 1
    return done


def main() -> None:
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize(SynthConfig(sessions=2, dialogues_per_session=2, turns_per_dialogue=20, workers=2), tmp / "synthetic")
        utterances, _ = read_corpus(tmp / "synthetic" / "IEMOCAP_full_release", MAPPING)
        clips, _ = build_variant(utterances, VariantConfig(SegmentPolicy(), None, SpectrogramParams(), workers=2),
                                 tmp / "audio")
        cfg = VideoConfig(workers=int(os.environ.get("BENCH_WORKERS", "0")))
        start = time.perf_counter()
        naive(clips, cfg)
        t_naive = time.perf_counter() - start
        start = time.perf_counter()
        build_video(clips, cfg, tmp / "video")
        t_ours = time.perf_counter() - start
    frames = len(clips) * cfg.n_frames
    print(f"clips: {len(clips)} ({frames} frames) from {clips['dialog'].nunique()} dialogues, cores: {os.cpu_count()}")
    print(f"naive (open + seek per clip):        {frames / t_naive:8.1f} frames/s")
    print(f"avemo video stage (one decode each): {frames / t_ours:8.1f} frames/s")
    print(f"speed-up: {t_naive / t_ours:6.1f}x   (target >= 5x)")


if __name__ == "__main__":
    main()
