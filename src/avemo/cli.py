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
    if args.scheme:
        p["scheme"] = args.scheme
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


def with_best(params: dict, best: list[Path] | None) -> dict:
    """params.yaml with the best overrides of the given searches applied, in order."""
    from avemo.tuning.stage import best_params

    for path in best or []:
        params = best_params(params, path)
    return params


def cmd_train(args: argparse.Namespace) -> None:
    from avemo.training.run import StagePaths, run_training

    params = with_best(load_params(args.params), args.best)
    paths = StagePaths(audio=args.audio, video=args.video, splits=args.splits, model_dir=args.model_dir,
                       metrics=args.metrics, plots=args.plots, init_audio=args.init_audio, init_video=args.init_video,
                       init_pretrained=args.init_pretrained)
    seeds = list(params["train"]["seeds"]) if args.seeds else None
    kind = params["models"]["audio"].get("kind", args.model)
    summary = run_training(args.family, kind, args.audio.name, args.stage, params, paths, seeds)
    print_summary(f"train {args.stage}", summary)


def cmd_tune(args: argparse.Namespace) -> None:
    from avemo.tuning.stage import run_search, search_config, summarise

    params = with_best(load_params(args.params), args.base_best)
    tune = params["tune"]
    if args.trials is not None:
        tune[args.family]["trials"] = args.trials
    data = {"audio": args.audio, "video": args.video, "splits": args.splits, "init_audio": args.init_audio,
            "init_video": args.init_video, "init_pretrained": args.init_pretrained}
    config = search_config(args.family, params["models"]["audio"].get("kind", "cnn"), params, data, args.stage)
    study = run_search(config, args.storage or tune["storage"], args.workers or tune["workers"])
    summary = summarise(study, config, args.out, args.figures, tune["min_gain"])
    console.print(f"tune {args.family}: best validation UA {summary['best_value_val_ua']:.3f} (trial "
                  f"{summary['best_trial']}), trials {summary['trials']}; the *_best stage trains {summary['chosen']}")


def cmd_tune_worker(args: argparse.Namespace) -> None:
    from avemo.tuning.study import work

    ran = work(args.study, args.storage, args.worker)
    console.print(f"tune-worker {args.worker}: ran {ran} trial(s) of {args.study}")


def cmd_baseline(args: argparse.Namespace) -> None:
    from avemo.baselines import reference_stage

    summary = reference_stage(args.family, args.stage, load_params(args.params), args.audio, args.video,
                              args.utterances, args.splits, args.metrics, args.plots, args.model_out)
    print_summary(f"baseline {args.stage} (logistic regression on summary statistics)", summary)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from avemo.training.pretrain import run_pretraining

    params = with_best(load_params(args.params), args.best)
    summary = run_pretraining(params, params["models"]["audio"].get("kind", "cnn"), args.audio, args.video, args.splits,
                              args.out, args.metrics, args.plots)
    kinds = ", ".join(f"{k.removeprefix('val_sync_acc_')} {v:.3f}" for k, v in summary.items()
                      if k.startswith("val_sync_acc_"))
    console.print(f"pretrain: validation synchronisation accuracy {summary['val_sync_acc']:.3f} (chance 0.5; by "
                  f"negative: {kinds}); encoders in {args.out}")


def cmd_efficiency(args: argparse.Namespace) -> None:
    from avemo.training.efficiency import run_label_efficiency
    from avemo.training.recipe import StageData

    params = with_best(load_params(args.params), args.best)
    summary = run_label_efficiency(params, params["models"]["audio"].get("kind", "cnn"),
                                   StageData(args.audio, args.video, args.splits), args.pretrained, args.stage,
                                   args.metrics, args.plots)
    table = Table(title="label efficiency: test UA, mean +- sd over seeds")
    for column in ("labels", "scratch", "pre-trained", "verdict"):
        table.add_column(column)
    for fraction, cells in summary["fractions"].items():
        ua = {a: cells[a]["test_ua"] for a in ("scratch", "pretrained")}
        table.add_row(f"{float(fraction):.0%} ({cells['scratch']['labels']})",
                      *(f"{u['mean']:.3f} +- {u['sd'] or 0:.3f}" for u in ua.values()), cells["verdict"])
    console.print(table)


def cmd_report(args: argparse.Namespace) -> None:
    import json

    from avemo.report import build_report

    tune = {path.stem: json.loads(path.read_text()) for path in args.tune or [] if path.exists()}
    build_report(args.out, args.figures, load_params(args.params), json.loads(args.corpus.read_text()), tune)
    console.print(f"report: {args.out} (figures in {args.figures})")


