"""`avemo predict`: the emotion of one wav (and its video window) by a registered model, as JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="a 16 kHz mono wav")
    p.add_argument("--video", type=Path, help="the video holding the utterance (fusion)")
    p.add_argument("--start", type=float, help="the utterance's start in the video, seconds")
    p.add_argument("--end", type=float, help="its end, seconds")
    p.add_argument("--side", choices=["left", "right"], default="left", help="the speaker's half of the frame")
    p.add_argument("--model", help="NAME@ALIAS or NAME/VERSION (default avemo-audio@champion, or "
                                   "avemo-fusion@champion with --video)")


def run(args: argparse.Namespace, params: Params) -> None:
    import json

    import mlflow
    import pandas as pd

    from avemo.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    name = args.model or ("avemo-fusion@champion" if args.video else "avemo-audio@champion")
    row = {"audio_path": str(args.file)}
    if args.video:
        row.update(video_path=str(args.video), start=args.start, end=args.end, side=args.side)
    model = mlflow.pyfunc.load_model(f"models:/{name}")
    result = model.predict(pd.DataFrame([row])).iloc[0]
    print(json.dumps({"model": name, "emotion": result["emotion"],
                      "probabilities": {k.removeprefix("p_"): round(float(v), 4) for k, v in result.items()
                                        if k.startswith("p_")}}))
