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
from sklearn.svm import SVC

from tests.conftest import PROJECT, details, run_stage

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


def test_the_log_mel_statistics_are_librosa_s_bit_for_bit():
    """The reference's features without librosa (no numba compiling per worker), the same numbers as the recipe."""
    from avemo.baselines import logmel_statistics

    rng = np.random.default_rng(0)
    for n in (1, 399, 400, 401, 16000, 44101):
        y = (rng.standard_normal(n) * rng.choice([0.001, 0.1, 0.9])).astype(np.float32)
        mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=16000, n_fft=400, hop_length=160, n_mels=40))
        rms = librosa.feature.rms(y=y, frame_length=400, hop_length=160)[0]
        expected = np.concatenate([mel.mean(1), mel.std(1), [rms.mean(), rms.std(), n / 16000]])
        assert np.array_equal(logmel_statistics(y), expected), n


def with_roles(clips: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    out = clips.merge(splits[["utterance_id", "role"]], on="utterance_id")
    return out[out["class"].isin(CLASSES)].reset_index(drop=True)


@pytest.mark.slow
def test_baseline_audio_equals_a_logistic_regression_fitted_here(tiny_variant, tiny_utterances, tmp_path, project_dir):
    params, splits = project_dir
    utterances = tmp_path / "utterances.parquet"
    tiny_utterances.to_parquet(utterances)
    run_stage(params, "baseline", "--reference", "audio", "--audio", tiny_variant, "--utterances", utterances,
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
        run_stage(params, "baseline", "--reference", family, "--audio", tiny_variant, "--video", tiny_video[0],
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


def test_every_reference_row_is_offered_by_the_stage_and_run_by_both_pipelines():
    """A new reference is one row of REFERENCES; the pipelines' stage lists must name it (a test, not a habit)."""
    import argparse

    import yaml

    from avemo.references import REFERENCES, compared_references, project_reference
    from avemo.stages.baseline import arguments

    parser = argparse.ArgumentParser()
    arguments(parser)
    offered = next(a.choices for a in parser._actions if a.dest == "reference")
    assert list(offered) == list(REFERENCES)
    default = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    study = yaml.safe_load((PROJECT / "study/dvc.yaml").read_text())["stages"]
    assert default["baseline"]["foreach"] == list(REFERENCES), "dvc.yaml's baseline foreach: one item per row"
    assert study["baseline_3class"]["foreach"] == list(REFERENCES)
    assert study["baseline_loso"]["matrix"]["reference"] == [r for r in REFERENCES if REFERENCES[r].family != "video"]
    assert [r.name for r in REFERENCES.values() if r.needs_video] == ["video", "fusion", "egemaps_fusion"]
    assert [project_reference(f).name for f in ("audio", "video", "fusion")] == ["audio", "video", "fusion"]
    assert [r.name for r in compared_references("audio") if r.field] == ["egemaps", "egemaps_svm"]
    assert compared_references("video") == []


def test_the_egemaps_references_weight_the_classes_as_balanced():
    """On a table where the minority class needs its weight (30 vs 4 overlapping items), each eGeMAPS reference
    answers as the field's balanced, standardised model does, and not as the unweighted one would."""
    from avemo.baselines import fit_reference
    from avemo.references import REFERENCES
    from avemo.params import Baseline

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (30, 3)), rng.normal(0.8, 1, (4, 3))]) * [1, 10, 100]
    y = np.array([0] * 30 + [1] * 4)
    grid = rng.normal(0.4, 1, (200, 3)) * [1, 10, 100]
    p = Baseline()
    for name, balanced, plain in (
            ("egemaps", LogisticRegression(C=0.5, max_iter=5000, class_weight="balanced"),
             LogisticRegression(C=0.5, max_iter=5000)),
            ("egemaps_svm", SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced"),
             SVC(kernel="rbf", C=1.0, gamma="scale"))):
        scaler = StandardScaler().fit(X)
        expected = balanced.fit(scaler.transform(X), y).predict(scaler.transform(grid))
        assert (expected != plain.fit(scaler.transform(X), y).predict(scaler.transform(grid))).any()  # it matters
        np.testing.assert_array_equal(fit_reference(X, y, REFERENCES[name], p).predict(grid), expected)


