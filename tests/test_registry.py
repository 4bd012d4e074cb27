"""Registry hand-off: register, promote behind a gate, refuse, roll back, fail safely; the pyfunc takes raw input."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from avemo import cli
from avemo.data.datasets import AudioVisualDataset, SpectrogramDataset
from avemo.inputs import Files
from avemo.registry import audit_trail, evaluation_table, promote, register, rollback
from avemo.serving import BadInput, EmotionModel, serving_config
from avemo.training.loop import predict
from tests.conftest import run_stage

CLASSES = ["neutral", "happy", "angry", "sad"]
pytestmark = pytest.mark.slow


def train_and_register(family, tiny_variant, tiny_video, tmp_path, params, name, seed=0):
    params = params.override({"train.seeds": [seed], "train.fusion_init": "scratch"})
    video = ("--video", tiny_video) if family == "fusion" else ()
    run_stage(params, "train", "--family", family, "--audio", tiny_variant, *video, "--splits", tmp_path / "splits.parquet",
              "--stage", f"train_{name}", "--model-dir", tmp_path / name, "--metrics", tmp_path / f"{name}.json",
              "--details", tmp_path / f"{name}-details")
    return register(family, params, tmp_path / name, tmp_path / f"{name}-details" / "details.json", tiny_variant)


def aliases(name: str) -> dict:
    return {alias: str(version) for alias, version in mlflow.MlflowClient().get_registered_model(name).aliases.items()}


def test_register_promote_refuse_rollback_and_the_audit_trail(tiny_variant, tiny_utterances, tiny_splits, tmp_path,
                                                              project_dir, capsys):
    params, _ = project_dir
    first = train_and_register("audio", tiny_variant, None, tmp_path, params, "a")
    assert first["registered"] and first["version"] == 1 and aliases("avemo-audio") == {"challenger": "1"}
    again = register("audio", params, tmp_path / "a", tmp_path / "a-details" / "details.json", tiny_variant)
    assert not again["registered"] and again["version"] == 1  # nothing changed, nothing new
    version = mlflow.MlflowClient().get_model_version("avemo-audio", "1")
    training_run = json.loads((tmp_path / "a-details" / "details.json").read_text())["mlflow_run_id"]
    assert version.run_id == training_run  # the version hangs off its training run: the UI walks between them
    assert mlflow.get_run(training_run).data.tags["mlflow.note.content"] == (
        "Registered as [avemo-audio version 1](#/models/avemo-audio/versions/1).")  # the run page's first lines
    assert version.tags["dvc_stage"] == "train_a" and version.tags["class_set"] == "standard4"
    assert version.tags["git_commit"] and any(k.startswith("data.") for k in version.tags)
    assert float(version.tags["test_ua_low"]) <= float(version.tags["test_ua_mean"]) <= float(version.tags["test_ua_high"])

    table = evaluation_table("audio", params, tiny_utterances, tiny_splits)
    decision = promote("avemo-audio", table)
    assert decision.action == "promote" and aliases("avemo-audio") == {"challenger": "1", "champion": "1"}

    second = train_and_register("audio", tiny_variant, None, tmp_path, params, "b", seed=1)
    assert second["version"] == 2
    refused = promote("avemo-audio", table, min_delta=2.0)  # UA can never gain 2
    assert refused.action == "refuse" and "does not clear --min-delta 2.0" in refused.reason
    assert refused.gain["difference"]["low"] <= refused.gain["difference"]["high"]  # the interval is on the record
    assert aliases("avemo-audio") == {"challenger": "2", "champion": "1"}
    promoted = promote("avemo-audio", table, min_delta=-1.0)  # any challenger clears a margin of -1
    assert promoted.action == "promote" and aliases("avemo-audio")["champion"] == "2"
    back = rollback("avemo-audio")
    assert back.action == "rollback" and aliases("avemo-audio") == {"challenger": "2", "champion": "1"}

    lines = audit_trail("avemo-audio")  # in the store, with the registry it describes
    assert [(x["decision"], x["from"], x["to"]) for x in lines] == [
        ("promote", None, "1"), ("refuse", "1", "2"), ("promote", "1", "2"), ("rollback", "2", "1")]
    assert set(lines[1]["metrics"]) == {"v1", "v2"} and "ua" in lines[1]["metrics"]["v2"]
    assert lines[1]["gain"]["verdict"] == "no difference shown"  # a gain of 2 is out of reach in either direction
    assert not (tmp_path / "reports").exists()
    capsys.readouterr()
    assert cli.main(["promote", "--model", "avemo-audio", "--audit"]) == 0
    assert " ".join(capsys.readouterr().out.split()).count("rolled back from v2") == 1  # `avemo promote --audit`
    tags = mlflow.MlflowClient().get_model_version("avemo-audio", "2").tags
    assert sum(k.startswith("decision.") for k in tags) >= 2  # refuse and promote are on the version too

    # A failure half-way (the audit tag cannot be written) leaves every alias as it was.
    client_class = mlflow.MlflowClient
    original = client_class.set_model_version_tag

    def broken(self, name, version, key, value):
        if key.startswith("decision."):
            raise mlflow.exceptions.MlflowException("tracking store is read-only")
        return original(self, name, version, key, value)

    client_class.set_model_version_tag = broken
    try:
        with pytest.raises(RuntimeError, match="aliases restored: champion is v1 as before"):
            promote("avemo-audio", table, min_delta=-1.0)
    finally:
        client_class.set_model_version_tag = original
    assert aliases("avemo-audio") == {"challenger": "2", "champion": "1"} and len(audit_trail("avemo-audio")) == 4

    # The pipeline's output is model a again (a revert): no new version, but challenger points at it again.
    reverted = register("audio", params, tmp_path / "a", tmp_path / "a-details" / "details.json", tiny_variant)
    assert not reverted["registered"] and reverted["version"] == 1
    assert aliases("avemo-audio") == {"challenger": "1", "champion": "1"}


def test_the_gate_promotes_a_clearly_better_challenger_and_refuses_an_equal_one_at_margin_zero():
    """The gate on the paired interval over the test utterances, at min_delta 0: a point gain alone never passes."""
    from avemo.registry import gate, paired_gain

    truth = [CLASSES[k % 4] for k in range(120)]
    wrong = [CLASSES[(k + 1) % 4] for k in range(120)]
    table = pd.DataFrame({"label": truth})
    champion = [t if k % 2 else w for k, (t, w) in enumerate(zip(truth, wrong))]  # right on half
    better = [t if k % 10 else w for k, (t, w) in enumerate(zip(truth, wrong))]  # right on nine in ten
    slightly = [t if (k % 2 or k < 4) else w for k, (t, w) in enumerate(zip(truth, wrong))]  # two more right
    action, reason = gate(paired_gain(table, better, champion, "ua", 0.0), "ua", 0.0)
    assert action == "promote" and "clears 0.0" in reason
    action, reason = gate(paired_gain(table, champion, champion, "ua", 0.0), "ua", 0.0)
    assert action == "refuse" and "no difference shown" in reason
    gain = paired_gain(table, slightly, champion, "ua", 0.0)
    assert gain.difference.estimate > 0 and gate(gain, "ua", 0.0)[0] == "refuse"  # a higher point figure is not enough


def test_the_pyfunc_on_a_wav_equals_the_training_code_on_the_same_weights(tiny_variant, tiny_video, tiny_utterances,
                                                                         tiny_splits, tmp_path, project_dir):
    """Train/serve parity: same clip, same probabilities, whether it comes from the stage's arrays or raw files."""
    params, _ = project_dir
    for family in ("audio", "fusion"):
        train_and_register(family, tiny_variant, tiny_video[0], tmp_path, params, family)
        model = EmotionModel()
        (tmp_path / "cfg.json").write_text(json.dumps(serving_config(params, tiny_variant)))
        model.load(tmp_path / family / "best.pt", tmp_path / "cfg.json", Files(local=True))
        dataset = (SpectrogramDataset(tiny_variant, tiny_splits, "test", CLASSES) if family == "audio" else
                   AudioVisualDataset(tiny_variant, tiny_video[0], tiny_splits, "test", CLASSES))
        _, _, probabilities = predict(model.model.network, DataLoader(dataset, batch_size=8), torch.device("cpu"))
        per_utterance = pd.DataFrame(probabilities).groupby(dataset.items["utterance_id"].to_numpy()[dataset.index]).mean()
        table = evaluation_table(family, params, tiny_utterances, tiny_splits, tiny_video[0])
        served = model.predict(None, table)
        ids = [Path(p).stem for p in table["audio_path"]]
        expected = per_utterance.loc[ids].to_numpy()
        assert np.allclose(served[[f"p_{c}" for c in CLASSES]].to_numpy(), expected, atol=1e-5), family
        assert list(served["emotion"]) == [CLASSES[i] for i in expected.argmax(1)]
    # The video is decoded beside the audio preparation; its problem still reaches the caller, named.
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00AVI junk")
    with pytest.raises(BadInput, match="broken.avi"):
        model.predict(None, table.head(1).assign(video_path=str(broken)))


