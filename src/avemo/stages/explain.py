"""`explain`: why the kept models answer as they do, and whether that explanation is faithful.

The stage (`avemo explain --audio ... --details ...`): on a class-balanced sample of the test clips
(`explain.clips_per_class` of each class), the kept audio model's mel bands and moments (occlusion
and integrated gradients), the kept video model's face regions and frames (Grad-CAM and
occlusion), and the kept fusion model's share of each modality (removing one input against a
background of training clips); every method and unit gets a deletion check (most important first
against random orders), and one that fails it is reported as failing, not drawn (explain/). The
figures go to the details folder and to each model's MLflow run; the numbers to explain.json.

One clip (`avemo explain clip.wav [--video ...]`): the registered model's maps of that clip, as
PNG, and its top bands and moments, drawn only for the methods that passed on the test set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.handover import Explanation
from avemo.params import FAMILIES, Params

BACKGROUND = "background.pt"  # the training clips a removed modality is drawn from (uint8 frames, as stored)


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("clip", nargs="?", type=Path, help="one wav to explain by a registered model (the command)")
    one = p.add_argument_group("one clip")
    one.add_argument("--video", type=Path, help="the video holding the utterance (fusion model)")
    one.add_argument("--start", type=float, help="the utterance's start in the video, seconds (default 0)")
    one.add_argument("--end", type=float, help="its end, seconds (default the video's end)")
    one.add_argument("--side", choices=["left", "right"], help="the speaker's half of the frame")
    one.add_argument("--model", help="NAME@ALIAS or NAME/VERSION (default avemo-audio@champion)")
    one.add_argument("--out", type=Path, default=Path("explain"), help="folder for the PNG (default: %(default)s)")
    one.add_argument("--verdicts", type=Path, default=Path("reports/details/explain/explain.json"),
                     help="the stage's explain.json: which methods passed on the test set, with its background "
                          f"of training clips ({BACKGROUND}) beside it (default: %(default)s)")
    stage = p.add_argument_group("the stage")
    stage.add_argument("--audio", type=Path, help="audio variant folder")
    stage.add_argument("--frames", type=Path, help="the video stage's output")
    stage.add_argument("--splits", type=Path, help="splits.parquet")
    for family in FAMILIES:
        stage.add_argument(f"--{family}-model", type=Path, help=f"the kept {family} model's folder (best.pt)")
        stage.add_argument(f"--{family}-details", type=Path, help="its stage's details.json (the run it came from)")
    stage.add_argument("--details", type=Path, help="folder: explain.json and the figures")


def run(args: argparse.Namespace, params: Params) -> None:
    if args.clip is not None:
        return explain_clip(args)
    needed = ["audio", "frames", "splits", "details", *(f"{f}_{k}" for f in FAMILIES for k in ("model", "details"))]
    missing = [f"--{k.replace('_', '-')}" for k in needed if getattr(args, k) is None]
    if missing:
        raise ValueError(f"give a wav to explain, or the stage's {', '.join(missing)}")
    return explain_stage(args, params)


def explain_stage(args: argparse.Namespace, params: Params) -> None:
    """The kept models on a class-balanced sample of the test clips, each method checked; figures and numbers."""
    import mlflow
    import torch

    from avemo.explain import explain_frames, explain_spectrograms, mean_face, modality_shares
    from avemo.explain.figures import audio_figures, modality_share_figure, video_figures
    from avemo.handover import TrainingDetails
    from avemo.labels import class_set
    from avemo.models.checkpoint import load_checkpoint
    from avemo.models.video import scaled
    from avemo.reports import write_json
    from avemo.stages.frame import Frame
    from avemo.stages.show import console
    from avemo.store import tracking_uri
    from avemo.training.recipe import StageData, build_datasets

    e = params.explain
    models = {f: getattr(args, f"{f}_model") for f in FAMILIES}
    runs = {f: TrainingDetails.read(getattr(args, f"{f}_details")).mlflow_run_id for f in FAMILIES}
    frame = Frame("explain", params, [args.audio, args.frames, args.splits, *models.values()])
    frame.device()
    classes = class_set(params.labels)
    data = build_datasets("fusion", params, StageData(args.audio, args.frames, args.splits), classes)
    test, train = sample(data.test, e.clips_per_class, e.seed), sample(data.train, e.background_per_class, e.seed)
    spectrograms, frames = (torch.stack([data.test[i][k] for i in test]) for k in (0, 1))
    background = tuple(torch.stack([data.train[i][k] for i in train]) for k in (0, 1))
    args.details.mkdir(parents=True, exist_ok=True)  # one clip's modality shares take the same background
    torch.save({"spectrograms": background[0], "frames": background[1]}, args.details / BACKGROUND)
    frames, background = scaled(frames, params.train.video_normalise), (  # the explanations perturb model space
        background[0], scaled(background[1], params.train.video_normalise))
    labels = data.test.targets[test]
    nets = {f: load_checkpoint(folder / "best.pt")[0] for f, folder in models.items()}
    audio = explain_spectrograms(nets["audio"], spectrograms, classes, labels, steps=e.steps, repeats=e.repeats,
                                 top_fraction=e.top_fraction, seed=e.seed)
    video = explain_frames(nets["video"], frames, classes, labels, baseline=mean_face(background[1]),
                           repeats=e.repeats, seed=e.seed)
    shares = modality_shares(nets["fusion"], spectrograms, frames, classes, labels, background=background)
    out = args.details
    figures = {"audio": audio_figures(audio, out / "audio"),
               "video": video_figures(video, out / "video", params.train.video_normalise),
               "fusion": [modality_share_figure(shares, out / "fusion" / "modality_shares.png")]}
    summary = {"clips": len(test), "test_clips": len(data.test.items), "clip_ids": data.test.items["clip_id"].iloc[
        test].tolist(), "audio": audio.metrics(), "video": video.metrics(), "fusion": shares.metrics(),
        "mlflow_run_ids": runs}
    write_json(out / "explain.json", Explanation.checked(summary, out / "explain.json"))
    client = mlflow.MlflowClient(tracking_uri())  # the project's store, as the runs' stages used
    for family, run_id in runs.items():
        for figure in figures[family]:
            client.log_artifact(run_id, str(figure), "explain")
        client.log_artifact(run_id, str(out / "explain.json"), "explain")
    console.print(f"explain: {len(test)} of {len(data.test.items)} test clips; faithful: " + "; ".join(
        f"{family}: {', '.join(k for k, v in summary[family]['faithfulness'].items() if v['passed']) or 'none'}"
        for family in ("audio", "video")), markup=False)


def sample(dataset, per_class: int, seed: int):
    """Up to `per_class` items of each class of a dataset (positions in it), drawn with `seed`, in order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    targets = dataset.targets
    chosen = [rng.choice(np.flatnonzero(targets == c), min(per_class, int((targets == c).sum())), replace=False)
              for c in np.unique(targets)]
    return np.sort(np.concatenate(chosen))


