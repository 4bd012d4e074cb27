"""Issue 33's probe: per leave-one-session-out fold, the audio CNN alone, eGeMAPS + logistic regression (the
pipeline's reference, fit as `baseline_loso@egemaps` fits it), and two ways to join them: a logistic regression on
[eGeMAPS, the CNN's embedding] fit on the training clips ("stacked"), and the mean of the two models' class
probabilities ("mean"; "weighted": the weight chosen on the fold's validation session). Test UA per fold, the CNN's
over the seeds. Outside the pipeline (no MLflow run): docs/recipe.md records what it measured.

    python scripts/loso_joins.py PROJECT FOLDS SEEDS THREADS [OVERRIDES_JSON] [AUDIO_VARIANT_DIR] [WARP]
    python scripts/loso_joins.py . 0,1,2,3,4 0,1,2 2 '{"models.audio.pooling": "stats"}'

WARP (e.g. 1.15) replaces the training split's augmentation (enable it in OVERRIDES, shift and rotation 0) by a
vocal-tract-length-style warp of the frequency axis: each training item's mel rows resampled as if every frequency
were scaled by a factor drawn log-uniformly in [1/WARP, WARP] (other speakers' pitch and formants, Jaitly and Hinton
2013), the usual remedy for a corpus with few training speakers.

PROJECT after `make repro` and the study's LOSO split (study/dvc.yaml:split_loso's command); fold 4 is the
fixed split. Test-session figures: they choose nothing (docs/recipe.md).
"""
import json
import sys
from pathlib import Path

import librosa
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import avemo.data.datasets
from avemo.baselines import fit_reference, read_egemaps
from avemo.labels import class_set
from avemo.metrics import classification_metrics
from avemo.params import load_params
from avemo.references import REFERENCES
from avemo.training.recipe import StageData, build_datasets, model_spec, train_and_answer

root = Path(sys.argv[1])
folds = [int(f) for f in sys.argv[2].split(",")]
seeds = [int(s) for s in sys.argv[3].split(",")]
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
overrides = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
audio_dir = Path(sys.argv[6]) if len(sys.argv) > 6 else root / "data/processed/audio/full-raw"
base = load_params(root / "params.yaml").override(overrides)
max_warp = float(sys.argv[7]) if len(sys.argv) > 7 else None
sample_rate = json.loads((audio_dir / "meta.json").read_text())["sample_rate"]
egemaps = read_egemaps(root / "data/processed/egemaps/full-raw")
ref = REFERENCES["egemaps"]
out = {}


def forward(model, dataset, fn):
    model.eval()
    with torch.no_grad():
        xs = torch.stack([dataset[i][0] for i in range(len(dataset))])
        return torch.cat([fn(xs[i:i + 64]) for i in range(0, len(xs), 64)]).numpy()


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


if max_warp:
    avemo.data.datasets.augment = warp_frequency

for fold in folds:
    splits = root / ("data/interim/splits_loso.parquet" if fold < 4 else "data/interim/splits.parquet")
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
    ua = lambda r, p: classification_metrics(y[r], p.argmax(1), classes)["ua"]  # noqa: E731
    row = {"reference": ua("test", P_ref["test"]), "cnn": [], "stacked": [], "mean": [], "weighted": [], "w": []}
    for seed in seeds:
        t = train_and_answer(model_spec("audio", params, data), params, data, seed, Path(f"/tmp/loso-joins-{fold}-{seed}"),
                             data.test, torch.device("cpu"))
        P = {r: torch.softmax(torch.from_numpy(forward(t.model, sets[r], t.model)), 1).numpy() for r in ("val", "test")}
        E = {r: forward(t.model, sets[r], t.model.embed) for r in sets}
        row["cnn"].append(ua("test", P["test"]))
        head = make_pipeline(StandardScaler(), LogisticRegression(C=params.baseline.egemaps.C, max_iter=5000,
                                                                  class_weight="balanced"))
        head.fit(np.hstack([G["train"], E["train"]]), y["train"])
        row["stacked"].append(classification_metrics(y["test"], head.predict(np.hstack([G["test"], E["test"]])),
                                                     classes)["ua"])
        row["mean"].append(ua("test", (P["test"] + P_ref["test"]) / 2))
        grid = np.linspace(0, 1, 11)
        w = float(grid[int(np.argmax([ua("val", w * P["val"] + (1 - w) * P_ref["val"]) for w in grid]))])
        row["w"].append(w)
        row["weighted"].append(ua("test", w * P["test"] + (1 - w) * P_ref["test"]))
    out[fold] = row
    print(fold, " ".join(f"{k} {np.mean(v):.3f}" for k, v in row.items()), flush=True)
print(json.dumps(out))