def test_a_new_process_evaluates_a_version_in_the_project_s_store(project_dir, monkeypatch):
    """`avemo promote` in a new process loaded `models:/...` from MLflow's default store (./mlflow.db, created
    empty) and failed with "Registered Model ... not found": the project's store must be set before the load."""
    from avemo import registry
    from avemo.store import tracking_uri

    mlflow.set_tracking_uri(None)  # as a new process starts
    seen = []

    def load_model(uri):
        seen.append(mlflow.get_tracking_uri())
        raise RuntimeError("stop here")

    monkeypatch.setattr(mlflow.pyfunc, "load_model", load_model)
    with pytest.raises(RuntimeError, match="stop here"):
        registry.evaluate("avemo-audio", "1", pd.DataFrame({"label": []}))
    assert seen == [tracking_uri()]


def test_two_decisions_on_a_version_within_one_second_each_keep_their_tag(monkeypatch):
    """The version's decision tags were keyed to the second: a refusal and a promotion in the same second left one
    (the audit trail kept both; the version, the UI's view, lost one)."""
    from avemo import registry

    keys = []

    class Client:
        def set_model_version_tag(self, name, version, key, value):
            keys.append(key)

    monkeypatch.setattr(registry, "_alias", lambda client, name, alias: None)
    monkeypatch.setattr(registry, "_append_audit", lambda client, line: None)
    for action in ("refuse", "refuse"):
        registry.enact(Client(), registry.Decision("avemo-audio", action, "1", "2", {}, "reason"))
    assert len(keys) == 2 and len(set(keys)) == 2 and all(k.startswith("decision.") for k in keys)