def explain_clip(args: argparse.Namespace) -> None:
    """One wav (and video window) through a registered model: its maps as PNG, its top bands and moments; with
    a fusion model, its face regions and frames and the share of each modality too."""
    import json

    import torch

    from avemo.audio.segment import plan_clips
    from avemo.audio.wav import SAMPLE_RATE
    from avemo.explain import explain_spectrograms
    from avemo.explain.figures import ClipScale, clip_figure
    from avemo.inputs import Files
    from avemo.predictor import Predictor
    from avemo.stages.predict import side_of
    from avemo.stages.show import notes
    from avemo.store import model_folder, pyfunc_artifacts, tracking_uri

    name = args.model or ("avemo-fusion@champion" if args.video else "avemo-audio@champion")
    if not args.verdicts.exists():
        raise FileNotFoundError(f"{args.verdicts}: no test-set verdicts to tell which methods are faithful "
                                "(`dvc repro explain`, which `make repro` runs)")
    verdicts = Explanation.read(args.verdicts)
    artifacts = pyfunc_artifacts(model_folder(name, tracking_uri()))
    model = Predictor(artifacts["weights"], artifacts["config"], Files(local=True))
    row = {"audio_path": str(args.clip)}
    if args.video:
        row.update(video_path=str(args.video), start=args.start, end=args.end, side=args.side or side_of(args.clip))
    inputs = model.inputs(row, 0)  # what the network sees: spectrograms (and frames) of each clip of the wav
    passed = verdicts.audio.passed()
    explanation = explain_spectrograms(model.network, inputs[0], model.classes,
                                       frames=inputs[1] if len(inputs) > 1 else None)
    args.out.mkdir(parents=True, exist_ok=True)
    clip = plan_clips(model.samples(row, 0)[2].size / SAMPLE_RATE, model.variant.policy)[0]
    scale = ClipScale.of(model.config, clip.end - clip.start, SAMPLE_RATE)
    path = clip_figure(inputs[0][0, 0].numpy(), explanation, args.out / f"{args.clip.stem}.png", passed, scale)
    top = {method: [scale.band_range(int(b)) for b in torch.tensor(values[0]).argsort(descending=True)[:5]]
           for method, values in explanation.bands.items() if (method, "band") in passed}
    moments = {method: [int(m) for m in torch.tensor(values[0]).argsort(descending=True)[:3]]
               for method, values in explanation.moments.items() if (method, "moment") in passed}
    edges = explanation.moment_edges() * scale.frame_seconds
    answer = {"model": name, "emotion": model.classes[int(explanation.targets[0])],
              "p": round(float(explanation.probabilities[0]), 4), "figure": str(path), "top_bands_hz": top,
              "top_moments_s": {m: [[round(float(edges[k]), 2), round(float(edges[k + 1]), 2)] for k in v]
                                for m, v in moments.items()}}
    drawn = bool(top or moments)
    if model.family == "fusion":
        faces, drawn_faces = explain_face(model.network, *inputs, model.classes, verdicts,
                                          args.verdicts.parent / BACKGROUND, args.out / f"{args.clip.stem}-face.png")
        answer.update(faces)
        drawn = drawn or drawn_faces
    print(json.dumps(answer))
    if not drawn:
        notes.print("no method passed its deletion check on the test set: no map is drawn as an explanation",
                    markup=False)


