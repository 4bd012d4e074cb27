"""The same seed gives the same weights in another process with other thread and CPU settings."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

#: What differs from one machine to the next (STACK_NOTES, measured): intra-op threads and oneDNN's ISA.
ANOTHER_MACHINE = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}
THIS_MACHINE = {"OMP_NUM_THREADS": "2", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}


def train_in_subprocess(tmp_path: Path, name: str, params: dict, variant: Path, splits: Path, env: dict,
                        store: Path) -> Path:
    """`avemo train` in a fresh process with `env` on top of ours; returns the weights file."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    (folder / "mlruns").mkdir()
    shutil.copy(store, folder / "mlruns" / "mlflow.db")
    environ = {**os.environ, **env, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"}
    command = [sys.executable, "-m", "avemo.cli", "--params", "params.yaml", "train", "--family", "audio",
               "--audio", str(variant), "--splits", str(splits), "--stage", "repro",
               "--model-dir", "models", "--metrics", "metrics.json", "--details", "details"]
    proc = subprocess.run(command, cwd=folder, env=environ, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return folder / "models" / "best.pt"


@pytest.mark.slow
def test_two_processes_with_other_thread_and_isa_settings_train_identical_weights(tiny_variant, tmp_path, project_dir,
                                                                                  empty_mlflow_store):
    params, splits = project_dir
    a = train_in_subprocess(tmp_path, "a", params, tiny_variant, splits, ANOTHER_MACHINE, empty_mlflow_store)
    b = train_in_subprocess(tmp_path, "b", params, tiny_variant, splits, THIS_MACHINE, empty_mlflow_store)
    assert a.read_bytes() == b.read_bytes()

    # The settings the stage pins matter: other intra-op threads give other weights, so
    # `train.threads` is part of the recipe (recorded on every run), not left to the machine.
    params = params.override({"train.threads": 1})
    c = train_in_subprocess(tmp_path, "c", params, tiny_variant, splits, THIS_MACHINE, empty_mlflow_store)
    state_a, state_c = (torch.load(x, weights_only=True)["state_dict"] for x in (a, c))
    assert any(not torch.equal(state_a[k], state_c[k]) for k in state_a)
