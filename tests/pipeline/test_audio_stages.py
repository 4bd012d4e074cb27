import re

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.pipeline.project import make_project, run

VARIANTS = ["full-raw", "full-clean", "clip3s-raw", "clip3s-clean"]


@pytest.mark.slow
def test_four_variants_and_a_cleanup_change_reruns_only_the_clean_ones(tmp_path):
    project = make_project(tmp_path / "proj")
    targets = ["split", "audio", *(f"study/dvc.yaml:audio_variant@{v}" for v in VARIANTS[1:])]
    run(["dvc", "repro", *targets], project)
    utterances = pd.read_parquet(project / "data/interim/utterances.parquet")
    labelled = utterances["class"].notna().sum()
    for variant in VARIANTS:
        out = project / "data/processed/audio" / variant
        clips = pd.read_parquet(out / "clips.parquet")
        array = np.load(out / "spectrograms.npy", mmap_mode="r")
        assert array.shape == (len(clips), 64, 300)  # 64 mel bands x 3 s of 10 ms frames
        assert (project / "reports/figures/audio" / f"{variant}.png").stat().st_size > 10_000
        skipped = pd.read_csv(project / "reports/audio_skipped" / f"{variant}.csv")
        assert clips["utterance_id"].nunique() + (skipped["action"] == "skipped").sum() == labelled
    full = pd.read_parquet(project / "data/processed/audio/full-raw/clips.parquet")
    assert len(full) == labelled and full["clip_id"].str.endswith("_c00").all()
    raw = np.load(project / "data/processed/audio/clip3s-raw/spectrograms.npy")
    clean = np.load(project / "data/processed/audio/clip3s-clean/spectrograms.npy")
    assert raw.shape == clean.shape and not np.array_equal(raw, clean)
    splits = pd.read_parquet(project / "data/interim/splits.parquet")
    assert set(splits.loc[splits.role == "test", "session"]) == {5}

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["audio"]["cleanup"]["clean"]["prop_decrease"] = 0.8
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro", *targets], project).stdout
    rerun = set(re.findall(r"Running stage '([^']+)'", out))
    assert rerun == {"study/dvc.yaml:audio_variant@full-clean", "study/dvc.yaml:audio_variant@clip3s-clean"}