def explain_face(network, spectrograms, frames, classes: list[str], verdicts: Explanation, background: Path,
                 path: Path) -> tuple[dict, bool]:
    """A fusion model's face regions and frames for the first clip, and each modality's share of its answer
    against the explain stage's background of training clips; (what to print, whether a map was drawn)."""
    import numpy as np
    import torch

    from avemo.explain import explain_frames, mean_face, modality_shares
    from avemo.explain.figures import clip_face_figure
    from avemo.explain.outputs import video_branch
    from avemo.explain.summary import ranked
    from avemo.models.video import scaled

    if not background.exists():
        raise FileNotFoundError(f"{background}: no background of training clips for the modality shares "
                                "(`dvc repro explain`, which `make repro` runs)")
    stored = torch.load(background, weights_only=True)
    if stored["spectrograms"].shape[1:] != spectrograms.shape[1:] or stored["frames"].shape[1:] != frames.shape[1:]:
        raise ValueError(f"{background}: the explain stage's background clips are shaped "
                         f"{tuple(stored['spectrograms'].shape[1:])} and {tuple(stored['frames'].shape[1:])}, this "
                         f"model reads {tuple(spectrograms.shape[1:])} and {tuple(frames.shape[1:])}: explain it with "
                         "the stage that explained it")
    normalise = video_branch(network).cfg.normalise
    frames, bg_frames = scaled(frames[:1], normalise), scaled(stored["frames"], normalise)
    spectrograms = spectrograms[:1]
    video = explain_frames(network, frames, classes, spectrograms=spectrograms, baseline=mean_face(bg_frames),
                           repeats=1)
    shares = modality_shares(network, spectrograms, frames, classes, targets=torch.as_tensor(video.targets),
                             background=(stored["spectrograms"], bg_frames))
    passed = verdicts.video.passed()
    clip_face_figure(video, path, normalise, passed, shares)
    top = {m: ranked(video.cells(v[:1])[0], 3) for m, v in video.regions.items() if (m, "region") in passed}
    frame_top = {m: ranked(v[0], 3) for m, v in video.frames.items() if (m, "frame") in passed}
    modality = {"audio_share": shares.audio_share, "audio_shapley": shares.audio_shapley,
                "video_shapley": shares.video_shapley, "p_without_audio": shares.without_audio,
                "p_without_video": shares.without_video}
    return ({"face_figure": str(path), "region_grid": list(video.grid), "top_regions": top, "top_frames": frame_top,
             "modality": {k: None if np.isnan(v[0]) else round(float(v[0]), 4) for k, v in modality.items()}},
            bool(top or frame_top))