def cmd_register(args: argparse.Namespace) -> None:
    from avemo.registry import register
    from avemo.reports import write_json

    params = load_params(args.params)
    out = {}
    for family, model_dir, metrics, best in (("audio", args.audio_model, args.audio_metrics, args.audio_best),
                                             ("fusion", args.fusion_model, args.fusion_metrics, args.fusion_best)):
        p = with_best(params, best)
        out[family] = register(family, p["models"]["audio"].get("kind", "cnn"), p, model_dir, metrics, args.audio)
        what = "registered as" if out[family]["registered"] else "already registered:"
        console.print(f"register: {model_dir} {what} {out[family]['model']} v{out[family]['version']} (alias challenger)")
    write_json(args.out, out)


def cmd_promote(args: argparse.Namespace) -> None:
    import pandas as pd

    from avemo.registry import evaluation_table, promote, rollback

    try:
        if args.rollback:
            decision = rollback(args.model, args.audit)
        else:
            params = load_params(args.params)
            family = "fusion" if "fusion" in args.model else "audio"
            table = evaluation_table(family, params, pd.read_parquet(args.utterances), pd.read_parquet(args.splits),
                                     args.video)
            decision = promote(args.model, table, args.metric.removeprefix("test_"), args.min_delta, args.dry_run,
                               args.audit)
    except Exception as exc:
        if "half-way" in str(exc):
            raise RuntimeError(str(exc)) from exc
        raise RuntimeError(f"promote {args.model}: {exc}; no alias was changed") from exc
    if decision.metrics:
        table = Table(title=f"{args.model}: challenger v{decision.to_version} vs champion "
                            f"{'v' + decision.from_version if decision.from_version else '(none)'} on the test split")
        table.add_column("metric")
        for version in decision.metrics:
            table.add_column(version, justify="right")
        for metric in next(iter(decision.metrics.values())):
            table.add_row(metric, *(f"{m.get(metric, float('nan')):.4f}" for m in decision.metrics.values()))
        console.print(table)
    prefix = "dry run, nothing changed: would " if args.dry_run and decision.action != "none" else ""
    console.print(f"promote {args.model}: {prefix}{decision.action} ({decision.reason})")


