"""Reference models: a logistic regression on summary statistics, beside every deep model.

If a network cannot beat a linear model on the averages of its own input, it has not earned
its cost. Same clips, same split roles, same class set and metrics as the deep models:
- audio: per-band mean and standard deviation of a 40-band log-mel spectrogram (25 ms window,
  10 ms hop), RMS mean and standard deviation, and duration, from the clip's wav samples;
- video: per-pixel mean and standard deviation over the clip's face frames (grey, 15 x 25);
- fusion: both, side by side.
Features are standardised with the training split's statistics (StandardScaler), then
scikit-learn's LogisticRegression. Deterministic: no seeds.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import librosa
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from avemo.audio.wav import SAMPLE_RATE, load_wav
from avemo.data.datasets import items_for_role
from avemo.metrics import classification_metrics
from avemo.parallel import parallel_map
from avemo.params import Baseline

FAMILIES = ("audio", "video", "fusion")
LOGMEL = {"n_fft": 400, "hop_length": 160, "n_mels": 40}
FACE_GRID = (25, 15)  # width x height of the grey thumbnails


def logmel_statistics(y: np.ndarray) -> np.ndarray:
    """83 numbers: mean and sd of 40 log-mel bands, RMS mean and sd, duration in seconds."""
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, **LOGMEL))
    rms = librosa.feature.rms(y=y, frame_length=LOGMEL["n_fft"], hop_length=LOGMEL["hop_length"])[0]
    return np.concatenate([mel.mean(axis=1), mel.std(axis=1), [rms.mean(), rms.std(), len(y) / SAMPLE_RATE]])


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


def fit_reference(X: np.ndarray, y: np.ndarray, p: Baseline) -> Pipeline:
    """Standardise with the training rows' statistics, then a logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=p.C, max_iter=p.max_iter)).fit(X, y)


def reference_items(family: str, audio_dir: Path, video_dir: Path | None, splits: pd.DataFrame, classes: list[str],
                    fold: int, missing_video: str) -> dict[str, pd.DataFrame]:
    """The clips of each role, as the deep models see them (items without video dropped or blanked alike)."""
    clips = pd.read_parquet(audio_dir / "clips.parquet")
    if family != "audio":
        video = pd.read_parquet(video_dir / "clips.parquet")[["clip_id", "row", "has_video"]]
        clips = clips.merge(video.rename(columns={"row": "video_row"}), on="clip_id", how="left")
        if missing_video == "drop":
            clips = clips[clips["has_video"].fillna(False).astype(bool)]
    return {role: items_for_role(clips, splits, role, fold, classes) for role in ("train", "val", "test")}


def features(family: str, items: pd.DataFrame, wav_of: dict[str, str], frames: np.ndarray | None,
             workers: int) -> np.ndarray:
    parts = []
    if family in ("audio", "fusion"):
        parts.append(audio_features(items, wav_of, workers))
    if family in ("video", "fusion"):
        faces = video_features(frames, items["video_row"].to_numpy(dtype=np.int64))
        faces[~items["has_video"].to_numpy(dtype=bool)] = 0.0  # missing_video='blank'
        parts.append(faces)
    return np.concatenate(parts, axis=1)


def run_reference(family: str, audio_dir: Path, video_dir: Path | None, utterances: pd.DataFrame,
                  splits: pd.DataFrame, classes: list[str], fold: int, missing_video: str, p: Baseline,
                  workers: int = 0) -> dict:
    """Fit on the training role, evaluate on val and test: metrics, predictions and feature count."""
    if family not in FAMILIES:
        raise ValueError(f"baseline family must be one of {FAMILIES}, not {family!r}")
    items = reference_items(family, audio_dir, video_dir, splits, classes, fold, missing_video)
    for role, table in items.items():
        if table.empty:
            raise ValueError(f"baseline_{family}: the {role} split of {audio_dir.name} has no items in {classes}")
    wav_of = dict(zip(utterances["utterance_id"], utterances["wav_path"]))
    frames = np.load(video_dir / "frames.npy", mmap_mode="r") if video_dir is not None else None
    X = {role: features(family, table, wav_of, frames, workers) for role, table in items.items()}
    model = fit_reference(X["train"], items["train"]["target"].to_numpy(), p)
    out = {"n_features": int(X["train"].shape[1]), "items": {r: len(t) for r, t in items.items()},
           "test_items": items["test"]["clip_id"].tolist()}
    for role in ("val", "test"):
        y_true = items[role]["target"].to_numpy()
        y_pred = model.predict(X[role])
        out[role] = classification_metrics(y_true, y_pred, classes)
        out[f"{role}_predictions"] = (y_true, y_pred)
    out["model"] = model
    return out
