"""`avemo <verb>`: the table of stages. Paths come from dvc.yaml, knobs from params.yaml.

Each verb is one module of `avemo.stages` (one per DVC stage, plus a few commands) with
`arguments(parser)` and `run(args, params)`. Before the verb's module is imported, params.yaml
is validated and the process is pinned (determinism.py): a stage never runs on a params file
with a typo, nor on the code paths of whatever CPU it happens to meet. MLflow is pointed at the
project's store for the whole process (and the processes it starts), so no code path can fall
back on MLflow's own default, a `mlflow.db` in whatever folder. A new stage is one module, one
dvc.yaml entry and one line below.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from avemo.params import Params, load_params, set_changes
from avemo.store import require_store, tracking_uri


@dataclass(frozen=True)
class Verb:
    name: str
    module: str  # avemo.stages.<module>
    help: str
    needs_params: bool = True  # False: works outside the project too (a registered model's, a study's params)
    pinned: bool = True  # stages run pinned (determinism.py); commands that write no pipeline output need not
    reads_store: bool = False  # True: refused outside a project unless MLFLOW_TRACKING_URI names a store


VERBS = (
    Verb("synth", "synth", "generate the synthetic IEMOCAP-layout corpus"),
    Verb("index", "index", "read an IEMOCAP_full_release tree into utterances.parquet"),
    Verb("split", "split", "speaker-independent split roles per fold"),
    Verb("audio", "audio", "one audio dataset variant (DS I-IV): spectrogram items"),
    Verb("video", "video", "face frames of the speaker, aligned with an audio variant's clips"),
    Verb("egemaps", "egemaps", "openSMILE's eGeMAPS functionals of an audio variant's items (the field's reference)"),
    Verb("baseline", "baseline", "a reference (references.REFERENCES): a linear model or an SVM on summary statistics "
                                 "or eGeMAPS, tracked in MLflow"),
    Verb("train", "train", "train and evaluate one model per seed, tracked in MLflow"),
    Verb("tune", "tune", "an Optuna search (tune.<family>), every trial tracked in MLflow"),
    Verb("tune-worker", "tune_worker", "join a running search from any process or machine", needs_params=False,
         reads_store=True),
    Verb("pretrain", "pretrain", "audio-video synchronisation pre-training of the fusion encoders (no labels)"),
    Verb("label-efficiency", "label_efficiency", "fusion from scratch vs pre-trained, at shares of the labels"),
    Verb("register", "register", "register the final models in the MLflow registry (alias challenger)"),
    Verb("promote", "promote", "move `champion` to the challenger if its test gain's interval clears the margin",
         needs_params=False, pinned=False, reads_store=True),
    Verb("predict", "predict", "the emotion of a wav (+ video window) by a registered model, as JSON",
         needs_params=False, pinned=False, reads_store=True),
    Verb("explain", "explain", "which bands, moments, face regions drove the kept models, and is it faithful; "
                               "or one wav's maps", needs_params=False, reads_store=True),
    Verb("report", "report", "reports/results.md: the study's tables, filled from this tracking store"),
    Verb("study", "study", "run every experiment the report has a cell for (study/dvc.yaml), with progress",
         pinned=False),
)
BY_NAME = {v.name: v for v in VERBS}


def global_options(add_help: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avemo", description=__doc__.splitlines()[0], add_help=add_help)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change one knob for this run, e.g. --set labels.set=paper3 (a YAML value; repeatable)")
    return parser


def build_parser(verb: Verb | None) -> argparse.ArgumentParser:
    """The full parser; only the chosen verb's module is imported (the others' imports cost seconds)."""
    parser = global_options(add_help=True)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="verb")
    for v in VERBS:
        sub = verbs.add_parser(v.name, help=v.help, description=v.help)
        if verb is not None and v.name == verb.name:
            stage_module(v).arguments(sub)
    return parser


def stage_module(verb: Verb):
    return importlib.import_module(f"avemo.stages.{verb.module}")


def chosen_verb(argv: list[str]) -> Verb | None:
    _, rest = global_options(add_help=False).parse_known_args(argv)
    return BY_NAME.get(rest[0]) if rest else None


def prepare(argv: list[str], verb: Verb | None) -> Params:
    """params.yaml validated (with --set changes), the process pinned and pointed at the project's
    MLflow store (MLFLOW_TRACKING_URI, unless already set: a team's server; else the store of the project
    holding the working folder); before any heavy import."""
    from avemo.determinism import pin_process

    if verb is not None and verb.reads_store:
        require_store()
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri()  # the variable's own value when set (and not empty)
    options, _ = global_options(add_help=False).parse_known_args(argv)
    if verb is not None and not verb.needs_params and not options.params.exists():
        params = Params()
    else:
        params = load_params(options.params).override(set_changes(options.set))
    if verb is not None and verb.pinned:
        pin_process(params.compute.cpu_isa)
    return params


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    verb = chosen_verb(argv)
    try:
        params = prepare(argv, verb)
        args = build_parser(verb).parse_args(argv)
        stage_module(BY_NAME[args.verb]).run(args, params)
    except Exception as exc:
        # MLflow's errors (e.g. a bad input to a registered model) count as clear ones too, when MLflow is loaded.
        mlflow_error = getattr(sys.modules.get("mlflow.exceptions"), "MlflowException", None)
        if not isinstance(exc, (FileNotFoundError, ValueError, RuntimeError) + ((mlflow_error,) if mlflow_error else ())):
            raise
        from rich.console import Console

        Console(stderr=True, soft_wrap=True).print(  # one line: a path in it is never folded
            f"avemo {verb.name if verb else ''}: {getattr(exc, 'message', None) or exc}", style="bold red",
            markup=False, highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
