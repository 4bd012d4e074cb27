"""Issue 33's probe: per leave-one-session-out fold, the audio CNN alone, eGeMAPS + logistic regression (the
pipeline's reference, fit as `baseline_loso@egemaps` fits it), and ways to join them: a logistic regression on
[eGeMAPS, the CNN's embedding] fit on the training clips ("stacked"), the mean of the two models' class
probabilities ("mean"; "weighted": the weight chosen on the fold's validation session) and, with --crossfit, a
logistic regression on [eGeMAPS, the CNN's log-probabilities] fit on answers the CNN did not train on ("crossfit":
each training session answered by a CNN trained on the fold's other training sessions, so the head learns how far
the CNN carries to new speakers; the test clips answered by the CNN trained on all of them). Test UA per fold, the
CNN's over the seeds; "svm" is eGeMAPS + SVM, "product" the product of the two models' probabilities. --refit fits
every arm on the training and validation sessions (data/splits.refit_roles, as `train.refit` does); --cmn removes
each item's own mean over time from every band. Outside the pipeline (no MLflow run): docs/recipe.md records what it
measured.

    python scripts/loso_joins.py PROJECT FOLDS SEEDS THREADS [--set JSON] [--variant DIR] [--warp W] [--crossfit]
                                 [--refit] [--cmn]
    python scripts/loso_joins.py . 0,1,2,3,4 0,1,2 2 --set '{"models.audio.pooling": "stats"}'

--warp W (e.g. 1.15) replaces the training split's augmentation (enable it with --set, shift and rotation 0) by a
vocal-tract-length-style warp of the frequency axis: each training item's mel rows resampled as if every frequency
were scaled by a factor drawn log-uniformly in [1/W, W] (other speakers' pitch and formants, Jaitly and Hinton
2013), the usual remedy for a corpus with few training speakers.

PROJECT after `make repro` and the study's LOSO split (study/dvc.yaml:split_loso's command); fold 4 is the
fixed split. Test-session figures: they choose nothing (docs/recipe.md).
"""
import argparse
import json
import shutil
import tempfile
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import avemo.data.datasets
from avemo.baselines import fit_reference, read_egemaps
from avemo.data.datasets import model_input
from avemo.data.splits import refit_roles
from avemo.joined import product_of_experts
from avemo.labels import class_set
from avemo.metrics import classification_metrics
from avemo.params import load_params
from avemo.references import REFERENCES
from avemo.training.recipe import StageData, build_datasets, model_spec, train_and_answer

cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
cli.add_argument("project", type=Path)
cli.add_argument("folds", type=lambda v: [int(f) for f in v.split(",")])
cli.add_argument("seeds", type=lambda v: [int(s) for s in v.split(",")])
cli.add_argument("threads", type=int)
cli.add_argument("--set", type=json.loads, default={}, help="params overrides, a JSON object")
cli.add_argument("--variant", type=Path, help="an audio variant folder (default: the project's full-raw)")
cli.add_argument("--warp", type=float, help="the largest frequency scale factor of the training items' warp")
cli.add_argument("--crossfit", action="store_true", help="also the cross-fitted head (one CNN per training session)")
cli.add_argument("--refit", action="store_true",
                 help="train every arm on the training and validation sessions (the validation session kept as val)")
cli.add_argument("--cmn", action="store_true",
                 help="subtract each item's own mean over time from every band (every role, at load time)")
args = cli.parse_args()
root, folds, seeds, max_warp = args.project, args.folds, args.seeds, args.warp
torch.set_num_threads(args.threads)
audio_dir = args.variant or root / "data/processed/audio/full-raw"
base = load_params(root / "params.yaml").override(args.set)
meta = json.loads((audio_dir / "meta.json").read_text())
sample_rate = meta["sample_rate"]
if max_warp is not None and (max_warp <= 1 or meta["spectrogram"]["kind"] != "mel"):
    cli.error(f"--warp needs a factor above 1 and a mel variant (got {max_warp} on {meta['spectrogram']['kind']} rows)")
# The loop resumes a `last.pt` whose config, architecture and training size match, and an augmentation or another
# variant of the same shape changes none of them: every invocation trains in resume folders of its own.
scratch = Path(tempfile.mkdtemp(prefix="loso-joins-"))
egemaps = read_egemaps(root / "data/processed/egemaps/full-raw")
ref = REFERENCES["egemaps"]
out = {}


def forward(model, dataset, fn):
    model.eval()
    with torch.no_grad():
        xs = torch.stack([dataset[i][0] for i in range(len(dataset))])
        return torch.cat([fn(xs[i:i + 64]) for i in range(0, len(xs), 64)]).numpy()


def probabilities(model, dataset):
    return torch.softmax(torch.from_numpy(forward(model, dataset, model)), 1).numpy()


