"""`synth`: the embedded default corpus, a small synthetic IEMOCAP_full_release (docs/corpus.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="folder for IEMOCAP_full_release/ and manifest.parquet")


def run(args: argparse.Namespace, params: Params) -> None:
    from avemo.corpus.synth import synthesize
    from avemo.stages.show import console, print_counts

    manifest = synthesize(params.synth, args.out)
    console.print(f"synth: wrote {len(manifest)} utterances in {manifest['dialog'].nunique()} dialogues "
                  f"({manifest.eval('end - start').sum() / 60:.1f} min of speech) to {args.out}")
    print_counts("synth: labels", manifest["label"].value_counts().to_dict())
