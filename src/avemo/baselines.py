"""Reference models beside every deep model: a linear model (or the field's SVM) on summary statistics.

If a network cannot beat a linear model on the averages of its own input, nor the field's
hand-crafted reference, it has not earned its cost. Same clips, same split roles, same class
set and metrics as the deep models. Each reference is one row of references.REFERENCES: its
features side by side, the deep models it stands beside, its model. The features:
- logmel: per-band mean and standard deviation of a 40-band log-mel spectrogram (25 ms window,
  10 ms hop), RMS mean and standard deviation, and duration, from the clip's wav samples;
- faces: per-pixel mean and standard deviation over the clip's face frames (grey, 15 x 25);
- egemaps: openSMILE's 88 eGeMAPSv02 functionals of the clip (the `egemaps` stage's table).
Features are standardised with the training split's statistics (StandardScaler), then
scikit-learn's LogisticRegression, or an RBF SVC; the eGeMAPS references weight the classes
as balanced, as the field does (the log-mel and face references stay as first fitted).
Deterministic: no seeds.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from avemo.audio.spectrogram import mel_filters, stft
from avemo.audio.wav import SAMPLE_RATE, load_wav
from avemo.data.splits import items_for_role
from avemo.metrics import classification_metrics
from avemo.parallel import parallel_map
from avemo.params import Baseline
from avemo.references import Reference

LOGMEL = {"n_fft": 400, "hop_length": 160, "n_mels": 40}
FACE_GRID = (25, 15)  # width x height of the grey thumbnails


def logmel_statistics(y: np.ndarray) -> np.ndarray:
    """83 numbers: mean and sd of 40 log-mel bands, RMS mean and sd, duration in seconds.

    librosa's power_to_db(melspectrogram(...)) and feature.rms(...) with these settings, through the project's numpy
    STFT and filters (audio/spectrogram.py: bit for bit librosa's; tests/test_baselines.py checks these against
    librosa itself): no numba compiling in every worker of every baseline stage (10-13 s each on 2 cores)."""
    n_fft, hop = LOGMEL["n_fft"], LOGMEL["hop_length"]
    power = np.abs(stft(y, n_fft, hop, n_fft)) ** 2
    mel = np.einsum("...ft,mf->...mt", power, mel_filters(SAMPLE_RATE, n_fft, LOGMEL["n_mels"], SAMPLE_RATE / 2),
                    optimize=True)
    db = 10.0 * np.log10(np.maximum(1e-10, mel))  # power_to_db: ref 1.0, amin 1e-10, top_db 80
    db = np.maximum(db, db.max() - 80.0)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, n_fft // 2), n_fft)[::hop]
    rms = np.sqrt(np.mean(np.abs(frames) ** 2, axis=-1))  # feature.rms: centred, zero-padded frames
    return np.concatenate([db.mean(axis=1), db.std(axis=1), [rms.mean(), rms.std(), len(y) / SAMPLE_RATE]])


def _clip_statistics(job: tuple[str, float, float]) -> np.ndarray:
    wav, start, end = job
    y, _ = load_wav(wav)
    return logmel_statistics(y[int(start * SAMPLE_RATE): max(int(end * SAMPLE_RATE), int(start * SAMPLE_RATE) + 1)])


def audio_features(clips: pd.DataFrame, wav_of: dict[str, str], workers: int = 0) -> np.ndarray:
    """One row of log-mel statistics per clip, from the real samples of its window (padding excluded)."""
    jobs = [(wav_of[u], s, e) for u, s, e in zip(clips["utterance_id"], clips["start"], clips["end"])]
    return np.stack(list(parallel_map(_clip_statistics, jobs, workers, "baseline: log-mel statistics", chunksize=8)))


def face_statistics(frames: np.ndarray) -> np.ndarray:
    """Per-pixel mean and sd over time of the grey face frames (T x H x W x 3 RGB), on a 15 x 25 grid."""
    grey = [cv2.resize(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY), FACE_GRID,
                       interpolation=cv2.INTER_AREA) for f in frames]
    stack = np.stack(grey).astype(np.float32) / 255
    return np.concatenate([stack.mean(axis=0).ravel(), stack.std(axis=0).ravel()])


def video_features(frames: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.stack([face_statistics(frames[r]) for r in rows])


def estimator(reference: Reference, p: Baseline):
    """The row's model with its knobs: `baseline.egemaps` for the eGeMAPS references, `baseline.C` otherwise."""
    if not reference.needs_egemaps:
        return LogisticRegression(C=p.C, max_iter=p.max_iter)
    e = p.egemaps
    if reference.model == "svm":
        return SVC(kernel="rbf", C=e.svm_C, gamma=e.svm_gamma, class_weight="balanced")
    return LogisticRegression(C=e.C, max_iter=p.max_iter, class_weight="balanced")


