"""A stage's output that another stage reads is checked where it is written and parsed where it is read: a broken
layout names the file and the field, in the stage that wrote it, and `--best` applies exactly the chosen knobs."""

import json

import pytest

from avemo.handover import HandoverError, SearchChoice, TrainingDetails
from avemo.stages.frame import searched
from tests.conftest import project_params

CHOICE = {"study": "avemo-audio-1234", "stage": "tune_audio",
          "chosen": {"trial": 7, "overrides": {"train.loop.lr": 0.002, "models.audio.kind": "cnn_lstm"},
                     "why": "trial 7: better than the hand-set params on the confirmation half"}}


def test_best_applies_the_chosen_overrides_then_the_command_line(tmp_path):
    path = tmp_path / "audio.json"
    path.write_text(json.dumps(CHOICE))
    params = searched(project_params(), [path], ["train.loop.epochs=3"])
    assert (params.train.loop.lr, params.models.audio.kind, params.train.loop.epochs) == (0.002, "cnn_lstm", 3)


def test_a_choice_without_its_overrides_is_refused_naming_the_file_and_the_field(tmp_path):
    path = tmp_path / "audio.json"
    broken = {**CHOICE, "chosen": {"trial": 7, "why": "x"}}
    with pytest.raises(HandoverError, match=r"audio.json: not a SearchChoice file: chosen.overrides: Field required"):
        SearchChoice.checked(broken, path)  # the writer's check: the tune stage fails, not the training after it
    path.write_text(json.dumps(broken))
    with pytest.raises(HandoverError, match="chosen.overrides: Field required"):
        searched(project_params(), [path], [])
    with pytest.raises(HandoverError, match=r"nothing.json: missing \(the stage that writes it has not run\)"):
        SearchChoice.read(tmp_path / "nothing.json")


def test_training_details_keep_every_field_and_check_the_ones_other_stages_read(tmp_path):
    figure = {"mean": 0.6, "low": 0.5, "high": 0.7, "sd": 0.01, "per_seed": {"0": 0.6, "1": 0.61}}
    detail = {"stage": "train_audio_best", "mlflow_run_id": "a" * 32, "classes": ["neutral", "happy"],
              "test": {m: figure for m in ("ua", "wa", "f1")}, "model": {"seed": 1, "mlflow_run_id": "b" * 32},
              "epochs_at_chance": 0}
    assert TrainingDetails.checked(detail, tmp_path / "details.json") is detail  # written unchanged
    read = TrainingDetails.parse(detail, tmp_path / "details.json")
    assert (read.model.seed, read.test["ua"].per_seed["1"], read.epochs_at_chance) == (1, 0.61, 0)
    with pytest.raises(HandoverError, match=r"test.ua.per_seed: Field required"):
        TrainingDetails.checked({**detail, "test": {"ua": {k: v for k, v in figure.items() if k != "per_seed"}}},
                                tmp_path / "details.json")


def test_the_label_efficiency_summary_as_written_is_what_the_report_reads(tmp_path):
    """summarise() is the stage's own writer: its output parses, and a file that lost a field names it."""
    from avemo.handover import LabelEfficiency
    from avemo.stages.label_efficiency import summarise

    items, truth = [f"c{i}" for i in range(8)], [0, 1, 0, 1, 0, 1, 0, 1]
    runs = [{"fraction": 0.5, "arm": arm, "seed": seed, "labels": 4, "test_ua": 0.5, "y_true": truth,
             "y_pred": [0, 1, 0, 1, 0, 1, 1, 0] if arm == "pretrained" else [0, 0, 0, 1, 1, 1, 0, 1]}
            for arm in ("scratch", "pretrained") for seed in (0, 1)]
    summary = {**summarise(runs, items, ["neutral", "happy"], [0, 1]), "mlflow_run_id": "c" * 32}
    read = LabelEfficiency.parse(summary, tmp_path / "label_efficiency.json")
    assert read.fractions["0.5"].scratch.labels == 4
    assert read.fractions["0.5"].pretrained.ua["estimate"] == pytest.approx(0.75)
    del summary["fractions"]["0.5"]["gain"]
    with pytest.raises(HandoverError, match=r"label_efficiency.json: not a LabelEfficiency file: "
                                            r"fractions.0.5.gain: Field required"):
        LabelEfficiency.checked(summary, tmp_path / "label_efficiency.json")


def test_a_broken_explanation_is_refused_by_the_one_clip_explainer_naming_the_field(tmp_path, monkeypatch, capsys):
    """`avemo explain clip.wav` reads the stage's verdicts: a file whose check lost its `passed` is named, with the
    field, before any model is loaded."""
    from avemo.cli import main

    check = {"gain": 0.1, "gain_low": 0.02, "gain_high": 0.2, "passed": True}
    verdicts = {"clips": 8, "test_clips": 40, "mlflow_run_ids": {"audio": "a" * 32},
                "audio": {"faithfulness": {"occlusion/band": check},
                          "top_bands": {"fraction": 0.25, "drop": 0.1, "share": {"occlusion": 0.4}}},
                "video": {"faithfulness": {"grad_cam/region": {k: v for k, v in check.items() if k != "passed"}}},
                "fusion": {"audio_share": 0.3}}
    path = tmp_path / "explain.json"
    path.write_text(json.dumps(verdicts))
    (tmp_path / "clip.wav").write_bytes(b"")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["explain", str(tmp_path / "clip.wav"), "--verdicts", str(path), "--out", str(tmp_path)]) == 1
    assert ("explain.json: not an Explanation file: video.faithfulness.grad_cam/region.passed: Field required"
            in " ".join(capsys.readouterr().err.split()))
