"""`avemo <verb>`: one verb per DVC stage. Paths come from dvc.yaml, knobs from params.yaml."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from avemo.params import load_params

console = Console()


def print_counts(title: str, counts: dict[str, int | float]) -> None:
    table = Table(title=title)
    table.add_column("")
    table.add_column("count", justify="right")
    for key, value in counts.items():
        table.add_row(str(key), str(value))
    console.print(table)


def cmd_synth(args: argparse.Namespace) -> None:
    from avemo.corpus.synth import SynthConfig, synthesize

    cfg = SynthConfig.from_params(load_params(args.params)["synth"])
    manifest = synthesize(cfg, args.out)
    console.print(f"synth: wrote {len(manifest)} utterances in {manifest['dialog'].nunique()} dialogues "
                  f"({manifest.eval('end - start').sum() / 60:.1f} min of speech) to {args.out}")
    print_counts("synth: labels", manifest["label"].value_counts().to_dict())


def cmd_index(args: argparse.Namespace) -> None:
    from avemo.corpus.index import index_corpus

    params = load_params(args.params)
    summary, skipped = index_corpus(args.corpus, params["labels"], args.out, args.skipped, args.metrics)
    console.print(f"index: {summary['utterances']} utterances kept, {len(skipped)} items skipped "
                  f"(see {args.skipped}); {summary['hours']:.2f} h of audio")
    if len(skipped):
        print_counts("index: skipped, by reason", skipped["reason"].str.split(":").str[0].value_counts().to_dict())
    print_counts(f"index: classes ({params['labels']['set']})", summary["per_class"])
    print_counts("index: labelled utterances per speaker", summary["per_speaker"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avemo", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("synth", help="generate the synthetic IEMOCAP-layout corpus")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_synth)

    p = verbs.add_parser("index", help="read an IEMOCAP_full_release tree into utterances.parquet")
    p.add_argument("corpus", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--skipped", type=Path, required=True)
    p.add_argument("--metrics", type=Path, required=True)
    p.set_defaults(func=cmd_index)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[bold red]avemo {args.verb}: {exc}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
