"""Shared fixtures: one tiny synthetic corpus per test session (generation takes seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avemo.corpus.synth import SynthConfig, synthesize

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = Path(__file__).resolve().parents[1]
STANDARD4 = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}

#: 5 sessions x 1 dialogue x 6 turns: every session, both genders, seconds to make.
TINY = SynthConfig(seed=3, dialogues_per_session=1, turns_per_dialogue=6, max_seconds=4.5, workers=2)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> tuple[Path, object]:
    """(release root, ground-truth manifest) of a tiny synthetic corpus."""
    out = tmp_path_factory.mktemp("tiny") / "synthetic"
    manifest = synthesize(TINY, out)
    return out / "IEMOCAP_full_release", manifest


@pytest.fixture(scope="session")
def tiny_utterances(tiny_corpus):
    from avemo.corpus.iemocap import read_corpus

    utterances, _ = read_corpus(tiny_corpus[0], STANDARD4)
    return utterances


@pytest.fixture(scope="session")
def tiny_splits(tiny_utterances):
    from avemo.data.splits import make_splits

    return make_splits(tiny_utterances, "fixed")


@pytest.fixture(scope="session")
def tiny_variant(tiny_utterances, tmp_path_factory):
    """The clip3s-raw variant of the tiny corpus (labelled utterances only, as the stage does)."""
    from avemo.audio.segment import SegmentPolicy
    from avemo.audio.spectrogram import SpectrogramParams
    from avemo.audio.stage import VariantConfig, build_variant

    out = tmp_path_factory.mktemp("variant") / "clip3s-raw"
    cfg = VariantConfig(SegmentPolicy(), None, SpectrogramParams(), workers=2)
    build_variant(tiny_utterances[tiny_utterances["class"].notna()], cfg, out)
    return out


@pytest.fixture(scope="session")
def tiny_video(tiny_variant, tmp_path_factory):
    """The video stage's output for the tiny clip3s-raw variant: (folder, table, skipped)."""
    import pandas as pd

    from avemo.video.stage import VideoConfig, build_video

    out = tmp_path_factory.mktemp("video") / "clip3s"
    table, skipped = build_video(pd.read_parquet(tiny_variant / "clips.parquet"), VideoConfig(workers=2), out)
    return out, table, skipped


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema migrated: creating one costs seconds, copying it nothing."""
    import mlflow

    folder = tmp_path_factory.mktemp("mlflow-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri).search_experiments()  # runs the migrations
    return folder / "mlflow.db"


@pytest.fixture
def project_dir(tmp_path, monkeypatch, empty_mlflow_store, tiny_splits):
    """A working directory with its own MLflow store (mlruns/mlflow.db), the project's params and the tiny splits."""
    import shutil

    import yaml

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "mlruns").mkdir()
    shutil.copy(empty_mlflow_store, tmp_path / "mlruns" / "mlflow.db")
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["train"]["loop"].update(batch_size=8, epochs=2)
    params["train"]["log_model"] = False
    splits = tmp_path / "splits.parquet"
    tiny_splits.to_parquet(splits)
    return params, splits
