"""`split`: the roles (train, val, test) of every utterance in each fold, speaker-independent.

`fixed` tests Session 5 and validates on Session 4; `loso` has five folds, each testing one
session; `random` is the study's speaker-dependent split, for comparison only. The stage
refuses to write a speaker-independent scheme in which a speaker has two roles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("utterances", type=Path, help="the index stage's utterances.parquet")
    p.add_argument("--out", type=Path, required=True,
                   help="splits.parquet: each utterance's role (train, validate, test) per fold")


def run(args: argparse.Namespace, params: Params) -> None:
    import pandas as pd

    from avemo.data.splits import RANDOM_WARNING, make_splits, speakers_in_two_roles
    from avemo.stages.show import console

    p = params.split
    splits = make_splits(pd.read_parquet(args.utterances), p.scheme, p.test_session, p.val_session,
                         p.val_fraction, p.test_fraction, p.seed)
    twice = speakers_in_two_roles(splits) if p.scheme != "random" else pd.DataFrame()
    if not twice.empty:
        roles = splits.groupby(["fold", "speaker"])["role"].unique()
        named = "; ".join(f"{r.speaker} in fold {r.fold} as {', '.join(sorted(roles[(r.fold, r.speaker)]))}"
                          for r in twice.itertuples())
        raise ValueError(f"{args.utterances}: a speaker in two roles ({named}): the {p.scheme} split is not "
                         "speaker-independent (one speaker id in two sessions?)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    splits.to_parquet(args.out, index=False)
    if p.scheme == "random":
        console.print(f"WARNING: {RANDOM_WARNING}", style="bold yellow")
    console.print(f"split: scheme={p.scheme}, {splits['fold'].nunique()} fold(s)")
    console.print(splits.groupby(["fold", "role"]).size().unstack(fill_value=0).to_string(), markup=False)
