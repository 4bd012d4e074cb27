"""`avemo predict`: the emotion of one wav (and its video window) by a registered model, as JSON.

The version's files are found in the store without MLflow where they can be (store.py), and the
model runs without it (predictor.py): MLflow's import and its model loading's checks were half of
a cold call. The CLI reads local files itself; a server never does (inputs.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="a 16 kHz mono wav")
    p.add_argument("--video", type=Path, help="the video holding the utterance (fusion)")
    p.add_argument("--start", type=float, help="the utterance's start in the video, seconds (default 0); "
                                                "required (or --end) when the video outlasts the wav by over 1 s")
    p.add_argument("--end", type=float, help="its end, seconds (default the video's end)")
    p.add_argument("--side", choices=["left", "right"],
                   help="the speaker's half of the frame (left: the actor wearing the markers); default: from an "
                        "IEMOCAP utterance name (Ses01F_impro01_M013: right)")
    p.add_argument("--model", help="NAME@ALIAS or NAME/VERSION (default avemo-audio@champion, or "
                                   "avemo-fusion@champion with --video)")


def run(args: argparse.Namespace, params: Params) -> None:
    import json

    from avemo.inputs import Files
    from avemo.predictor import Predictor
    from avemo.store import model_folder, pyfunc_artifacts, tracking_uri

    name = args.model or ("avemo-fusion@champion" if args.video else "avemo-audio@champion")
    row = {"audio_path": str(args.file)}
    if args.video:
        row.update(video_path=str(args.video), start=args.start, end=args.end, side=args.side or side_of(args.file))
    artifacts = pyfunc_artifacts(model_folder(name, tracking_uri()))
    model = Predictor(artifacts["weights"], artifacts["config"], Files(local=True))
    probabilities = model.predict([row])[0]
    print(json.dumps({"model": name, "emotion": model.classes[int(probabilities.argmax())],
                      "probabilities": {c: round(float(p), 4) for c, p in zip(model.classes, probabilities)}}))


def side_of(wav: Path) -> str:
    """The speaker's half of the frame from an IEMOCAP utterance name, as the video stage finds it."""
    from avemo.corpus.iemocap import UTTERANCE_RE, speaker_side

    name = UTTERANCE_RE.match(wav.stem)
    if name is None:
        raise ValueError(f"{wav}: give --side left|right (the speaker's half of the frame; left: the actor wearing "
                         "the motion-capture markers): it is found only from IEMOCAP utterance names such as "
                         "Ses01F_impro01_M013")
    return speaker_side(name["gender"], name["markers"])