def test_the_compact_pick_gets_its_own_alias_on_its_own_version_and_leaves_the_others(tiny_variant, tmp_path,
                                                                                      project_dir):
    from avemo.registry import register_compact

    params, _ = project_dir
    train_and_register("audio", tiny_variant, None, tmp_path, params, "a")
    compact_params = params.override({"train.seeds": [1], "models.audio.channels": [4, 8, 8]})
    run_stage(compact_params, "train", "--family", "audio", "--audio", tiny_variant, "--splits",
              tmp_path / "splits.parquet", "--stage", "train_audio_compact", "--model-dir", tmp_path / "c",
              "--metrics", tmp_path / "c.json", "--details", tmp_path / "c-details")
    decision = register_compact("audio", compact_params, tmp_path / "c", tmp_path / "c-details" / "details.json",
                                tiny_variant)
    assert (decision.action, decision.from_version, decision.to_version) == ("compact", None, "2")
    assert aliases("avemo-audio") == {"challenger": "1", "compact": "2"}  # champion/challenger untouched
    version = mlflow.MlflowClient().get_model_version("avemo-audio", "2")
    assert version.tags["role"] == "compact" and version.tags["dvc_stage"] == "train_audio_compact"
    assert [line["decision"] for line in audit_trail("avemo-audio")] == ["compact"]
    again = register_compact("audio", compact_params, tmp_path / "c", tmp_path / "c-details" / "details.json",
                             tiny_variant)
    assert again.to_version == "2" and aliases("avemo-audio") == {"challenger": "1", "compact": "2"}
