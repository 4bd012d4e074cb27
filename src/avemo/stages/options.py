"""The command-line arguments several stages share, each written once (dvc.yaml passes the paths)."""

from __future__ import annotations

import argparse
from pathlib import Path


def data(p: argparse.ArgumentParser, video: str = "video folder (video and fusion families)",
         video_required: bool = False) -> None:
    """The data stages' outputs a learning stage reads: the audio variant, the face frames, the splits."""
    p.add_argument("--audio", type=Path, required=True, help="audio variant folder (its clips are the items)")
    p.add_argument("--video", type=Path, required=video_required, help=video)
    p.add_argument("--splits", type=Path, required=True, help="the split stage's splits.parquet")


def stage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage", required=True, help="the DVC stage name, recorded as a tag")


def figures(p: argparse.ArgumentParser, details: str = "folder: details.json, predictions, plot tables",
            metrics: str = "headline figures with intervals (DVC metrics)") -> None:
    """Where a stage's headline figures (a DVC metrics file) and its details go."""
    p.add_argument("--metrics", type=Path, required=True, help=metrics)
    p.add_argument("--details", type=Path, required=True, help=details)


def best(p: argparse.ArgumentParser, flag: str = "--best",
         what: str = "train with the params it chose (repeatable)") -> None:
    p.add_argument(flag, type=Path, action="append", default=[], help=f"a search's reports/tune/<family>.json: {what}")


def branch_inits(p: argparse.ArgumentParser) -> None:
    """Where a fusion model's branches start (train.fusion_init)."""
    p.add_argument("--init-audio", type=Path, help="fusion: start the audio branch from this trained model folder")
    p.add_argument("--init-video", type=Path, help="fusion: start the video branch from this trained model folder")
    p.add_argument("--init-pretrained", type=Path, help="fusion: folder of the sync pre-trained encoders")
