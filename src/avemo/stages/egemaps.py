"""`egemaps`: openSMILE's eGeMAPSv02 functionals (88) of every item of an audio variant, the field's reference features.

One Parquet table (`clip_id` + 88 float32 columns) beside the variant's spectrograms, for the
eGeMAPS references (`baseline --reference egemaps...`); items whose wav or window openSMILE
cannot describe are in the skipped table with the reason (in = out + skipped, or the stage fails).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", type=Path, help="an audio variant folder (its clips.parquet gives the items)")
    p.add_argument("--utterances", type=Path, required=True, help="utterances.parquet (the wav of each item)")
    p.add_argument("--out", type=Path, required=True, help="folder for features.parquet")
    p.add_argument("--skipped", type=Path, required=True, help="items without features, with the reason")
    p.add_argument("--counts", type=Path, required=True, help="items in, written, skipped, per class (JSON)")


def run(args: argparse.Namespace, params: Params) -> None:
    import pandas as pd

    from avemo.egemaps import egemaps_summary, egemaps_table
    from avemo.labels import class_set
    from avemo.stages.frame import Frame
    from avemo.stages.show import console, print_counts

    frame = Frame(f"egemaps@{args.audio.name}", params, [args.audio / "clips.parquet", args.utterances])
    clips = pd.read_parquet(args.audio / "clips.parquet")
    table, skipped = egemaps_table(clips, pd.read_parquet(args.utterances), params.audio.workers)
    summary = egemaps_summary(clips, table, skipped, class_set(params.labels))
    frame.write_skipped(args.skipped, skipped, f"egemaps {args.audio.name}", summary["clips_in"],
                        summary["clips_out"])
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(args.out / "features.parquet", index=False)
    frame.write_counts(args.counts, summary)
    console.print(f"egemaps {args.audio.name}: {summary['clips_in']} items in = {summary['clips_out']} with "
                  f"{summary['features']} {summary['feature_set']} + {summary['skipped']} skipped "
                  f"(see {args.skipped}); openSMILE {summary['opensmile']}")
    print_counts(f"egemaps {args.audio.name}: items per class", summary["items_per_class"])
