"""The results report: every number is a run's figure with its interval, every verdict comes from the interval of a
paired difference, every gap names the command that fills it; the pipeline ends with it."""

import json
import re

import mlflow
import numpy as np
import pytest
import yaml

from avemo.handover import CorpusSummary, SearchRecord, SearchSummary
from avemo.report import build_report
from avemo.stats import Predictions, compare, figure
from tests.conftest import PROJECT, project_params

PARAMS = project_params()
CORPUS = {"utterances": 700, "labelled": 484, "hours": 0.64, "classes": ["neutral", "happy", "angry", "sad"]}
CLASSES = CORPUS["classes"]
ITEMS = [f"Ses05F_impro01_F{k:03d}_c00" for k in range(120)]
TRUTH = np.arange(120) % 4


def answers(right: float, seed: int = 0, seeds: int = 3) -> Predictions:
    """Predictions that are right on a share of the items (each seed slightly differently)."""
    rng = np.random.default_rng(seed)
    rows = [np.where(rng.random(120) < right, TRUTH, (TRUTH + 1) % 4) for _ in range(seeds)]
    return Predictions(ITEMS, TRUTH, rows, [str(s) for s in range(seeds)], CLASSES)


AUDIO_MD5 = "data.data/processed/audio/full-raw/clips.parquet"


def log(experiment: str, stage: str, predictions: Predictions, tmp_path, **tags) -> str:
    """A finished run of a stage as the frame leaves it: figures with intervals, lineage tags, its predictions."""
    interval = figure(predictions)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=stage) as run:
        mlflow.set_tags({"dvc_stage": stage, "class_set": "standard4", "split_scheme": "fixed", "split_fold": "0",
                         AUDIO_MD5: "0f0f", **{k.replace("__", "."): v for k, v in tags.items()}})
        mlflow.log_metrics({"test_ua_mean": interval.estimate, "test_ua_low": interval.low,
                            "test_ua_high": interval.high})
        folder = tmp_path / "answers" / run.info.run_id
        folder.mkdir(parents=True)
        (folder / "predictions.json").write_text(json.dumps(predictions.to_dict()))
        mlflow.log_artifact(str(folder / "predictions.json"))
        return run.info.run_id


