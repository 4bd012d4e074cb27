"""`pretrain_sync`: the fusion model's two encoders learn, without a single emotion label, whether a
clip's audio and a stack of face frames belong together (after Korbar, Tran and Torresani 2018).

The method (training/sync.py): positives are a clip's own audio and frames; negatives, from easy
to hardest, frames of another dialogue, of another utterance of the same dialogue, and the clip's
own frames with its audio shifted in time, mixed by a curriculum; the one training loop keeps the
epoch with the best synchronisation accuracy on the held-out speakers of the validation split.
Outputs: the encoders (`audio.pt`, `video.pt`, loadable as fusion branches; `sync.pt` the whole
synchronisation model with its projections), their validation
synchronisation accuracy per kind of negative, the learning curve.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params
from avemo.stages import options


def arguments(p: argparse.ArgumentParser) -> None:
    options.data(p, video="video folder (pairs come from the train role)", video_required=True)
    options.best(p, what="the encoders' architecture as it chose")
    p.add_argument("--out", type=Path, required=True, help="folder for audio.pt, video.pt")
    options.figures(p, details="folder: details.json, plot tables", metrics="headline figures (DVC metrics)")


def run(args: argparse.Namespace, params: Params) -> None:
    import mlflow
    import pandas as pd
    import torch

    from avemo.models.checkpoint import ModelSpec, save_checkpoint
    from avemo.models.video import VideoOnly
    from avemo.reports import write_json
    from avemo.stages.frame import Frame, searched
    from avemo.stages.show import console
    from avemo.tracking import log_epoch
    from avemo.training.loop import train
    from avemo.training.sync import SyncPairs, SyncTask, sync_model

    params = searched(params, args.best, args.set)
    stage = "pretrain_sync"
    frame = Frame(stage, params, [args.audio, args.video, args.splits])
    device = frame.device()
    t, p = params.train, params.pretrain.sync
    loop = params.pretrain.loop.applied_to(t.loop).model_copy(update={"seed": p.seed})
    splits = pd.read_parquet(args.splits)
    pairs = {role: SyncPairs(args.audio, args.video, splits, role, t.fold, t.crop_ratio, p, loop.epochs,
                             validation=role == "val") for role in ("train", "val")}
    model = sync_model(params.models, p, pairs["train"], t.video_normalise)
    resume = frame.resume(params.yaml_values(["pretrain", "models", "train.threads", "train.fold", "train.crop_ratio",
                                              "train.video_normalise", "train.loop"]))
    data_tags, datasets = frame.data_record(args.audio, args.splits, t.fold, video=args.video)
    with frame.mlflow_run("pretrain", resume, device=device,
                          tags={**data_tags, "labels_used": "none",
                                "pairs_train": len(pairs["train"]), "pairs_val": len(pairs["val"])},
                          params={"kind": params.models.audio.kind, **params.yaml_values(["pretrain", "models"])},
                          datasets=datasets) as run:
        history = train(model, pairs["train"], pairs["val"], [], loop, resume.sub("loop"), fingerprint=resume.key,
                        task=SyncTask(p), on_epoch=log_epoch)
        if history.resumed_from > 0:
            print(f"{stage}: resumed from epoch {history.resumed_from}", flush=True)
            mlflow.set_tag("resumed_from_epoch", history.resumed_from)
        final = {k: v for k, v in history.epochs[history.best_epoch].items() if k.startswith("val_")}
        mlflow.log_metrics({f"final_{k}": v for k, v in final.items()})
        run_id = run.info.run_id
    model.cpu()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / "sync.pt")  # with the projections: the whole synchronisation model
    audio, video = model.audio, model.video
    save_checkpoint(args.out / "audio.pt", audio, ModelSpec("audio", ("in sync", "out of sync"), audio=audio.cfg))
    save_checkpoint(args.out / "video.pt", VideoOnly(video), ModelSpec("video", ("in sync", "out of sync"),
                                                                       video=video.cfg))
    write_json(args.metrics, {"sync_acc": round(final["val_sync_acc"], 4)})  # chance: 0.5
    args.details.mkdir(parents=True, exist_ok=True)
    write_json(args.details / "details.json", {"stage": stage, "mlflow_run_id": run_id, **final,
                                               "epoch": history.best_epoch, "chance": 0.5})
    pd.DataFrame(history.epochs).to_csv(args.details / "learning_curve.csv", index=False)
    resume.finish()
    kinds = ", ".join(f"{k.removeprefix('val_sync_acc_')} {v:.3f}" for k, v in final.items()
                      if k.startswith("val_sync_acc_"))
    console.print(f"pretrain: validation synchronisation accuracy {final['val_sync_acc']:.3f} (chance 0.5; by "
                  f"negative: {kinds}); encoders in {args.out}")
