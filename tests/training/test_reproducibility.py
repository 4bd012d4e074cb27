"""README's claim: pinned (`compute.cpu_isa: avx2`), a machine with AVX-512 and one with only AVX2 train the same
weights from the same seed; unpinned they do not.

Another machine is simulated in a child process by what it offers the libraries before they load (STACK_NOTES,
measured: oneDNN's ISA changes the weights). The AVX2 machine's caps hold whatever the pin does: the pin writes the
same `ONEDNN_MAX_CPU_ISA`/`ATEN_CPU_CAPABILITY` values, and `MKL_ENABLE_INSTRUCTIONS` is not among its keys. The
AVX-512 machine offers AVX-512 explicitly, so only a working pin brings it down to AVX2. The unpinned control runs
the very same two machines with `cpu_isa: native`, so the pin is the only difference between the pairs.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from avemo.determinism import _cpu_has, pinned_environment

#: What each machine offers (the variables oneDNN, ATen and MKL read when they load).
AVX512_MACHINE = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "ATEN_CPU_CAPABILITY": "avx512"}
AVX2_MACHINE = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
#: Every variable a pin may set: none of them leaks from the test's own process into a child.
PIN_KEYS = {k for isa in ("avx2", "avx512") for k in pinned_environment(isa)}


def train_in_subprocess(tmp_path: Path, name: str, params, variant: Path, splits: Path, machine: dict,
                        store: Path) -> dict[str, torch.Tensor]:
    """`avemo train` in a fresh process on the simulated `machine`; returns the trained weights."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    (folder / "mlruns").mkdir()
    shutil.copy(store, folder / "mlruns" / "mlflow.db")
    base = {k: v for k, v in os.environ.items() if k not in PIN_KEYS | set(AVX2_MACHINE)}
    environ = {**base, **machine, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"}
    command = [sys.executable, "-m", "avemo.cli", "--params", "params.yaml", "train", "--family", "audio",
               "--audio", str(variant), "--splits", str(splits), "--stage", "repro",
               "--model-dir", "models", "--metrics", "metrics.json", "--details", "details"]
    proc = subprocess.run(command, cwd=folder, env=environ, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return torch.load(folder / "models" / "best.pt", weights_only=True)["state_dict"]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.skipif(not _cpu_has("avx512f"), reason="an AVX-512 machine cannot be simulated on a CPU without it")
def test_pinned_avx512_and_avx2_machines_train_identical_weights_unpinned_ones_do_not(
        tiny_variant, tmp_path, project_dir, empty_mlflow_store):
    params, splits = project_dir
    pinned = params.override({"compute.cpu_isa": "avx2"})
    wide = train_in_subprocess(tmp_path, "pinned-avx512", pinned, tiny_variant, splits, AVX512_MACHINE,
                               empty_mlflow_store)
    narrow = train_in_subprocess(tmp_path, "pinned-avx2", pinned, tiny_variant, splits, AVX2_MACHINE,
                                 empty_mlflow_store)
    assert same(wide, narrow), "pinned to avx2, the AVX-512 and the AVX2 machine trained other weights"

    native = params.override({"compute.cpu_isa": "native"})
    wide = train_in_subprocess(tmp_path, "native-avx512", native, tiny_variant, splits, AVX512_MACHINE,
                               empty_mlflow_store)
    narrow = train_in_subprocess(tmp_path, "native-avx2", native, tiny_variant, splits, AVX2_MACHINE,
                                 empty_mlflow_store)
    assert not same(wide, narrow), "unpinned, the two machines trained the same weights: the test cannot tell"