def row(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_every_number_is_a_run_s_figure_and_every_verdict_its_interval_s(tmp_path, monkeypatch, empty_mlflow_store):
    import shutil

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlruns").mkdir()
    shutil.copy(empty_mlflow_store, tmp_path / "mlruns" / "mlflow.db")
    shutil.copy(PROJECT / "dvc.yaml", tmp_path)  # the default pipeline: its stages' gaps say `dvc repro <stage>`
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    best = log("avemo-audio", "train_audio_best", answers(0.8), tmp_path)
    log("avemo-audio", "baseline@audio", answers(0.5, seed=1, seeds=1), tmp_path)
    log("avemo-audio", "train_audio_aug", answers(0.8), tmp_path)  # the same answers: no difference shown
    # not pairs: a run on another class set, and a run on another version of the audio variant
    log("avemo-video", "train_video", answers(0.7, seed=5), tmp_path, class_set="paper3")
    log("avemo-video", "baseline@video", answers(0.5, seed=6, seeds=1), tmp_path)
    log("avemo-fusion", "train_fusion_best", answers(0.8, seed=7), tmp_path, **{AUDIO_MD5.replace(".", "__"): "a1a1"})
    log("avemo-fusion", "baseline@fusion", answers(0.5, seed=8, seeds=1), tmp_path)
    grid = log("avemo-audio", "train_audio@cnn-full-raw", answers(0.7, seed=3), tmp_path)
    search = log("avemo-tune", "tune_audio", answers(0.7, seed=4), tmp_path)  # the search's parent run
    for k, right in enumerate((0.6, 0.7, 0.65, 0.75)):
        log("avemo-audio", f"train_audio_loso@{k}", answers(right, seed=10 + k), tmp_path)
        log("avemo-audio", f"baseline_loso@audio-{k}", answers(right - 0.2, seed=20 + k, seeds=1), tmp_path)
    tune = {"audio": {"study": "avemo-audio-1", "trials": {"complete": 7, "pruned": 3, "fail": 0, "running": 0},
                      "budget": {"trials": 10, "epochs_per_trial": 12, "timeout_s": None, "min_complete": 3},
                      "time_limit_reached": False, "searched_enough": True,
                      "best": {"trial": 3, "val_ua": 0.7011, "params": {}}, "hand_set": {"trial": 0, "val_ua": 0.6802},
                      "selection_items": 47, "confirmation": None,
                      "chosen": {"trial": 0, "overrides": {}, "why": "the hand-set params: ..."},
                      "stage": "tune_audio"}}
    # A study search: its space, its front and compact pick, and its choice against the hand-set recipe on test.
    searched = log("avemo-audio", "train_audio_searched", answers(0.9, seed=30), tmp_path)
    hand = log("avemo-audio", "train_audio_handset", answers(0.6, seed=31), tmp_path)
    vs_best = compare(answers(0.68, seed=40, seeds=1), answers(0.7, seed=41, seeds=1)).to_dict()
    # Its parent run and trial runs, as tune_worker.TrialRuns leaves them: trial 5's run has its measured latency,
    # trial 3's none, and another study's trial 5 beside them is not read.
    parent = log("avemo-tune", "tune_audio_study", answers(0.7, seed=42), tmp_path, optuna__study="avemo-audio-s1")
    client = mlflow.MlflowClient()
    for study, trial, latency in (("avemo-audio-s1", 5, 1.25), ("avemo-audio-s1", 3, None), ("other", 5, 9.75)):
        child = client.create_run(client.get_run(parent).info.experiment_id, tags={
            "mlflow.parentRunId": parent, "optuna.study": study, "optuna.trial": str(trial)})
        if latency is not None:
            client.log_metric(child.info.run_id, "latency_ms", latency)
        client.set_terminated(child.info.run_id)
    tune["study-audio"] = {**tune["audio"], "stage": "tune_audio_study", "study": "avemo-audio-s1",
                           "space": {"train.loop.lr": {"low": 0.0005, "high": 0.01, "log": True}, "blocks": [2, 3]},
                           "front": [{"trial": 5, "val_ua": 0.68, "parameters": 4321, "vs_best": vs_best},
                                     {"trial": 3, "val_ua": 0.7011, "parameters": 9876,
                                      "vs_best": compare(answers(0.7), answers(0.7)).to_dict()}],
                           "compact": {"trial": 5, "val_ua": 0.68, "parameters": 4321,
                                       "why": "the smallest trial of the front ..."}}
    # Nested: each fold's own search and its choice trained over the seeds, on all five folds (4 included).
    for k, right in enumerate((0.62, 0.72, 0.66, 0.77, 0.8)):
        log("avemo-audio", f"train_audio_loso_searched@{k}", answers(right, seed=50 + k), tmp_path)
        if k < 4:  # fold 4's search left its file but no run in this store (a fresh clone): not shown
            log("avemo-tune", f"tune_audio_loso@{k}", answers(0.7, seed=60 + k), tmp_path)
    nested = {k: {**tune["audio"], "stage": f"tune_audio_loso@{k}"} for k in range(5)}
    nested[2] = {**nested[2], "best": {"trial": 9, "val_ua": 0.74, "params": {}},
                 "confirmation": {"comparison": vs_best, "items": ["a"] * 40, "seeds": [101, 102, 103]},
                 "chosen": {"trial": 9, "overrides": {}, "why": "the best trial (9), confirmed ..."}}
    records = {"study-audio": {
        "best_after": [{"trials": 1, "best_trial": 0, "best_value": 0.68}, {"trials": 10, "best_trial": 3,
                                                                            "best_value": 0.7011}],
        "importances": {"train.loop.lr": 0.61, "blocks": 0.39},
        "ranking": {"judged_from_epoch": 4, "epochs": 12,
                    "by_epoch": [{"epoch": 0, "rho": 0.1, "trials": 7}, {"epoch": 4, "rho": 0.83, "trials": 7},
                                 {"epoch": 10, "rho": None, "trials": 7}]}}}
    text = build_report(tmp_path / "results.md", tmp_path / "figures", PARAMS, CorpusSummary.model_validate(CORPUS),
                        {f: SearchSummary.model_validate(r) for f, r in tune.items()},
                        records={f: SearchRecord.model_validate(r) for f, r in records.items()},
                        nested={k: SearchSummary.model_validate(r) for k, r in nested.items()})
    section = text.split("## 7.")[1]
    assert ("Best validation UA (selection half) as trials were added: 0.680 after 1 (trial 0), 0.701 after 10 "
            f"(trial 3). Its time is the `search_seconds` of its MLflow parent run `{parent[:8]}`") in section
    assert "`train.loop.lr` 0.61, `blocks` 0.39." in section
    assert ("(epoch 5 of 12) and at the last, over the 7 completed trials: 0.83; by epoch: 1: 0.10, 5: 0.83."
            in section)
    assert "**audio: the history.**" not in section  # the default search has no record here: nothing made up
    six = text.split("## 6.")[1].split("## 7.")[0]
    nested_row = row(six, "| audio, searched in its fold |")
    assert nested_row.count("`") == 10 and re.search(r"\| 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\] \|$", nested_row)
    assert "- audio, searched in its fold minus the hand-set recipe, paired by fold: " in six
    assert "- audio, searched in its fold minus the reference, paired by fold: " in six
    assert row(six, "| 2 | 7 complete, 3 pruned, 0 failed | 0.680 | 0.740 (trial 9) |").endswith("| trial 9 |")
    assert row(six, "| 0 | ").endswith("| — (hand-set best) | hand-set |")
    assert not any(line.startswith("| 4 | ") for line in six.splitlines())
    assert "`train.loop.lr` [0.0005, 0.01] (log); `blocks` {2, 3}" in section
    assert row(section, "| 5 | 0.680 | 4,321 | 1.25 ms |").endswith(f"]: **{vs_best['verdict']}** |")
    assert row(section, "| 3 | 0.701 | 9,876 | — |")  # its run has no latency: none shown, none made up
    assert "the compact pick** is trial 5 (4,321 parameters, validation UA 0.680, 1.25 ms measured)" in section
    assert "a measurement of the machine that ran the search" in section
    assert f"`{searched[:8]}` - `{hand[:8]}`" in row(section, "| choice - hand-set |")
    assert "**better**" in row(section, "| choice - hand-set |")

    assert text.startswith(f"# Results on `{PARAMS.corpus.root}`")
    headline = figure(answers(0.8))
    assert f"{headline.text()} `{best[:8]}`" in row(text, "| audio | `standard4`")
    assert f"`{grid[:8]}`" in row(text, "| cnn |")
    # Verdicts come from the intervals: 0.8 against 0.5 is better; the same skill again shows no difference.
    assert "**better**" in row(text, "| audio | `standard4`")
    reference = next(r for r in mlflow.search_runs(experiment_names=["avemo-audio"], output_format="list")
                     if r.data.tags["dvc_stage"] == "baseline@audio")
    assert f"`{best[:8]}` - `{reference.info.run_id[:8]}`" in row(text, "| audio | `standard4`")  # both runs named
    assert "not a pair: `class_set` is paper3" in row(text, "| video | `standard4`")
    assert f"not a pair: `{AUDIO_MD5}` is a1a1" in row(text, "| audio + video | `standard4`")
    assert "**no difference shown**" in row(text, "| on - off |")
    # Leave-one-session-out: five folds (fold 4 is the headline run), their mean and a t-interval over folds.
    loso = row(text.split("## 6.")[1], "| audio | ")
    assert loso.count("`") >= 10 and "over folds" not in loso
    assert re.search(r"\| 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\] \|$", loso)
    assert "audio minus its reference, paired by fold" in text and "emotion2vec" in text
    assert row(text.split("## 7.")[1], "| audio | 7 complete, 3 pruned, 0 failed of 10 x 12 epochs |").endswith(
        f"| `{search[:8]}` |")  # the search's run, found in the store
    # Stages that did not run show the gap and the exact command, never a zero.
    assert "— (gap: `dvc repro study/dvc.yaml:train_audio@cnn_lstm-full-clean`, or `make study`)" in text
    assert "— (gap: `dvc repro study/dvc.yaml:train_video_3class`, or `make study`)" in text
    # a default stage's gap names the default pipeline's command
    assert "— (gap: `dvc repro baseline@egemaps_svm`, or `make study`)" in row(text, "| audio vs eGeMAPS + SVM |")
    # a study search without its run in this store (a fresh clone has the committed file only) is a gap, not a row
    assert "study-fusion: — (gap: `dvc repro study/dvc.yaml:tune_fusion_study`, or `make study`)" in text
    assert "— (gap: `dvc repro study/dvc.yaml:train_fusion_pretrained`, or `make study`)" in text
    assert not re.search(r"\| 0\.000", text)
    assert "52.23" in text  # the study's numbers in their own column
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["modalities.png"]


#: The quick default and the study's plan, smaller: one grid cell beside the default's, one leave-one-session-out fold.
QUICK = {"synth": {"dialogues_per_session": 2},  # pre-training pairs another dialogue with every clip
         "train": {"seeds": [0, 1], "loop": {"epochs": 1}, "video": {"epochs": 1}, "fusion": {"epochs": 1}},
         "tune": {"workers": 1, "confirm_seeds": [11, 12], "audio": {"trials": 2, "epochs": 1},
                  "fusion": {"trials": 2, "epochs": 1}},
         "pretrain": {"loop": {"epochs": 1}, "efficiency": {"fractions": [0.5, 1.0], "loop": {"epochs": 1}}},
         "explain": {"clips_per_class": 2, "background_per_class": 2, "steps": 4, "repeats": 1},
         "study": {"models": ["cnn"], "grid_variants": ["clip3s-clean"], "loso_folds": [0], "refit_folds": [0, 4],
                   "search": {"audio": {"trials": 3, "epochs": 1}, "fusion": {"trials": 2, "epochs": 1},
                              "loso": {"trials": 2, "epochs": 1, "folds": [0, 4]}, "workers": 1}}}


def default_pipeline(root):
    """A tiny project after `make repro`: its report, its registry, a clean `dvc status`."""
    from tests.pipeline.project import make_project, run

    project = make_project(root, QUICK)
    run(["dvc", "repro"], project)
    text = (project / "reports" / "results.md").read_text()
    assert text.startswith("# Results on `data/raw/synthetic/IEMOCAP_full_release`")
    assert "gap: `dvc repro study/dvc.yaml:train_audio@cnn-clip3s-clean`, or `make study`" in text
    registry = json.loads((project / "reports" / "registry.json").read_text())
    assert registry["audio"]["model"] == "avemo-audio" and registry["fusion"]["model"] == "avemo-fusion"
    status = run(["dvc", "status", "dvc.yaml"], project).stdout  # the default's stages (the study's have not run)
    assert "up to date" in status, status  # clean after `make repro` (the report follows its deps' run ids)
    return project


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the default, its fresh clone, then a small study: ~12 min on 2 quiet cores
def test_the_default_pipeline_reruns_from_a_fresh_clone_then_make_study_fills_every_cell(tmp_path):
    """`make repro` in a tiny project; a fresh clone of its committed result reruns every stage and writes the same
    reports; then `make study` in the project runs every planned experiment and leaves no gap. One test, so the
    default pipeline runs once for both checks (it is the suite's largest cost)."""
    project = default_pipeline(tmp_path / "proj")
    a_fresh_clone_reruns_every_stage_and_writes_the_same_reports(project, tmp_path / "clone")
    make_study_fills_every_cell(project)


def a_fresh_clone_reruns_every_stage_and_writes_the_same_reports(project, clone):
    """A fresh clone of the committed result (git's files only: no DVC cache, no MLflow store) runs every
    stage again, so its store holds every run its report names; none is skipped as "didn't change"."""
    from tests.pipeline.project import run

    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "pipeline run"], project)
    run(["git", "clone", "-q", str(project), str(clone)], project.parent)
    again = run(["dvc", "repro"], clone)
    log = again.stdout + again.stderr
    stages = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    assert "didn't change" not in log and all(f"Running stage '{name}'" in log for name in stages)
    store = mlflow.MlflowClient(f"sqlite:///{clone / 'mlruns' / 'mlflow.db'}")
    named = set(re.findall(r"\] `([0-9a-f]{8})`", (clone / "reports" / "results.md").read_text()))
    experiments = [e.experiment_id for e in store.search_experiments()]
    ids = {r.info.run_id[:8] for r in store.search_runs(experiments, max_results=5000)}
    assert named and named <= ids

    # README: reports/ is reproduced byte for byte on a fresh clone, except what names a run (ids, times): every
    # file the default writes, its report included, equals the project's.
    committed = run(["git", "ls-files", "reports"], project).stdout.split()
    differ = [path for path in committed if masked(project / path) != masked(clone / path)]
    assert "reports/results.md" in committed and not differ, differ


