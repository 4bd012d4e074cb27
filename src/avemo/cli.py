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


def cmd_split(args: argparse.Namespace) -> None:
    import pandas as pd

    from avemo.data.splits import RANDOM_WARNING, make_splits, speakers_in_two_roles

    p = load_params(args.params)["split"]
    utterances = pd.read_parquet(args.utterances)
    splits = make_splits(utterances, p["scheme"], p["test_session"], p["val_session"],
                         p["val_fraction"], p["test_fraction"], p["seed"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    splits.to_parquet(args.out, index=False)
    if p["scheme"] == "random":
        console.print(f"[bold yellow]WARNING: {RANDOM_WARNING}[/]")
    elif not speakers_in_two_roles(splits).empty:
        raise ValueError("a speaker appears in two roles of one fold: the split is not speaker-independent")
    counts = splits.groupby(["fold", "role"]).size().unstack(fill_value=0)
    console.print(f"split: scheme={p['scheme']}, {splits['fold'].nunique()} fold(s)")
    console.print(counts.to_string())


def cmd_audio(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    from avemo.audio.config import STUDY_NAMES, variant_config
    from avemo.audio.preview import spectrogram_sheet
    from avemo.audio.stage import build_variant, variant_summary
    from avemo.labels import class_set
    from avemo.reports import write_json, write_table

    params = load_params(args.params)
    cfg = variant_config(params["audio"], args.segmentation, args.cleanup)
    utterances = pd.read_parquet(args.utterances)
    utterances = utterances[utterances["class"].notna()]
    clips, skipped = build_variant(utterances, cfg, args.out)
    write_table(args.skipped, skipped)
    variant = f"{args.segmentation}-{args.cleanup}"
    classes = class_set(params["labels"])
    summary = {"study_name": STUDY_NAMES[variant], **variant_summary(len(utterances), clips, skipped, classes)}
    write_json(args.metrics, summary)
    array = np.load(args.out / "spectrograms.npy", mmap_mode="r")
    spectrogram_sheet(array, clips, classes, args.figure, f"{variant} = {STUDY_NAMES[variant]} (dB, fixed scale)")
    console.print(f"audio {variant} ({STUDY_NAMES[variant]}): {summary['utterances_in']} utterances in = "
                  f"{summary['utterances_out']} kept + {summary['skipped']} skipped (see {args.skipped}); "
                  f"{len(clips)} items of shape {tuple(array.shape[1:])}")
    print_counts(f"audio {variant}: items per class", summary["items_per_class"])


def cmd_video(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    from avemo.labels import class_set
    from avemo.params import as_tuples
    from avemo.reports import write_json, write_table
    from avemo.video.face_crop import FaceParams
    from avemo.video.preview import contact_sheets
    from avemo.video.stage import VideoConfig, build_video, video_summary

    params = load_params(args.params)
    v = as_tuples(params["video"])
    cfg = VideoConfig(n_frames=v["n_frames"], face=FaceParams(**v["face"]), workers=v["workers"])
    audio_clips = pd.read_parquet(args.audio / "clips.parquet")
    table, skipped = build_video(audio_clips, cfg, args.out)
    write_table(args.skipped, skipped)
    summary = video_summary(len(audio_clips), table, skipped)
    write_json(args.metrics, summary)
    frames = np.load(args.out / "frames.npy", mmap_mode="r")
    contact_sheets(frames, table, class_set(params["labels"]), args.figures)
    console.print(f"video {args.out.name}: {summary['clips_in']} clips in = {summary['with_video']} with video + "
                  f"{summary['skipped']} skipped (see {args.skipped}); frames {tuple(frames.shape[1:])}")
    print_counts(f"video {args.out.name}: faces", {k: summary[k] for k in ("face_detected", "fallback_box", "skipped")})


def cmd_train(args: argparse.Namespace) -> None:
    from avemo.training.run import StagePaths, run_training

    params = load_params(args.params)
    paths = StagePaths(audio=args.audio, video=args.video, splits=args.splits, model_dir=args.model_dir,
                       metrics=args.metrics, plots=args.plots, init_audio=args.init_audio, init_video=args.init_video)
    seeds = list(params["train"]["seeds"]) if args.seeds else None
    summary = run_training(args.family, args.model, args.audio.name, args.stage, params, paths, seeds)
    print_summary(f"train {args.stage}", summary)


def cmd_baseline(args: argparse.Namespace) -> None:
    from avemo.baselines import reference_stage

    summary = reference_stage(args.family, args.stage, load_params(args.params), args.audio, args.video,
                              args.utterances, args.splits, args.metrics, args.plots)
    print_summary(f"baseline {args.stage} (logistic regression on summary statistics)", summary)


def print_summary(title: str, summary: dict) -> None:
    """Test figures over seeds (mean +- sd) and the kept model's recall per class."""
    n = len(summary["seeds"])
    figures = ", ".join(f"{m} {summary[f'test_{m}']['mean']:.3f}" + (f" +- {summary[f'test_{m}']['sd']:.3f}" if n > 1 else "")
                        for m in ("wa", "ua", "f1_macro"))
    console.print(f"{title}: test {figures}" + (f" over seeds {summary['seeds']}" if n else ""))
    model = summary["model"]
    print_counts(f"{title}: test recall per class" + (f" (kept model: seed {model['seed']})" if n > 1 else ""),
                 {c: round(r, 3) for c, r in model["test_recall"].items()})


def add_outputs(p: argparse.ArgumentParser) -> None:
    """The outputs every data stage writes: its data, its skipped table, its counts."""
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--skipped", type=Path, required=True)
    p.add_argument("--metrics", type=Path, required=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avemo", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("synth", help="generate the synthetic IEMOCAP-layout corpus")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_synth)

    p = verbs.add_parser("index", help="read an IEMOCAP_full_release tree into utterances.parquet")
    p.add_argument("corpus", type=Path)
    add_outputs(p)
    p.set_defaults(func=cmd_index)

    p = verbs.add_parser("split", help="speaker-independent split roles per fold")
    p.add_argument("utterances", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_split)

    p = verbs.add_parser("audio", help="one audio dataset variant (DS I-IV): spectrogram items")
    p.add_argument("utterances", type=Path)
    p.add_argument("--segmentation", choices=["full", "clip3s"], required=True)
    p.add_argument("--cleanup", choices=["raw", "clean"], required=True)
    add_outputs(p)
    p.add_argument("--figure", type=Path, required=True)
    p.set_defaults(func=cmd_audio)

    p = verbs.add_parser("video", help="face frames of the speaker, aligned with an audio variant's clips")
    p.add_argument("audio", type=Path, help="an audio variant folder (its clips.parquet gives the clips)")
    add_outputs(p)
    p.add_argument("--figures", type=Path, required=True)
    p.set_defaults(func=cmd_video)

    p = verbs.add_parser("baseline", help="the reference: logistic regression on summary statistics, tracked in MLflow")
    p.add_argument("--family", choices=["audio", "video", "fusion"], required=True)
    p.add_argument("--audio", type=Path, required=True, help="audio variant folder (its clips are the items)")
    p.add_argument("--video", type=Path, help="video folder (video and fusion families)")
    p.add_argument("--utterances", type=Path, required=True, help="utterances.parquet (the wav of each clip)")
    p.add_argument("--splits", type=Path, required=True)
    p.add_argument("--stage", required=True, help="the DVC stage name, recorded as a tag")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--plots", type=Path, required=True)
    p.set_defaults(func=cmd_baseline)

    p = verbs.add_parser("train", help="train and evaluate one model, tracked in MLflow")
    p.add_argument("--family", choices=["audio", "video", "fusion"], required=True)
    p.add_argument("--model", choices=["cnn", "cnn_lstm", "cnn_rnn", "c3d"], required=True,
                   help="audio model kind (fusion: its audio branch); c3d for the video family")
    p.add_argument("--audio", type=Path, required=True, help="audio variant folder")
    p.add_argument("--video", type=Path, help="video folder (video and fusion families)")
    p.add_argument("--splits", type=Path, required=True)
    p.add_argument("--stage", required=True, help="the DVC stage name, recorded as a tag")
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--plots", type=Path, required=True)
    p.add_argument("--init-audio", type=Path, help="fusion: start the audio branch from this trained model folder")
    p.add_argument("--init-video", type=Path, help="fusion: start the video branch from this trained model folder")
    p.add_argument("--seeds", action="store_true",
                   help="train once per seed of `train.seeds` (mean and sd; default: `train.loop.seed` alone)")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        console.print(f"[bold red]avemo {args.verb}: {exc}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
