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

from avemo.baselines import reference_stage

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
    summary = reference_stage("audio", "baseline_audio", params, tiny_variant, None, utterances, splits,
                              tmp_path / "metrics.json", tmp_path / "plots", tmp_path / "audio.joblib")

    clips = with_roles(pd.read_parquet(tiny_variant / "clips.parquet"), pd.read_parquet(splits))
    X = expected_audio_features(clips, tiny_utterances)
    y = clips["class"].map(CLASSES.index).to_numpy()
    train, test = (clips["role"] == "train").to_numpy(), (clips["role"] == "test").to_numpy()
    scaler = StandardScaler().fit(X[train])
    model = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(X[train]), y[train])
    predicted = model.predict(scaler.transform(X[test]))
    present = sorted(set(y[test]))
    expected_ua = recall_score(y[test], predicted, labels=present, average="macro")
    assert summary["test_ua"]["mean"] == pytest.approx(expected_ua)
    assert summary["test_wa"]["mean"] == pytest.approx((predicted == y[test]).mean())

    written = json.loads((tmp_path / "metrics.json").read_text())
    run = mlflow.get_run(written["mlflow_run_id"])
    assert run.data.metrics["test_ua"] == pytest.approx(expected_ua)
    assert run.data.params["model"] == "logistic_regression" and run.data.params["n_features"] == "83"
    assert pd.read_csv(tmp_path / "plots" / "confusion.csv").shape[0] == test.sum()
    saved = joblib.load(tmp_path / "audio.joblib")  # the fitted reference, as the stage's DVC output
    np.testing.assert_array_equal(saved.predict(X[test]), predicted)


@pytest.mark.slow
def test_baseline_video_and_fusion_use_face_statistics_of_the_same_clips(tiny_variant, tiny_video, tiny_utterances,
                                                                        tmp_path, project_dir):
    params, splits = project_dir
    utterances = tmp_path / "utterances.parquet"
    tiny_utterances.to_parquet(utterances)
    video = reference_stage("video", "baseline_video", params, tiny_variant, tiny_video[0], utterances, splits,
                            tmp_path / "v.json", tmp_path / "vp", tmp_path / "v.joblib")
    fusion = reference_stage("fusion", "baseline_fusion", params, tiny_variant, tiny_video[0], utterances, splits,
                             tmp_path / "f.json", tmp_path / "fp", tmp_path / "f.joblib")

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
    assert video["test_wa"]["mean"] == pytest.approx((predicted == y[test]).mean())
    run = mlflow.get_run(fusion["mlflow_run_id"])
    assert run.data.params["n_features"] == str(83 + 750)
