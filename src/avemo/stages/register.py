"""`register`: the final models become versions of `avemo-audio` and `avemo-fusion` (alias challenger).

Each version is the serving pyfunc on raw input (serving.py) with the kept model and its
preprocessing, tagged with what it came from: git commit, DVC stage, variant, class set, input
md5s, environment, and the test figures with their intervals. Nothing new is registered when
this exact model (weights and serving config) already is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audio", type=Path, required=True, help="the audio variant the models were trained on")
    p.add_argument("--audio-model", type=Path, required=True,
                   help="the audio training stage's model folder (best.pt: the kept seed)")
    p.add_argument("--audio-details", type=Path, required=True, help="the audio stage's details.json")
    p.add_argument("--audio-best", type=Path, action="append", default=[], help="search results the audio model used")
    p.add_argument("--fusion-model", type=Path, required=True,
                   help="the fusion training stage's model folder (best.pt: the kept seed)")
    p.add_argument("--fusion-details", type=Path, required=True, help="the fusion stage's details.json")
    p.add_argument("--fusion-best", type=Path, action="append", default=[], help="search results the fusion model used")
    p.add_argument("--out", type=Path, required=True,
                   help="reports/registry.json: each registered version's name, version and fingerprint")


def run(args: argparse.Namespace, params: Params) -> None:
    from avemo.registry import register
    from avemo.reports import write_json
    from avemo.stages.frame import searched
    from avemo.stages.show import console

    out = {}
    for family, model_dir, details, best in (("audio", args.audio_model, args.audio_details, args.audio_best),
                                             ("fusion", args.fusion_model, args.fusion_details, args.fusion_best)):
        out[family] = register(family, searched(params, best, args.set), model_dir, details, args.audio)
        what = "registered as" if out[family]["registered"] else "already registered:"
        console.print(f"register: {model_dir} {what} {out[family]['model']} v{out[family]['version']} (alias challenger)")
    write_json(args.out, out)
