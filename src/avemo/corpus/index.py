"""The `index` stage: corpus tree -> utterances.parquet, skipped table, corpus metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from avemo.corpus.iemocap import corpus_summary, read_corpus
from avemo.labels import class_names, label_mapping
from avemo.reports import write_json, write_table


def index_corpus(corpus: Path, labels: dict, out: Path, skipped_path: Path, metrics_path: Path) -> tuple[dict, pd.DataFrame]:
    mapping = label_mapping(labels)
    utterances, skipped = read_corpus(corpus, mapping)
    out.parent.mkdir(parents=True, exist_ok=True)
    utterances.to_parquet(out, index=False)
    write_table(skipped_path, skipped)
    summary = corpus_summary(utterances, class_names(mapping))
    summary["skipped"] = int(len(skipped))
    summary["items_in"] = summary["utterances"] + summary["skipped"]
    write_json(metrics_path, summary)
    return summary, skipped
