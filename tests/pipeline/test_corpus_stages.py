import json
import sys

import pandas as pd
import pytest

from tests.pipeline.project import make_project, run


@pytest.mark.slow
def test_dvc_repro_synth_and_index_then_status_is_clean(tmp_path):
    project = make_project(tmp_path / "proj")
    out = run(["dvc", "repro", "index"], project).stdout
    assert "Running stage 'synth'" in out and "Running stage 'index'" in out

    utterances = pd.read_parquet(project / "data/interim/utterances.parquet")
    corpus = json.loads((project / "reports/corpus.json").read_text())
    manifest = pd.read_parquet(project / "data/raw/synthetic/manifest.parquet")
    assert len(utterances) == len(manifest) == 30
    assert corpus["utterances"] == 30 and corpus["items_in"] == 30 + corpus["skipped"]
    assert sum(corpus["per_class"].values()) == utterances["class"].notna().sum()
    assert set(corpus["per_speaker"]) <= {f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"}
    assert (project / "dvc.lock").exists()

    status = run(["dvc", "status", "index"], project).stdout
    assert "up to date" in status
    again = run(["dvc", "repro", "index"], project).stdout
    assert "didn't change, skipping" in again and "Running stage" not in again

    # `dvc exp run -S labels.set=paper3 --dry` fails here (DVC's temporary copy has no data); make exp-dry lists
    # what would run, and leaves params.yaml as it was.
    params = (project / "params.yaml").read_bytes()
    dry = run([sys.executable, "-m", "avemo.exps", "--dry", "-S", "labels.set=paper3", "index"], project).stdout
    assert "Stage 'synth' didn't change, skipping" in dry and "Running stage 'index'" in dry, dry
    assert (project / "params.yaml").read_bytes() == params
    assert "up to date" in run(["dvc", "status", "index"], project).stdout
