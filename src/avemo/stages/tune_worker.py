"""`tune-worker`: join a running search from any process or machine, and record each trial in MLflow.

Every trial is a child run of the study's parent run (sampled params, per-epoch metrics, the
final value and cost (parameters, single-clip latency), its state and the reason it was pruned or
failed), whichever process ran it.
A worker needs no params file: the study carries the params its trials train with (and pin
torch to); a params.yaml where it starts, if any, sets only the process's data-library pins.
"""

from __future__ import annotations

import argparse

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True,
                   help="the running search's study name (avemo-<family>-<hash>, printed by `avemo tune`)")
    p.add_argument("--storage", required=True, help="the study's storage URL")
    p.add_argument("--worker", type=int, default=0, help="worker number: the sampler's seed offset")


def run(args: argparse.Namespace, params: Params) -> None:
    from avemo.stages.show import console
    from avemo.trial_runs import TrialRuns
    from avemo.tuning.study import work

    ran = work(args.study, args.storage, args.worker, TrialRuns())
    console.print(f"tune-worker {args.worker}: ran {ran} trial(s) of {args.study}")