def fit_reference(X: np.ndarray, y: np.ndarray, reference: Reference, p: Baseline) -> Pipeline:
    """Standardise with the training rows' statistics, then the row's model."""
    return make_pipeline(StandardScaler(), estimator(reference, p)).fit(X, y)


def read_egemaps(egemaps_dir: Path) -> pd.DataFrame:
    """The `egemaps` stage's table (clip_id + 88 functionals), indexed by clip id."""
    path = egemaps_dir / "features.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no eGeMAPS table; run the egemaps stage first (`avemo egemaps`)")
    return pd.read_parquet(path).set_index("clip_id")


def reference_items(reference: Reference, audio_dir: Path, video_dir: Path | None, egemaps: pd.DataFrame | None,
                    splits: pd.DataFrame, classes: list[str], fold: int,
                    missing_video: str) -> tuple[dict[str, pd.DataFrame], int]:
    """The clips of each role, as the deep models see them (items without video dropped or blanked alike), and how
    many of them had no eGeMAPS features (the egemaps stage's skipped table says why): left out, and counted."""
    clips = pd.read_parquet(audio_dir / "clips.parquet")
    if reference.needs_video:
        video = pd.read_parquet(video_dir / "clips.parquet")[["clip_id", "row", "has_video"]]
        clips = clips.merge(video.rename(columns={"row": "video_row"}), on="clip_id", how="left")
        if missing_video == "drop":
            clips = clips[clips["has_video"].fillna(False).astype(bool)]
    items = {role: items_for_role(clips, splits, role, fold, classes) for role in ("train", "val", "test")}
    without = 0
    if egemaps is not None:
        for role, table in items.items():
            known = table["clip_id"].isin(egemaps.index).to_numpy()
            without += int((~known).sum())
            items[role] = table[known].reset_index(drop=True)
    return items, without


def features(reference: Reference, items: pd.DataFrame, wav_of: dict[str, str], frames: np.ndarray | None,
             egemaps: pd.DataFrame | None, workers: int) -> np.ndarray:
    parts = []
    for kind in reference.features:
        if kind == "logmel":
            parts.append(audio_features(items, wav_of, workers))
        elif kind == "egemaps":
            parts.append(egemaps.loc[items["clip_id"]].to_numpy(dtype=np.float64))
        else:
            faces = video_features(frames, items["video_row"].to_numpy(dtype=np.int64))
            faces[~items["has_video"].to_numpy(dtype=bool)] = 0.0  # missing_video='blank'
            parts.append(faces)
    return np.concatenate(parts, axis=1)


def run_reference(reference: Reference, audio_dir: Path, video_dir: Path | None, egemaps_dir: Path | None,
                  utterances: pd.DataFrame, splits: pd.DataFrame, classes: list[str], fold: int, missing_video: str,
                  p: Baseline, workers: int = 0) -> dict:
    """Fit on the training role, evaluate on val and test: metrics, predictions and feature count."""
    for needed, folder, flag in ((reference.needs_video, video_dir, "--video"),
                                 (reference.needs_egemaps, egemaps_dir, "--egemaps")):
        if needed and folder is None:
            raise ValueError(f"baseline {reference.name}: needs {flag} (its features are {reference.features})")
    egemaps = read_egemaps(egemaps_dir) if reference.needs_egemaps else None
    items, without = reference_items(reference, audio_dir, video_dir, egemaps, splits, classes, fold, missing_video)
    for role, table in items.items():
        if table.empty:
            raise ValueError(f"baseline {reference.name}: the {role} split of {audio_dir.name} has no items in "
                             f"{classes}")
    wav_of = dict(zip(utterances["utterance_id"], utterances["wav_path"]))
    frames = np.load(video_dir / "frames.npy", mmap_mode="r") if reference.needs_video else None
    X = {role: features(reference, table, wav_of, frames, egemaps, workers) for role, table in items.items()}
    model = fit_reference(X["train"], items["train"]["target"].to_numpy(), reference, p)
    out = {"n_features": int(X["train"].shape[1]), "items": {r: len(t) for r, t in items.items()},
           "items_without_features": without, "test_items": items["test"]["clip_id"].tolist()}
    for role in ("val", "test"):
        y_true = items[role]["target"].to_numpy()
        y_pred = model.predict(X[role])
        out[role] = classification_metrics(y_true, y_pred, classes)
        out[f"{role}_predictions"] = (y_true, y_pred)
    out["model"] = model
    return out
