"""`index`: an IEMOCAP_full_release tree -> one row per labelled utterance, and what could not be read.

Malformed label lines, orphan wavs and unreadable wavs become rows of the skipped table with
their reason; utterances in = indexed + skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("corpus", type=Path, help="the IEMOCAP_full_release folder")
    p.add_argument("--out", type=Path, required=True, help="utterances.parquet")
    p.add_argument("--skipped", type=Path, required=True, help="what was skipped, with the reason (CSV)")
    p.add_argument("--counts", type=Path, required=True, help="counts per class, session and speaker (JSON)")


def run(args: argparse.Namespace, params: Params) -> None:
    from avemo.corpus.iemocap import corpus_summary, read_corpus
    from avemo.handover import CorpusSummary
    from avemo.labels import class_names, label_mapping
    from avemo.stages.frame import Frame
    from avemo.stages.show import console, print_counts

    frame = Frame("index", params, [args.corpus])
    mapping = label_mapping(params.labels)
    utterances, skipped = read_corpus(args.corpus, mapping)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    utterances.to_parquet(args.out, index=False)
    frame.write_skipped(args.skipped, skipped, "index", len(utterances) + len(skipped), len(utterances))
    summary = corpus_summary(utterances, class_names(mapping))
    frame.write_counts(args.counts, CorpusSummary.checked(
        {**summary, "skipped": len(skipped), "items_in": len(utterances) + len(skipped)}, args.counts))
    console.print(f"index: {summary['utterances']} utterances kept, {len(skipped)} items skipped "
                  f"(see {args.skipped}); {summary['hours']:.2f} h of audio")
    if len(skipped):
        print_counts("index: skipped, by reason", skipped["reason"].str.split(":").str[0].value_counts().to_dict())
    print_counts(f"index: classes ({params.labels.set})", summary["per_class"])
    print_counts("index: labelled utterances per speaker", summary["per_speaker"])
