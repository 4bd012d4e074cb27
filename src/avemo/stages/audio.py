"""`audio`: one dataset variant of the study (DS I-IV), spectrogram items of every labelled utterance.

Segmentation (`full` utterances or 3 s clips), optional clean-up, log-mel spectrograms on one
fixed dB scale, streamed into one memory-mappable array; what is skipped (too short, unreadable)
or resampled is reported; a preview sheet per class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import VARIANTS, Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("utterances", type=Path, help="the index stage's utterances.parquet (each utterance's wav)")
    p.add_argument("--variant", choices=VARIANTS, required=True,
                   help="segmentation (full utterances or 3 s clips) and clean-up (raw or clean)")
    p.add_argument("--out", type=Path, required=True, help="the variant's folder")
    p.add_argument("--skipped", type=Path, required=True, help="what was skipped or resampled, with the reason")
    p.add_argument("--counts", type=Path, required=True, help="items per class, skipped, padded (JSON)")
    p.add_argument("--figure", type=Path, required=True, help="a preview sheet (PNG)")


def run(args: argparse.Namespace, params: Params) -> None:
    import numpy as np
    import pandas as pd

    from avemo.audio.preview import spectrogram_sheet
    from avemo.audio.variant import (
        STUDY_NAMES,
        build_variant,
        variant_config,
        variant_summary,
    )
    from avemo.labels import class_set
    from avemo.stages.frame import Frame
    from avemo.stages.show import console, print_counts

    variant = args.variant
    segmentation, cleanup = variant.split("-")
    frame = Frame(f"audio {variant}", params, [args.utterances])
    utterances = pd.read_parquet(args.utterances)
    utterances = utterances[utterances["class"].notna()]
    clips, skipped = build_variant(utterances, variant_config(params.audio, segmentation, cleanup), args.out)
    classes = class_set(params.labels)
    summary = {"study_name": STUDY_NAMES[variant], **variant_summary(len(utterances), clips, skipped, classes)}
    frame.write_skipped(args.skipped, skipped, f"audio {variant}", summary["utterances_in"], summary["utterances_out"],
                        summary["skipped"])
    frame.write_counts(args.counts, summary)
    array = np.load(args.out / "spectrograms.npy", mmap_mode="r")
    spectrogram_sheet(array, clips, classes, args.figure, f"{variant} = {STUDY_NAMES[variant]} (dB, fixed scale)")
    console.print(f"audio {variant} ({STUDY_NAMES[variant]}): {summary['utterances_in']} utterances in = "
                  f"{summary['utterances_out']} kept + {summary['skipped']} skipped (see {args.skipped}); "
                  f"{len(clips)} items of shape {tuple(array.shape[1:])}")
    print_counts(f"audio {variant}: items per class", summary["items_per_class"])
