"""The data stages give the same bytes on another machine: two processes that look like two machines (other
OpenBLAS kernels, other BLAS and OpenMP thread counts, numpy without its AVX-512 loops, other worker counts) write
byte-identical corpora, tables, spectrograms, face frames and eGeMAPS functionals. Without the pin
(`compute.cpu_isa: native`) the same pair of processes writes other spectrograms: the test can fail."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import project_params

#: What another x86 machine looks like to the libraries (STACK_NOTES: measured).
ANOTHER_MACHINE = {"OPENBLAS_CORETYPE": "SandyBridge", "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "1",
                   "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}
THIS_MACHINE = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}
TINY = {"seed": 3, "dialogues_per_session": 1, "turns_per_dialogue": 6, "max_seconds": 4.5}


def data_stages(folder: Path, env: dict, isa: str = "avx2", workers: int = 2) -> dict[str, str]:
    """synth -> index -> split -> audio (two variants) -> video -> egemaps, each `avemo` verb in a fresh process;
    md5 per file."""
    folder.mkdir()
    params = project_params().override({"compute.cpu_isa": isa, **{f"synth.{k}": v for k, v in TINY.items()},
                                        "synth.workers": workers, "audio.workers": workers, "video.workers": workers})
    (folder / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    environ = {k: v for k, v in os.environ.items() if k not in (*ANOTHER_MACHINE, *THIS_MACHINE, "AVEMO_PINNED")}
    corpus = "data/raw/synthetic/IEMOCAP_full_release"
    commands = [["synth", "--out", "data/raw/synthetic"],
                ["index", corpus, "--out", "utterances.parquet", "--skipped", "index.csv", "--counts", "corpus.json"],
                ["split", "utterances.parquet", "--out", "splits.parquet"],
                *(["audio", "utterances.parquet", "--variant", v, "--out", f"audio/{v}", "--skipped", f"{v}.csv",
                   "--counts", f"{v}.json", "--figure", f"{v}.png"] for v in ("full-raw", "clip3s-clean")),
                ["video", "audio/full-raw", "--out", "video", "--skipped", "video.csv", "--counts", "video.json",
                 "--figures", "faces"],
                ["egemaps", "audio/full-raw", "--utterances", "utterances.parquet", "--out", "egemaps",
                 "--skipped", "egemaps.csv", "--counts", "egemaps.json"]]
    for command in commands:
        proc = subprocess.run([sys.executable, "-m", "avemo.cli", *command], cwd=folder, env={**environ, **env},
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    data = [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".npy", ".parquet", ".wav", ".avi", ".txt")]
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in data}


@pytest.mark.slow
def test_two_machines_write_byte_identical_data(tmp_path):
    this = data_stages(tmp_path / "this", THIS_MACHINE, workers=2)
    other = data_stages(tmp_path / "other", ANOTHER_MACHINE, workers=1)
    assert sum(k.endswith(".wav") for k in this) >= 30 and this == other  # 5 sessions x 6 turns, at least
    assert "audio/clip3s-clean/spectrograms.npy" in this and "video/frames.npy" in this
    assert "egemaps/features.parquet" in this  # openSMILE's functionals, bit for bit

    # What the pin does: unpinned, the same two machines compute other spectrograms (BLAS kernels and threads,
    # numpy's log10), while the corpus itself (stdlib and PyAV writing) does not depend on them.
    this = data_stages(tmp_path / "this-native", THIS_MACHINE, isa="native")
    other = data_stages(tmp_path / "other-native", ANOTHER_MACHINE, isa="native")
    differ = {k for k in this if this[k] != other.get(k)}
    assert "audio/full-raw/spectrograms.npy" in differ
    assert not {k for k in differ if k.startswith("data/raw/")}
