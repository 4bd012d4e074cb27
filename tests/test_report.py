"""The results report: every number is a run's metric, every gap says why; the pipeline ends with it."""

import json
import re

import mlflow
import pytest
import yaml

from avemo.report import build_report
from tests.conftest import PROJECT

PARAMS = yaml.safe_load((PROJECT / "params.yaml").read_text())
CORPUS = {"utterances": 700, "labelled": 484, "hours": 0.64, "classes": ["neutral", "happy", "angry", "sad"]}


def log(experiment: str, stage: str, metrics: dict, params: dict | None = None, tags: dict | None = None) -> str:
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=stage) as run:
        mlflow.set_tags({"dvc_stage": stage, **(tags or {})})
        mlflow.log_params(params or {})
        mlflow.log_metrics(metrics)
        return run.info.run_id


def test_every_number_is_its_run_s_metric_and_a_missing_run_is_a_visible_gap(tmp_path, monkeypatch, empty_mlflow_store):
    import shutil

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlruns").mkdir()
    shutil.copy(empty_mlflow_store, tmp_path / "mlruns" / "mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    cnn = log("avemo-audio", "train_audio@cnn-full-raw", {"test_ua": 0.7123}, {"labels.set": "standard4"},
              {"split_scheme": "fixed"})
    best = log("avemo-audio", "train_audio_best", {"test_ua_mean": 0.7512, "test_ua_sd": 0.0231},
               {"labels.set": "standard4", "train.augment.enabled": "False"})
    video = log("avemo-video", "train_video", {"test_ua_mean": 0.7081, "test_ua_sd": 0.0144}, {"labels.set": "standard4"})
    reference = log("avemo-audio", "baseline_audio", {"test_ua": 0.6931}, tags={"class_set": "standard4"})
    tune = {"audio": {"best_value_val_ua": 0.7011, "best_trial": 3, "hand_set_value_val_ua": 0.6802,
                      "best_params": {"train.loop.lr": 0.003}, "mlflow_parent_run_id": "abcdef1234567890"}}
    text = build_report(tmp_path / "results.md", tmp_path / "figures", PARAMS, CORPUS, tune)

    assert text.startswith(f"# Results on `{PARAMS['corpus']['root']}`")
    assert f"0.712 (run `{cnn[:8]}`)" in text
    assert f"0.751 ± 0.023 (run `{best[:8]}`)" in text and f"0.708 ± 0.014 (run `{video[:8]}`)" in text
    assert f"0.693 (run `{reference[:8]}`)" in text
    assert "| 0.680 | 0.701 (trial 3) |" in text
    # Stages that did not run show a gap and how to fill it, never a zero.
    assert "— (not run: add to `train.audio_models`" in text
    assert "run `dvc exp run -S train.augment.enabled=true`" in text
    assert "not run: `dvc repro train_audio_random`" in text and "run `dvc exp run -S labels.set=paper3`" in text
    assert not re.search(r"\| 0\.000", text)
    assert "52.23" in text  # the study's numbers in their own column


@pytest.mark.slow
def test_dvc_repro_of_the_whole_default_pipeline_ends_with_the_report_naming_its_corpus(tmp_path):
    from tests.pipeline.project import make_project, run

    quick = {"synth": {"dialogues_per_session": 2},  # pre-training pairs another dialogue with every clip
             "train": {"seeds": [0, 1], "log_model": False, "loop": {"epochs": 1}, "video": {"epochs": 1},
                       "fusion": {"epochs": 1}},
             "tune": {"workers": 1, "audio": {"trials": 2, "epochs": 1}, "fusion": {"trials": 2, "epochs": 1}},
             "pretrain": {"loop": {"epochs": 1}, "efficiency": {"fractions": [0.5, 1.0], "loop": {"epochs": 1}}}}
    project = make_project(tmp_path / "proj", quick)
    run(["dvc", "repro"], project)
    text = (project / "reports" / "results.md").read_text()
    assert text.startswith("# Results on `data/raw/synthetic/IEMOCAP_full_release`")
    registry = json.loads((project / "reports" / "registry.json").read_text())
    assert registry["audio"]["model"] == "avemo-audio" and registry["fusion"]["model"] == "avemo-fusion"
    status = run(["dvc", "status"], project).stdout
    assert "up to date" in status
