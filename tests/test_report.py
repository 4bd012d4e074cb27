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
    fixed = {"split_scheme": "fixed", "split_fold": "0"}
    cnn = log("avemo-audio", "train_audio@cnn-full-raw", {"test_ua": 0.7123}, {"labels.set": "standard4"}, fixed)
    best = log("avemo-audio", "train_audio_best", {"test_ua_mean": 0.7512, "test_ua_sd": 0.0231},
               {"labels.set": "standard4", "train.augment.enabled": "False"}, fixed)
    video = log("avemo-video", "train_video", {"test_ua_mean": 0.7081, "test_ua_sd": 0.0144},
                {"labels.set": "standard4", "train.augment.enabled": "False"}, fixed)
    reference = log("avemo-audio", "baseline_audio", {"test_ua": 0.6931}, tags={"class_set": "standard4", **fixed})
    # Newer runs of other splits and settings: a LOSO fold and an augmented search's model.
    loso = log("avemo-fusion", "train_fusion_best", {"test_ua_mean": 0.8123, "test_ua_sd": 0.01},
               {"labels.set": "standard4", "train.augment.enabled": "False"}, {"split_scheme": "loso", "split_fold": "2"})
    augmented = log("avemo-audio", "train_audio_best", {"test_ua_mean": 0.6601, "test_ua_sd": 0.02},
                    {"labels.set": "standard4", "train.augment.enabled": "True"}, fixed)
    tune = {"audio": {"best_value_val_ua": 0.7011, "best_trial": 3, "hand_set_value_val_ua": 0.6802,
                      "best_params": {"train.loop.lr": 0.003}, "mlflow_parent_run_id": "abcdef1234567890"}}
    text = build_report(tmp_path / "results.md", tmp_path / "figures", PARAMS, CORPUS, tune)

    assert text.startswith(f"# Results on `{PARAMS['corpus']['root']}`")
    assert f"0.712 (run `{cnn[:8]}`)" in text
    assert f"0.751 ± 0.023 (run `{best[:8]}`)" in text and f"0.708 ± 0.014 (run `{video[:8]}`)" in text
    assert f"0.693 (run `{reference[:8]}`)" in text
    assert "| 0.680 | 0.701 (trial 3) |" in text
    # The headline rows keep the fixed split's unaugmented runs; the others go to their own tables.
    audio_row = next(line for line in text.splitlines() if line.startswith("| audio (best searched model) | `standard4`"))
    assert f"0.751 ± 0.023 (run `{best[:8]}`)" in audio_row
    assert f"| on (10-row shift, ±10° rotation) | 0.660 ± 0.020 (run `{augmented[:8]}`)" in text
    fusion_row = next(line for line in text.splitlines() if line.startswith("| audio + video (two-stream) | `standard4`"))
    assert "— (not run)" in fusion_row
    fusion_loso = next(line for line in text.splitlines() if line.startswith("| audio + video | "))
    assert fusion_loso.split(" | ")[3] == f"0.812 ± 0.010 (run `{loso[:8]}`)"  # fold 2 (test Session 3)
    assert fusion_loso.endswith("| 0.812 over 1 fold(s) |")
    # Stages that did not run show a gap and how to fill it, never a zero.
    assert "— (not run: add to `train.audio_models`" in text
    assert "run `dvc exp run -S split.scheme=loso -S train.fold=0`" in text
    assert "not run: `dvc repro train_audio_random`" in text and "run `dvc exp run -S labels.set=paper3`" in text
    assert not re.search(r"\| 0\.000", text)
    assert "52.23" in text  # the study's numbers in their own column
    # Without a label-efficiency run the figures folder (a DVC output) still holds the modalities chart.
    assert "— (train_fusion_pretrained not run" in text
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["modalities.png"]


@pytest.mark.slow
def test_dvc_repro_of_the_whole_default_pipeline_ends_with_the_report_naming_its_corpus_also_on_a_fresh_clone(tmp_path):
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

    # A fresh clone of the committed result (git's files only: no DVC cache, no MLflow store) runs every
    # stage again, so its store holds every run its report names; none is skipped as "didn't change".
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "pipeline run"], project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    again = run(["dvc", "repro"], clone)
    log = again.stdout + again.stderr
    stages = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    assert "didn't change" not in log and all(f"Running stage '{name}'" in log for name in stages)
    store = mlflow.MlflowClient(f"sqlite:///{clone / 'mlruns' / 'mlflow.db'}")
    named = set(re.findall(r"run `([0-9a-f]{8})`", (clone / "reports" / "results.md").read_text()))
    experiments = [e.experiment_id for e in store.search_experiments()]
    ids = {r.info.run_id[:8] for r in store.search_runs(experiments, max_results=5000)}
    assert named and named <= ids