def cmd_predict(args: argparse.Namespace) -> None:
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
    p.add_argument("--scheme", choices=["fixed", "loso", "random"], help="instead of split.scheme")
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
    p.add_argument("--model-out", type=Path, required=True, help="where the fitted pipeline goes (joblib)")
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
    p.add_argument("--init-pretrained", type=Path, help="fusion: folder of the sync pre-trained encoders")
    p.add_argument("--seeds", action="store_true",
                   help="train once per seed of `train.seeds` (mean and sd; default: `train.loop.seed` alone)")
    p.add_argument("--best", type=Path, action="append",
                   help="a search's reports/tune/<family>.json: train with its best params (repeatable)")
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser("tune", help="an Optuna search (tune.<family> in params.yaml), every trial tracked in MLflow")
    p.add_argument("--family", choices=["audio", "fusion"], required=True)
    p.add_argument("--audio", type=Path, required=True, help="audio variant folder")
    p.add_argument("--video", type=Path, help="video folder (fusion)")
    p.add_argument("--splits", type=Path, required=True)
    p.add_argument("--stage", required=True, help="the DVC stage name, recorded as a tag")
    p.add_argument("--out", type=Path, required=True, help="reports/tune/<family>.json")
    p.add_argument("--figures", type=Path, required=True, help="folder for the study's plots")
    p.add_argument("--base-best", type=Path, action="append", help="start from another search's best params")
    p.add_argument("--init-audio", type=Path, help="fusion: trained audio model folder (train.fusion_init=branches)")
    p.add_argument("--init-video", type=Path, help="fusion: trained video model folder (train.fusion_init=branches)")
    p.add_argument("--init-pretrained", type=Path, help="fusion: sync pre-trained encoders (train.fusion_init=pretrained)")
    p.add_argument("--storage", help="Optuna storage (default tune.storage): journal:<file>, sqlite:///..., postgresql://...")
    p.add_argument("--trials", type=int, help="trials wanted (default tune.<family>.trials)")
    p.add_argument("--workers", type=int, help="local worker processes (default tune.workers)")
    p.set_defaults(func=cmd_tune)

    p = verbs.add_parser("pretrain", help="audio-video synchronisation pre-training of the fusion encoders (no labels)")
    p.add_argument("--audio", type=Path, required=True, help="audio variant folder")
    p.add_argument("--video", type=Path, required=True, help="video folder")
    p.add_argument("--splits", type=Path, required=True)
    p.add_argument("--best", type=Path, action="append", help="the audio search's best params (its architecture)")
    p.add_argument("--out", type=Path, required=True, help="folder for audio.pt, video.pt")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--plots", type=Path, required=True)
    p.set_defaults(func=cmd_pretrain)

    p = verbs.add_parser("label-efficiency", help="fusion from scratch vs pre-trained, at shares of the labels")
    p.add_argument("--audio", type=Path, required=True)
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--splits", type=Path, required=True)
    p.add_argument("--pretrained", type=Path, required=True, help="the pretrain stage's encoders")
    p.add_argument("--best", type=Path, action="append", help="the audio search's best params (its architecture)")
    p.add_argument("--stage", required=True)
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--plots", type=Path, required=True)
    p.set_defaults(func=cmd_efficiency)

    p = verbs.add_parser("register", help="register the final models in the MLflow registry (alias challenger)")
    p.add_argument("--audio", type=Path, required=True, help="the audio variant the models were trained on")
    p.add_argument("--audio-model", type=Path, required=True)
    p.add_argument("--audio-metrics", type=Path, required=True)
    p.add_argument("--audio-best", type=Path, action="append", help="search results the audio model used")
    p.add_argument("--fusion-model", type=Path, required=True)
    p.add_argument("--fusion-metrics", type=Path, required=True)
    p.add_argument("--fusion-best", type=Path, action="append", help="search results the fusion model used")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_register)

    p = verbs.add_parser("promote", help="move `champion` to the challenger if it is better on the test split")
    p.add_argument("--model", required=True, help="avemo-audio or avemo-fusion")
    p.add_argument("--metric", default="test_ua", help="test_ua (default), or another evaluation metric")
    p.add_argument("--min-delta", type=float, default=0.0, help="the gain the challenger needs (absolute)")
    p.add_argument("--dry-run", action="store_true", help="evaluate and decide, change nothing")
    p.add_argument("--rollback", action="store_true", help="move `champion` back to the previous champion")
    p.add_argument("--utterances", type=Path, default=Path("data/interim/utterances.parquet"))
    p.add_argument("--splits", type=Path, default=Path("data/interim/splits.parquet"))
    p.add_argument("--video", type=Path, default=Path("data/processed/video/full"), help="video stage output (fusion)")
    p.add_argument("--audit", type=Path, default=Path("reports/promotions.jsonl"))
    p.set_defaults(func=cmd_promote)

    p = verbs.add_parser("predict", help="the emotion of a wav (+ video window) by a registered model, as JSON")
    p.add_argument("file", type=Path, help="a 16 kHz wav")
    p.add_argument("--video", type=Path, help="the video holding the utterance (fusion)")
    p.add_argument("--start", type=float, help="the utterance's start in the video, seconds")
    p.add_argument("--end", type=float, help="its end, seconds")
    p.add_argument("--side", choices=["left", "right"], default="left", help="the speaker's half of the frame")
    p.add_argument("--model", help="NAME@ALIAS (default avemo-audio@champion, or avemo-fusion@champion with --video)")
    p.set_defaults(func=cmd_predict)

    p = verbs.add_parser("report", help="reports/results.md: the study's tables filled from the MLflow runs")
    p.add_argument("--corpus", type=Path, required=True, help="reports/corpus.json")
    p.add_argument("--tune", type=Path, action="append", help="reports/tune/<family>.json")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--figures", type=Path, required=True)
    p.set_defaults(func=cmd_report)

    p = verbs.add_parser("tune-worker", help="join a running study from any process or machine")
    p.add_argument("--study", required=True)
    p.add_argument("--storage", required=True, help="the study's storage URL")
    p.add_argument("--worker", type=int, default=0, help="worker number: the sampler's seed offset")
    p.set_defaults(func=cmd_tune_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except Exception as exc:
        # MLflow's errors (e.g. a bad input to a registered model) count as clear ones too, when MLflow is loaded.
        mlflow_error = getattr(sys.modules.get("mlflow.exceptions"), "MlflowException", None)
        if not isinstance(exc, (FileNotFoundError, ValueError, RuntimeError) + ((mlflow_error,) if mlflow_error else ())):
            raise
        console.print(f"[bold red]avemo {args.verb}: {getattr(exc, 'message', None) or exc}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
