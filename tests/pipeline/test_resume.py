"""A training stage killed under `dvc repro` resumes where it stopped, and ends with the figures of
an uninterrupted run; state from other params is set aside, never resumed."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
import torch
import yaml

from tests.pipeline.project import make_project, project_env, run

STAGE = "study/dvc.yaml:train_audio@cnn-full-raw"
TRAINING = {"train": {"seeds": [0], "loop": {"epochs": 40, "batch_size": 8}},
            "study": {"models": ["cnn"], "grid_variants": ["full-raw"]}}
DETAILS = "reports/details/train_audio-cnn-full-raw/details.json"


def saved_state(project: Path) -> Path:
    return project / ".avemo" / "resume" / "train_audio_cnn-full-raw" / "seed-0" / "last.pt"


def kill_after_first_epochs(project: Path) -> int:
    """Start `dvc repro STAGE`, SIGKILL its whole process group once training has saved an epoch; return that epoch."""
    proc = subprocess.Popen(["dvc", "repro", STAGE], cwd=project, env=project_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not saved_state(project).exists():
        assert proc.poll() is None and time.time() < deadline, "the stage ended or hung before saving an epoch"
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return torch.load(saved_state(project), weights_only=True)["epoch"]


def test_resume_state_loads_weights_only(tmp_path):
    """A checkpoint that would run code when unpickled is refused and set aside, not executed."""
    from avemo.training.loop import load_resumable

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    last = tmp_path / "last.pt"
    torch.save({"key": "k", "payload": Payload()}, last)
    assert load_resumable(last, "k", torch.device("cpu")) is None
    assert not (tmp_path / "pwned").exists() and not last.exists()
    assert list(tmp_path.glob("last.stale-*.pt"))


@pytest.mark.slow
def test_a_training_killed_under_dvc_repro_resumes_and_ends_as_an_uninterrupted_run(tmp_path):
    project = make_project(tmp_path / "proj", TRAINING)
    saved_epoch = kill_after_first_epochs(project)
    assert 0 <= saved_epoch < 39

    out = run(["dvc", "repro", STAGE], project).stdout
    assert f"seed 0 resumed from epoch {saved_epoch + 1}" in out
    assert not (project / ".avemo" / "resume" / "train_audio_cnn-full-raw").exists()  # cleaned up once done
    resumed = json.loads((project / DETAILS).read_text())
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    run_id = resumed["model"]["mlflow_run_id"]  # the seed's run
    tags = mlflow.get_run(run_id).data.tags
    assert tags["resumed_from_epoch"] == str(saved_epoch + 1)
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(run_id, "val_ua")]
    assert sorted(set(steps)) == list(range(40))  # one MLflow run holds every epoch, before and after the kill

    run(["dvc", "repro", "-f", "-s", STAGE], project)  # the same stage, uninterrupted
    straight = json.loads((project / DETAILS).read_text())
    for metric in ("ua", "wa", "f1"):
        assert resumed["test"][metric] == straight["test"][metric]
    assert straight["model"]["mlflow_run_id"] != run_id


@pytest.mark.slow
def test_state_saved_with_other_params_is_set_aside_not_resumed(tmp_path):
    project = make_project(tmp_path / "proj", TRAINING)
    kill_after_first_epochs(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["loop"]["lr"] = 0.001
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    out = run(["dvc", "repro", STAGE], project).stdout
    assert "set aside" in out and "resumed from epoch" not in out
    assert list((project / ".avemo" / "resume" / "stale").glob("train_audio_cnn-full-raw-*"))
    run_id = json.loads((project / DETAILS).read_text())["model"]["mlflow_run_id"]
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    assert "resumed_from_epoch" not in mlflow.get_run(run_id).data.tags
