"""`video`: for every item of an audio variant, 20 frames of the speaking actor's face.

Each dialogue video is decoded once, in order; the speaker's half of the split screen is cropped
to the face OpenCV's Haar cascade finds (a fixed box where none is found, counted). Clips whose
video is missing or cut short keep a blank slot and a row in the skipped table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", type=Path, help="an audio variant folder (its clips.parquet gives the clips)")
    p.add_argument("--out", type=Path, required=True, help="folder for the face frames of each clip")
    p.add_argument("--skipped", type=Path, required=True, help="clips without usable video, with the reason")
    p.add_argument("--counts", type=Path, required=True, help="face-detection counts (JSON)")
    p.add_argument("--figures", type=Path, required=True, help="folder for a contact sheet per class")


def run(args: argparse.Namespace, params: Params) -> None:
    import numpy as np
    import pandas as pd

    from avemo.labels import class_set
    from avemo.stages.frame import Frame
    from avemo.stages.show import console, print_counts
    from avemo.video.extract import build_video, video_summary
    from avemo.video.preview import contact_sheets

    frame = Frame(f"video@{args.out.name}", params, [args.audio / "clips.parquet"])
    audio_clips = pd.read_parquet(args.audio / "clips.parquet")
    table, skipped = build_video(audio_clips, params.video, args.out)
    summary = video_summary(len(audio_clips), table, skipped)
    frame.write_skipped(args.skipped, skipped, "video", summary["clips_in"], summary["with_video"])
    frame.write_counts(args.counts, summary)
    frames = np.load(args.out / "frames.npy", mmap_mode="r")
    contact_sheets(frames, table, class_set(params.labels), args.figures)
    console.print(f"video {args.out.name}: {summary['clips_in']} clips in = {summary['with_video']} with video + "
                  f"{summary['skipped']} skipped (see {args.skipped}); frames {tuple(frames.shape[1:])}")
    print_counts(f"video {args.out.name}: faces", {k: summary[k] for k in ("face_detected", "fallback_box", "skipped")})
