"""`avemo promote`: move a registered model's `champion` alias to its challenger, behind a gate.

Both versions answer the held-out test utterances through the serving pyfunc; the challenger is
promoted only if its paired gain has a 95 % interval above `--min-delta`. `--dry-run` decides and
changes nothing; `--rollback` moves `champion` back to the version it replaced; `--compact` registers
the search's compact pick (the smallest model the interval rule cannot tell from the best, trained over
the seeds by a compact stage) and points the `compact` alias at it. Every decision, with its interval,
goes to the version's tags and the audit trail.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, choices=["avemo-audio", "avemo-fusion"],
                   help="the registered model whose `champion` alias to move (or audit)")
    p.add_argument("--metric", default="ua", choices=["ua", "wa", "f1"],
                   help="the test metric the gate compares (default: %(default)s)")
    p.add_argument("--min-delta", type=float, default=0.0,
                   help="the gain the challenger's interval must clear, absolute (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="evaluate and decide, change nothing")
    p.add_argument("--rollback", action="store_true", help="move `champion` back to the previous champion")
    p.add_argument("--utterances", type=Path, default=Path("data/interim/utterances.parquet"),
                   help="the index stage's table: where each test utterance's wav and video are (default: %(default)s)")
    p.add_argument("--splits", type=Path, default=Path("data/interim/splits.parquet"),
                   help="the split stage's table: which utterances are the test role (default: %(default)s)")
    p.add_argument("--video", type=Path, default=Path("data/processed/video/full-raw"),
                   help="the video stage's output, to leave out clips it could not read (fusion; default: %(default)s)")
    p.add_argument("--compact", type=Path, metavar="MODEL_DIR",
                   help="register this compact training stage's model (best.pt) and move the `compact` alias to it")
    p.add_argument("--compact-details", type=Path, help="--compact: that stage's details.json")
    p.add_argument("--compact-best", type=Path, action="append", default=[],
                   help="--compact: the search results its params came from (the tune stage's --compact-out)")
    p.add_argument("--audio", type=Path, default=Path("data/processed/audio/full-raw"),
                   help="--compact: the audio variant it was trained on (default: %(default)s)")
    p.add_argument("--audit", action="store_true",
                   help="print the model's promotions, refusals and rollbacks in this store; change nothing")


def run(args: argparse.Namespace, params: Params) -> None:
    import pandas as pd
    from rich.table import Table

    from avemo.registry import PromotionHalfDone, evaluation_table, promote, rollback
    from avemo.stages.show import console

    if args.audit:
        print_audit(args.model)
        return
    if args.compact:
        promote_compact(args, params)
        return
    try:
        if args.rollback:
            decision = rollback(args.model)
        else:
            family = args.model.removeprefix("avemo-")
            table = evaluation_table(family, params, pd.read_parquet(args.utterances), pd.read_parquet(args.splits),
                                     args.video)
            decision = promote(args.model, table, args.metric, args.min_delta, args.dry_run)
    except PromotionHalfDone:
        raise
    except Exception as exc:
        raise RuntimeError(f"{exc}; no alias was changed") from exc
    if decision.metrics:
        table = Table(title=f"{args.model}: test split", title_justify="left")
        table.add_column("metric")
        for version in decision.metrics:
            table.add_column(version, justify="right")
        for metric in next(iter(decision.metrics.values())):
            table.add_row(metric, *(f"{m.get(metric, float('nan')):.4f}" for m in decision.metrics.values()))
        console.print(table)
    prefix = "dry run, nothing changed: would " if args.dry_run and decision.action != "none" else ""
    console.print(f"promote {args.model}: {prefix}{decision.action} ({decision.reason})", markup=False)


def promote_compact(args: argparse.Namespace, params: Params) -> None:
    from avemo.registry import register_compact
    from avemo.stages.frame import searched
    from avemo.stages.show import console

    if not args.compact_details:
        raise ValueError("--compact needs --compact-details (the compact stage's details.json)")
    family = args.model.removeprefix("avemo-")
    decision = register_compact(family, searched(params, args.compact_best, args.set), args.compact,
                                args.compact_details, args.audio)
    moved = f"from v{decision.from_version} " if decision.from_version else ""
    console.print(f"promote {args.model}: alias compact {moved}to v{decision.to_version} ({decision.reason})",
                  markup=False)


def print_audit(model: str) -> None:
    """The model's audit trail, as the registry's store holds it."""
    from rich.table import Table

    from avemo.registry import audit_trail
    from avemo.stages.show import console

    table = Table(title=f"{model}: promotion decisions in this store", title_justify="left")
    for column in ("time", "decision", "from", "to", "reason"):
        table.add_column(column)
    for line in audit_trail(model):
        table.add_row(line["time"], line["decision"], str(line["from"] or "-"), str(line["to"]), line["reason"])
    console.print(table)