def out_of_fold(params, data, plain_train, seed, fold):
    """The CNN's class probabilities on each training session's clips, from a CNN trained on the others."""
    sessions = data.train.items["session"].to_numpy()
    answered = plain_train.items["session"].to_numpy()
    P = np.zeros((len(plain_train), len(data.train.classes)))
    for s in np.unique(sessions):
        t = train_and_answer(model_spec("audio", params, data), params, data, seed,
                             scratch / f"{fold}-{seed}-without-{s}", data.test, torch.device("cpu"),
                             train_set=data.train.restricted(sessions != s))
        P[answered == s] = probabilities(t.model, plain_train.restricted(answered == s))
    return P


def warp_frequency(x, _params):
    """Resample the mel rows of `x` (1, bands, frames) at f / alpha: content at f moves to alpha * f."""
    bands = x.shape[-2]
    centres = librosa.mel_frequencies(bands + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1]
    alpha = float(np.exp(torch.empty(()).uniform_(-np.log(max_warp), np.log(max_warp)).item()))
    source = np.interp(centres / alpha, centres, np.arange(bands))  # fractional source row per output row
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, bands - 1)
    w = torch.from_numpy(source - low).to(x.dtype)[:, None]
    return x[..., low, :] * (1 - w) + x[..., high, :] * w


def utterance_mean_removed(db, floor, ceiling, crop_ratio):
    """The model's input with each band's mean over the item's own frames removed (cepstral mean normalisation
    on log-mel rows): level and timbre go, the contours' movements stay."""
    x = model_input(db, floor, ceiling, crop_ratio)
    return x - x.mean(dim=-1, keepdim=True)


if max_warp:
    avemo.data.datasets.augment = warp_frequency
if args.cmn:
    avemo.data.datasets.model_input = utterance_mean_removed

for fold in folds:
    splits = root / ("data/interim/splits_loso.parquet" if fold < 4 else "data/interim/splits.parquet")
    if args.refit:
        table = refit_roles(pd.read_parquet(splits))
        splits = scratch / f"refit-{fold}.parquet"
        table.to_parquet(splits, index=False)
    params = base.override({"train.fold": fold if fold < 4 else 0})
    classes = class_set(params.labels)
    where = StageData(audio_dir, None, splits)
    data = build_datasets("audio", params, where, classes)
    plain = build_datasets("audio", params.override({"train.balance.mode": "none"}), where, classes)
    sets = {r: getattr(plain, r) for r in ("train", "val", "test")}
    y = {r: d.items["target"].to_numpy() for r, d in sets.items()}
    G = {r: egemaps.loc[d.items["clip_id"]].to_numpy(np.float64) for r, d in sets.items()}
    reference = fit_reference(G["train"], y["train"], ref, params.baseline)
    P_ref = {r: reference.predict_proba(G[r]) for r in ("val", "test")}
    svm = fit_reference(G["train"], y["train"], REFERENCES["egemaps_svm"], params.baseline)
    ua = lambda r, p: classification_metrics(y[r], p.argmax(1), classes)["ua"]  # noqa: E731
    row = {"reference": ua("test", P_ref["test"]),
           "svm": classification_metrics(y["test"], svm.predict(G["test"]), classes)["ua"],
           "cnn": [], "stacked": [], "mean": [], "product": [], "weighted": [], "w": [],
           **({"crossfit": []} if args.crossfit else {})}
    for seed in seeds:
        t = train_and_answer(model_spec("audio", params, data), params, data, seed, scratch / f"{fold}-{seed}",
                             data.test, torch.device("cpu"))
        P = {r: probabilities(t.model, sets[r]) for r in ("val", "test")}
        E = {r: forward(t.model, sets[r], t.model.embed) for r in sets}
        row["cnn"].append(ua("test", P["test"]))
        head = make_pipeline(StandardScaler(), LogisticRegression(C=params.baseline.egemaps.C, max_iter=5000,
                                                                  class_weight="balanced"))
        head.fit(np.hstack([G["train"], E["train"]]), y["train"])
        row["stacked"].append(classification_metrics(y["test"], head.predict(np.hstack([G["test"], E["test"]])),
                                                     classes)["ua"])
        row["mean"].append(ua("test", (P["test"] + P_ref["test"]) / 2))
        row["product"].append(ua("test", product_of_experts(P["test"], P_ref["test"])))
        grid = np.linspace(0, 1, 11)
        w = float(grid[int(np.argmax([ua("val", w * P["val"] + (1 - w) * P_ref["val"]) for w in grid]))])
        row["w"].append(w)
        row["weighted"].append(ua("test", w * P["test"] + (1 - w) * P_ref["test"]))
        if args.crossfit:
            head = make_pipeline(StandardScaler(), LogisticRegression(C=params.baseline.egemaps.C, max_iter=5000,
                                                                      class_weight="balanced"))
            oof = out_of_fold(params, data, sets["train"], seed, fold)
            head.fit(np.hstack([G["train"], np.log(oof + 1e-6)]), y["train"])
            row["crossfit"].append(ua("test", head.predict_proba(np.hstack([G["test"], np.log(P["test"] + 1e-6)]))))
    out[fold] = row
    print(fold, " ".join(f"{k} {np.mean(v):.3f}" for k, v in row.items()), flush=True)
print(json.dumps(out))
shutil.rmtree(scratch)
