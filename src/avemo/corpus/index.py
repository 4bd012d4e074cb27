"""The `index` stage: corpus tree -> utterances.parquet, skipped table, corpus metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from avemo.corpus.iemocap import class_names, corpus_summary, read_corpus
from avemo.reports import write_json, write_table


def label_mapping(labels: dict) -> dict[str, str]:
    """The raw-label -> class mapping chosen by `labels.set` in params.yaml."""
    name = labels["set"]
    if name not in labels["sets"]:
        raise ValueError(f"labels.set={name!r} is not one of {sorted(labels['sets'])}")
    return dict(labels["sets"][name])


def class_set(labels: dict) -> list[str]:
    """The class names of the chosen label set, in class-index order."""
    return class_names(label_mapping(labels))


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