def make_study_fills_every_cell(project):
    """`make study`: every planned experiment runs and writes the run its cell names; no gap is left."""
    from tests.pipeline.project import run

    plan = run(["avemo", "study", "--dry"], project).stdout
    assert "train_audio@cnn-clip3s-clean" in plan and "train_fusion_loso@0" in plan and "tune_audio_study" in plan
    assert "tune_audio_loso@4" in plan and "train_audio_loso_searched@0" in plan  # nested: each fold's own search
    assert "train_audio_joined_loso@4" in plan and "baseline_refit_loso@egemaps_svm-0" in plan  # final fits
    assert (project / "reports" / "details" / "explain" / "background.pt").exists()  # explain ran in the default
    study = run(["avemo", "study"], project).stdout
    text = (project / "reports" / "results.md").read_text()
    assert "gap:" not in text, [line for line in text.splitlines() if "gap:" in line]
    assert "- audio, searched in its fold minus the hand-set recipe, paired by fold: " in text
    assert ("- audio joined with eGeMAPS + logistic regression, fit on train + val, minus eGeMAPS + logistic "
            "regression, fit on train + val, paired by fold: ") in text
    assert "**study-audio: the history.** Best validation UA (selection half) as trials were added: " in text
    store = mlflow.MlflowClient(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    ids = {r.info.run_id[:8] for r in store.search_runs([e.experiment_id for e in store.search_experiments()],
                                                        max_results=5000)}
    assert set(re.findall(r"\] `([0-9a-f]{8})`", text)) <= ids
    assert "study: 0 stage(s) to run" in run(["avemo", "study", "--dry"], project).stdout  # done: nothing left
    assert "Running stage 'study/dvc.yaml:train_audio@cnn-clip3s-clean'" in study


RUN_NAMES = re.compile(rb"[0-9a-f]{32}|`[0-9a-f]{8}`|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{4}|Z)?|"
                       rb"git `[0-9a-f]{10}`")
TIMES = {"seconds", "started", "ended", "time", "wall_s", "search_seconds", "duration_s", "mlflow_run_id", "run_id",
         "mlflow_run_ids"}
#: The report's measured latencies (a search's front trials and compact pick, read from their MLflow runs): the
#: machine's measurement, not the search's output (reports/tune/<family>.json holds none, so its bytes are compared).
LATENCIES = re.compile(rb"\d+\.\d+ ms\b")


def masked(path) -> bytes:
    """A report file's bytes with what names a run (MLflow run ids, times, the commit) masked; JSON keys of times
    and run ids dropped."""
    data = path.read_bytes()
    if path.suffix == ".json":
        def drop(value):
            if isinstance(value, dict):
                return {k: drop(v) for k, v in value.items() if k not in TIMES and not k.endswith(("_seconds", "_s"))}
            return [drop(v) for v in value] if isinstance(value, list) else value
        data = json.dumps(drop(json.loads(data)), sort_keys=True).encode()
    return RUN_NAMES.sub(b"<run>", LATENCIES.sub(b"<ms>", data))


def test_the_store_finds_a_stage_s_runs_in_any_experiment_and_only_finished_top_level_ones(tmp_path, monkeypatch,
                                                                                           empty_mlflow_store):
    """A new stage that logs into its own experiment still fills its cell; child runs and unfinished runs never do."""
    import shutil

    from avemo.report import Store

    shutil.copy(empty_mlflow_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    new = log("avemo-newref", "baseline@newref", answers(0.6, seeds=1), tmp_path)  # an experiment named nowhere
    older = log("avemo-audio", "train_audio_best", answers(0.7), tmp_path)
    newer = log("avemo-audio", "train_audio_best", answers(0.8), tmp_path)
    client = mlflow.MlflowClient(uri)
    audio = client.get_experiment_by_name("avemo-audio").experiment_id
    child = client.create_run(audio, tags={"dvc_stage": "train_audio_aug", "mlflow.parentRunId": older})
    client.set_terminated(child.info.run_id)  # a finished child run (a seed, a trial): never a cell
    client.create_run(audio, tags={"dvc_stage": "train_video"})  # still running: not a figure yet
    registration = client.create_run(client.create_experiment("avemo-registry"), tags={
        "dvc_stage": "train_audio_best", "training_run_id": newer})  # the registry's record of that run, newer
    client.set_terminated(registration.info.run_id)
    store = Store(uri)
    assert store.cell("baseline@newref").run.info.run_id == new
    assert store.cell("train_audio_best").run.info.run_id == newer != older  # the newest finished run
    assert {"train_audio_aug", "train_video"}.isdisjoint(store.by_stage)