@pytest.mark.slow
def test_the_egemaps_references_fit_the_fields_models_on_the_same_items(tiny_variant, tiny_video, tiny_egemaps,
                                                                       tiny_utterances, tmp_path, project_dir):
    """Logistic regression (C 0.5) and RBF SVM, standardised and balanced, on the egemaps table; their test
    predictions pair item by item with the log-mel reference's; eGeMAPS + faces beside the fusion models."""
    params, splits = project_dir
    utterances = tmp_path / "utterances.parquet"
    tiny_utterances.to_parquet(utterances)
    for name in ("audio", "egemaps", "egemaps_svm", "egemaps_fusion"):
        run_stage(params, "baseline", "--reference", name, "--audio", tiny_variant, "--video", tiny_video[0],
                  "--egemaps", tiny_egemaps, "--utterances", utterances, "--splits", splits,
                  "--stage", f"baseline@{name}", "--metrics", tmp_path / f"{name}.json", "--details", tmp_path / name,
                  "--model-out", tmp_path / f"{name}.joblib")

    clips = with_roles(pd.read_parquet(tiny_variant / "clips.parquet"), pd.read_parquet(splits))
    X = pd.read_parquet(tiny_egemaps / "features.parquet").set_index("clip_id").loc[clips["clip_id"]].to_numpy()
    y = clips["class"].map(CLASSES.index).to_numpy()
    train, test = (clips["role"] == "train").to_numpy(), (clips["role"] == "test").to_numpy()
    scaler = StandardScaler().fit(X[train])
    for name, model in (("egemaps", LogisticRegression(C=0.5, max_iter=5000, class_weight="balanced")),
                        ("egemaps_svm", SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced"))):
        predicted = model.fit(scaler.transform(X[train]), y[train]).predict(scaler.transform(X[test]))
        shared = json.loads((tmp_path / name / "predictions.json").read_text())  # the format every stage writes
        assert shared["items"] == clips.loc[test, "clip_id"].tolist()
        assert shared["seeds"] == {"fit": predicted.tolist()} and shared["y_true"] == y[test].tolist()
        summary = details(tmp_path / name)
        assert summary["test"]["wa"]["mean"] == pytest.approx((predicted == y[test]).mean())
        run = mlflow.get_run(summary["mlflow_run_id"])
        assert run.data.params["n_features"] == "88" and run.data.params["features"] == "egemaps"
        assert mlflow.get_experiment(run.info.experiment_id).name == "avemo-audio"
        assert {d.dataset.name for d in run.inputs.dataset_inputs} == {tiny_variant.name, "splits",
                                                                        f"egemaps-{tiny_egemaps.name}"}
    logmel = json.loads((tmp_path / "audio" / "predictions.json").read_text())
    assert json.loads((tmp_path / "egemaps" / "predictions.json").read_text()).keys() == logmel.keys()
    assert logmel["items"] == shared["items"]  # the same test items: comparisons pair
    fusion = details(tmp_path / "egemaps_fusion")
    run = mlflow.get_run(fusion["mlflow_run_id"])
    assert run.data.params["n_features"] == str(88 + 750)
    assert mlflow.get_experiment(run.info.experiment_id).name == "avemo-fusion"


def test_items_without_egemaps_features_are_left_out_and_counted(tiny_variant, tiny_splits, tiny_egemaps):
    from avemo.baselines import read_egemaps, reference_items
    from avemo.references import REFERENCES

    table = read_egemaps(tiny_egemaps)
    every, none = reference_items(REFERENCES["egemaps"], tiny_variant, None, table, tiny_splits, CLASSES, 0, "drop")
    lost = every["test"]["clip_id"].iloc[0]
    items, without = reference_items(REFERENCES["egemaps"], tiny_variant, None, table.drop(index=lost), tiny_splits,
                                     CLASSES, 0, "drop")
    assert none == 0 and without == 1
    assert items["test"]["clip_id"].tolist() == every["test"]["clip_id"].iloc[1:].tolist()
    assert {r: len(t) for r, t in items.items() if r != "test"} == {r: len(t) for r, t in every.items() if r != "test"}
