"""The audio network joined with the field's reference, and final fits on the training and validation sessions."""

import json

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tests.conftest import details, run_stage

CLASSES = ["neutral", "happy", "angry", "sad"]


def test_the_product_of_experts_multiplies_and_renormalises():
    from avemo.joined import product_of_experts

    a = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    b = np.array([[0.2, 0.5, 0.3], [0.0, 0.5, 0.5]])
    joined = product_of_experts(a, b)
    np.testing.assert_allclose(joined[0], [0.4, 0.5, 0.1])  # 0.12, 0.15, 0.03 over 0.30: b overturns a's answer
    np.testing.assert_allclose(joined[1], [0.0, 0.1 / 0.4, 0.3 / 0.4], atol=1e-10)  # a zero stays (floored) zero
    assert joined.argmax(1).tolist() == [1, 2]


def test_a_final_fit_trains_on_the_validation_session_and_leaves_test_alone(tiny_splits):
    from avemo.data.splits import refit_roles

    refit = refit_roles(tiny_splits)
    roles = {r: set(tiny_splits.loc[tiny_splits["role"] == r, "utterance_id"]) for r in ("train", "val", "test")}
    after = {r: set(refit.loc[refit["role"] == r, "utterance_id"]) for r in ("train", "val", "test")}
    assert after == {"train": roles["train"] | roles["val"], "val": roles["val"], "test": roles["test"]}
    assert len(refit) == len(tiny_splits) + len(roles["val"])


def test_a_search_refuses_to_refit():
    from avemo.tuning.study import train_candidate
    from tests.conftest import project_params

    with pytest.raises(ValueError, match="train.refit .* is for final fits only"):
        train_candidate(None, project_params().override({"train.refit": True}), 0, None)


def test_join_refuses_a_reference_without_probabilities(tiny_egemaps):
    from avemo.joined import join_reference
    from tests.conftest import project_params

    with pytest.raises(ValueError, match=r"--join egemaps_svm: a network joins one of \['egemaps'\]"):
        join_reference("egemaps_svm", tiny_egemaps, None, project_params().baseline)


@pytest.mark.slow
def test_the_joined_model_answers_with_the_product_of_its_network_and_the_reference(
        tiny_variant, tiny_egemaps, tiny_utterances, tmp_path, project_dir):
    """Refit: the network and the reference learn from the train and val roles; every test answer is the argmax of
    the network's probabilities times the reference's (a balanced logistic regression on standardised eGeMAPS, fit
    here with scikit-learn); a test clip without functionals is skipped with its reason, and counts reconcile.
    The references refit the same way answer as that regression does."""
    from avemo.data.balance import resample_indices
    from avemo.data.datasets import SpectrogramDataset
    from avemo.models.checkpoint import load_checkpoint
    from avemo.training.loop import predict

    params, splits = project_dir
    params = params.override({"train.refit": True})
    clips = pd.read_parquet(tiny_variant / "clips.parquet").merge(
        pd.read_parquet(splits)[["utterance_id", "role"]], on="utterance_id")
    clips = clips[clips["class"].isin(CLASSES)].reset_index(drop=True)
    lost = clips.loc[clips["role"] == "test", "clip_id"].iloc[0]
    egemaps = tmp_path / "egemaps"
    egemaps.mkdir()
    table = pd.read_parquet(tiny_egemaps / "features.parquet")
    table[table["clip_id"] != lost].to_parquet(egemaps / "features.parquet", index=False)

    run_stage(params, "train", "--family", "audio", "--audio", tiny_variant, "--splits", splits, "--join", "egemaps",
              "--egemaps", egemaps, "--stage", "joined", "--model-dir", tmp_path / "models", "--metrics",
              tmp_path / "metrics.json", "--details", tmp_path / "details")
    utterances = tmp_path / "utterances.parquet"
    tiny_utterances.to_parquet(utterances)
    run_stage(params, "baseline", "--reference", "egemaps", "--audio", tiny_variant, "--egemaps", egemaps,
              "--utterances", utterances, "--splits", splits, "--stage", "refit", "--metrics", tmp_path / "r.json",
              "--details", tmp_path / "refit", "--model-out", tmp_path / "refit.joblib")

    X = table.set_index("clip_id")
    fit_on = clips[clips["role"].isin(["train", "val"])]
    test = clips[(clips["role"] == "test") & (clips["clip_id"] != lost)]
    scaler = StandardScaler().fit(X.loc[fit_on["clip_id"]])
    reference = LogisticRegression(C=0.5, max_iter=5000, class_weight="balanced").fit(
        scaler.transform(X.loc[fit_on["clip_id"]]), fit_on["class"].map(CLASSES.index))
    p_ref = reference.predict_proba(scaler.transform(X.loc[test["clip_id"]]))

    answers = json.loads((tmp_path / "details" / "predictions.json").read_text())
    assert answers["items"] == test["clip_id"].tolist()
    network, _ = load_checkpoint(tmp_path / "models" / "seed-0" / "best.pt")
    dataset = SpectrogramDataset(tiny_variant, pd.read_parquet(splits), "test", CLASSES)
    dataset = dataset.restricted((dataset.items["clip_id"] != lost).to_numpy())
    _, y_true, p_net = predict(network, torch.utils.data.DataLoader(dataset, batch_size=64), torch.device("cpu"))
    product = p_net * p_ref
    assert answers["seeds"] == {"0": product.argmax(1).tolist()} and answers["y_true"] == y_true.tolist()
    np.testing.assert_allclose(joblib.load(tmp_path / "models" / "reference.joblib").predict_proba(
        X.loc[test["clip_id"]].to_numpy(np.float64)), p_ref, atol=1e-4)  # lbfgs tolerance
    skipped = pd.read_csv(tmp_path / "details" / "skipped.csv")
    assert skipped.to_dict("records") == [{"clip_id": lost, "role": "test", "reason": (
        "no eGeMAPS functionals (reports/egemaps_skipped says why): the joined model's reference cannot answer it")}]

    summary = details(tmp_path / "details")
    run = mlflow.get_run(summary["mlflow_run_id"])
    assert run.data.params["join"] == "egemaps" and run.data.tags["fit_roles"] == "train+val"
    balance = params.train.balance  # the network's training items: both roles' clips, re-sampled to balance
    targets = fit_on["class"].map(CLASSES.index).to_numpy()
    assert int(run.data.tags["items_train"]) == len(resample_indices(targets, 4, balance.per_class, balance.seed))
    seed_run = mlflow.get_run(summary["model"]["mlflow_run_id"])
    network_ua = np.mean([np.mean(p_net.argmax(1)[y_true == c] == c) for c in np.unique(y_true)])
    assert seed_run.data.metrics["network_test_ua"] == pytest.approx(network_ua)

    refit = json.loads((tmp_path / "refit" / "predictions.json").read_text())
    assert refit["items"] == answers["items"]  # the same test items: the joined model pairs with its references
    assert refit["seeds"] == {"fit": p_ref.argmax(1).tolist()}


def test_join_needs_an_audio_network_and_the_functionals(tiny_variant, project_dir, tmp_path):
    params, splits = project_dir
    for family, extra in (("video", ["--egemaps", tmp_path]), ("audio", [])):
        with pytest.raises(ValueError, match="--join egemaps: joins an audio network .* and needs --egemaps"):
            run_stage(params, "train", "--family", family, "--audio", tiny_variant, "--splits", splits, "--join",
                      "egemaps", *extra, "--stage", "x", "--model-dir", tmp_path / "m", "--metrics",
                      tmp_path / "m.json", "--details", tmp_path / "d")
