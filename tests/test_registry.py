"""Registry hand-off: register, promote behind a gate, refuse, roll back, fail safely; the pyfunc takes raw input."""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from avemo.data.datasets import AudioVisualDataset, SpectrogramDataset
from avemo.registry import evaluation_table, promote, register, rollback
from avemo.serving import BadInput, EmotionModel, serving_config, wait_until_up
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


def audit_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_register_promote_refuse_rollback_and_the_audit_trail(tiny_variant, tiny_utterances, tiny_splits, tmp_path,
                                                              project_dir):
    params, _ = project_dir
    first = train_and_register("audio", tiny_variant, None, tmp_path, params, "a")
    assert first["registered"] and first["version"] == 1 and aliases("avemo-audio") == {"challenger": "1"}
    again = register("audio", params, tmp_path / "a", tmp_path / "a-details" / "details.json", tiny_variant)
    assert not again["registered"] and again["version"] == 1  # nothing changed, nothing new
    version = mlflow.MlflowClient().get_model_version("avemo-audio", "1")
    assert version.tags["dvc_stage"] == "train_a" and version.tags["class_set"] == "standard4"
    assert version.tags["git_commit"] and any(k.startswith("data.") for k in version.tags)
    assert float(version.tags["test_ua"]) >= 0

    table = evaluation_table("audio", params, tiny_utterances, tiny_splits)
    audit = tmp_path / "promotions.jsonl"
    decision = promote("avemo-audio", table, audit=audit)
    assert decision.action == "promote" and aliases("avemo-audio") == {"challenger": "1", "champion": "1"}

    second = train_and_register("audio", tiny_variant, None, tmp_path, params, "b", seed=1)
    assert second["version"] == 2
    refused = promote("avemo-audio", table, min_delta=2.0, audit=audit)  # UA can never gain 2
    assert refused.action == "refuse" and "ua" in refused.reason
    assert aliases("avemo-audio") == {"challenger": "2", "champion": "1"}
    promoted = promote("avemo-audio", table, min_delta=-1.0, audit=audit)  # any challenger passes
    assert promoted.action == "promote" and aliases("avemo-audio")["champion"] == "2"
    back = rollback("avemo-audio", audit=audit)
    assert back.action == "rollback" and aliases("avemo-audio") == {"challenger": "2", "champion": "1"}

    lines = audit_lines(audit)
    assert [(x["decision"], x["from"], x["to"]) for x in lines] == [
        ("promote", None, "1"), ("refuse", "1", "2"), ("promote", "1", "2"), ("rollback", "2", "1")]
    assert set(lines[1]["metrics"]) == {"v1", "v2"} and "ua" in lines[1]["metrics"]["v2"]
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
            promote("avemo-audio", table, min_delta=-1.0, audit=audit)
    finally:
        client_class.set_model_version_tag = original
    assert aliases("avemo-audio") == {"challenger": "2", "champion": "1"} and len(audit_lines(audit)) == 4


def test_the_pyfunc_on_a_wav_equals_the_training_code_on_the_same_weights(tiny_variant, tiny_video, tiny_utterances,
                                                                         tiny_splits, tmp_path, project_dir):
    """Train/serve parity: same clip, same probabilities, whether it comes from the stage's arrays or raw files."""
    params, _ = project_dir
    for family in ("audio", "fusion"):
        train_and_register(family, tiny_variant, tiny_video[0], tmp_path, params, family)
        model = EmotionModel()
        (tmp_path / "cfg.json").write_text(json.dumps(serving_config(params, tiny_variant)))
        model.load(tmp_path / family / "best.pt", tmp_path / "cfg.json")
        dataset = (SpectrogramDataset(tiny_variant, tiny_splits, "test", CLASSES) if family == "audio" else
                   AudioVisualDataset(tiny_variant, tiny_video[0], tiny_splits, "test", CLASSES))
        _, _, probabilities = predict(model.network, DataLoader(dataset, batch_size=8), torch.device("cpu"))
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


def write_wav(path: Path, seconds: float, rate: int = 16000, silent: bool = False) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    y = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    sf.write(path, y.astype(np.float32), rate, subtype="PCM_16")
    return path


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    return {"corrupt": (corrupt, "unreadable wav"), "silent": (write_wav(tmp_path / "silent.wav", 2, silent=True), "silent"),
            "short": (write_wav(tmp_path / "short.wav", 0.1), "too short"),
            "rate": (write_wav(tmp_path / "rate.wav", 2, rate=8000), "sample rate 8000 Hz")}


def test_avemo_predict_answers_on_a_wav_and_names_the_problem_of_a_bad_one(tiny_variant, tiny_utterances, tmp_path,
                                                                           project_dir):
    params, _ = project_dir
    result = train_and_register("audio", tiny_variant, None, tmp_path, params, "p")
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}
    wav = tiny_utterances["wav_path"].iloc[0]
    cli = [sys.executable, "-m", "avemo.cli", "predict"]
    ok = subprocess.run([*cli, wav, "--model", f"avemo-audio/{result['version']}"], env=env, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    answer = json.loads(ok.stdout.strip().splitlines()[-1])
    assert answer["emotion"] in CLASSES and sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    for kind, (path, message) in bad_inputs(tmp_path).items():
        bad = subprocess.run([*cli, str(path), "--model", "avemo-audio@challenger"], env=env, capture_output=True,
                             text=True)
        assert bad.returncode == 1 and message in " ".join(bad.stdout.split()), (kind, bad.stdout, bad.stderr)
        assert "Traceback" not in bad.stdout + bad.stderr


def test_mlflow_models_serve_answers_a_wav_and_refuses_a_corrupt_one(tiny_variant, tiny_utterances, tmp_path,
                                                                     project_dir):
    params, _ = project_dir
    train_and_register("audio", tiny_variant, None, tmp_path, params, "s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # the server runs uvicorn from the venv
    server = subprocess.Popen([shutil.which("mlflow", path=str(Path(sys.executable).parent)), "models", "serve", "-m",
                               "models:/avemo-audio@challenger", "--env-manager", "local", "-h", "127.0.0.1",
                               "-p", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server)

        def post(path: Path):
            body = json.dumps({"dataframe_records": [{"audio_b64": base64.b64encode(path.read_bytes()).decode()}]})
            request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body.encode(),
                                             {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        status, answer = post(Path(tiny_utterances["wav_path"].iloc[0]))
        (prediction,) = answer["predictions"]
        assert status == 200 and prediction["emotion"] in CLASSES
        assert sum(prediction[f"p_{c}"] for c in CLASSES) == pytest.approx(1, abs=1e-4)
        status, error = post(bad_inputs(tmp_path)["corrupt"][0])
        assert status == 400 and "unreadable wav" in error["message"]
    finally:
        server.terminate()
        server.wait(timeout=30)
