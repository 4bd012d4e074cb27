"""The reference models: their figures equal a scikit-learn fit done here, on the same tiny corpus."""

import json

import joblib
import librosa
import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.preprocessing import StandardScaler

from tests.conftest import details, run_stage

CLASSES = ["neutral", "happy", "angry", "sad"]


def expected_audio_features(clips: pd.DataFrame, utterances: pd.DataFrame) -> np.ndarray:
    """The issue's recipe, written out independently: 40-band log-mel (n_fft 400, hop 160) mean and sd,
    RMS mean and sd, duration."""
    rows = []
    wav = dict(zip(utterances["utterance_id"], utterances["wav_path"]))
    for u, start, end in zip(clips["utterance_id"], clips["start"], clips["end"]):
        y, sr = librosa.load(wav[u], sr=None)
        y = y[int(start * sr): int(end * sr)]
        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=400, hop_length=160, n_mels=40))
        rms = librosa.feature.rms(y=y, frame_length=400, hop_length=160)[0]
        rows.append(np.concatenate([mel.mean(1), mel.std(1), [rms.mean(), rms.std(), len(y) / sr]]))
    return np.array(rows)


def with_roles(clips: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    out = clips.merge(splits[["utterance_id", "role"]], on="utterance_id")
    return out[out["class"].isin(CLASSES)].reset_index(drop=True)


@pytest.mark.slow
def test_baseline_audio_equals_a_logistic_regression_fitted_here(tiny_variant, tiny_utterances, tmp_path, project_dir):
    params, splits = project_dir
    utterances = tmp_path / "utterances.parquet"
    tiny_utterances.to_parquet(utterances)
    run_stage(params, "baseline", "--family", "audio", "--audio", tiny_variant, "--utterances", utterances,
              "--splits", splits, "--stage", "baseline@audio", "--metrics", tmp_path / "metrics.json",
              "--details", tmp_path / "details", "--model-out", tmp_path / "audio.joblib")
    summary = details(tmp_path / "details")

    clips = with_roles(pd.read_parquet(tiny_variant / "clips.parquet"), pd.read_parquet(splits))
    X = expected_audio_features(clips, tiny_utterances)
    y = clips["class"].map(CLASSES.index).to_numpy()
    train, test = (clips["role"] == "train").to_numpy(), (clips["role"] == "test").to_numpy()
    scaler = StandardScaler().fit(X[train])
    model = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(X[train]), y[train])
    predicted = model.predict(scaler.transform(X[test]))
    present = sorted(set(y[test]))
    expected_ua = recall_score(y[test], predicted, labels=present, average="macro")
    assert summary["test"]["ua"]["mean"] == pytest.approx(expected_ua)
    assert summary["test"]["wa"]["mean"] == pytest.approx((predicted == y[test]).mean())
    headline = json.loads((tmp_path / "metrics.json").read_text())  # what `dvc metrics show` prints
    assert headline["ua"] == pytest.approx(expected_ua, abs=1e-4) and headline["items"] == test.sum()
    assert headline["ua_low"] < headline["ua"] < headline["ua_high"]  # one fit: an interval over the test items

    run = mlflow.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["test_ua"] == pytest.approx(expected_ua)
    assert run.data.params["model"] == "logistic_regression" and run.data.params["n_features"] == "83"
    assert pd.read_csv(tmp_path / "details" / "confusion.csv").shape[0] == test.sum()
    saved = joblib.load(tmp_path / "audio.joblib")  # the fitted reference, as the stage's DVC output
    np.testing.assert_array_equal(saved.predict(X[test]), predicted)


@pytest.mark.slow
def test_baseline_video_and_fusion_use_face_statistics_of_the_same_clips(tiny_variant, tiny_video, tiny_utterances,
                                                                        tmp_path, project_dir):
    params, splits = project_dir
    utterances = tmp_path / "utterances.parquet"
    tiny_utterances.to_parquet(utterances)
    for family in ("video", "fusion"):
        run_stage(params, "baseline", "--family", family, "--audio", tiny_variant, "--video", tiny_video[0],
                  "--utterances", utterances, "--splits", splits, "--stage", f"baseline@{family}",
                  "--metrics", tmp_path / f"{family}.json", "--details", tmp_path / family,
                  "--model-out", tmp_path / f"{family}.joblib")
    video, fusion = details(tmp_path / "video"), details(tmp_path / "fusion")

    import cv2

    clips = with_roles(pd.read_parquet(tiny_variant / "clips.parquet"), pd.read_parquet(splits))
    table = pd.read_parquet(tiny_video[0] / "clips.parquet").set_index("clip_id")
    clips = clips[table.loc[clips["clip_id"], "has_video"].to_numpy()].reset_index(drop=True)  # missing_video=drop
    frames = np.load(tiny_video[0] / "frames.npy", mmap_mode="r")
    X = []
    for row in table.loc[clips["clip_id"], "row"]:
        grey = np.stack([cv2.resize(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY), (25, 15),
                                    interpolation=cv2.INTER_AREA) for f in frames[row]]).astype(np.float32) / 255
        X.append(np.concatenate([grey.mean(0).ravel(), grey.std(0).ravel()]))
    X, y = np.array(X), clips["class"].map(CLASSES.index).to_numpy()
    train, test = (clips["role"] == "train").to_numpy(), (clips["role"] == "test").to_numpy()
    scaler = StandardScaler().fit(X[train])
    predicted = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(X[train]), y[train]).predict(
        scaler.transform(X[test]))
    assert video["test"]["wa"]["mean"] == pytest.approx((predicted == y[test]).mean())
    run = mlflow.get_run(fusion["mlflow_run_id"])
    assert run.data.params["n_features"] == str(83 + 750)
