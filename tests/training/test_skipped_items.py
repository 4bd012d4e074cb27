"""A test clip without video is not lost silently: the training stage lists it, with its role and reason, in
skipped.csv beside details.json, and the counts reconcile (items in = items used + items skipped)."""

import json
import shutil

import pandas as pd
import pytest

from tests.conftest import run_stage

CLASSES = ["neutral", "happy", "angry", "sad"]


@pytest.mark.slow
def test_a_test_clip_without_video_is_recorded_as_skipped(tiny_variant, tiny_video, project_dir, tmp_path):
    params, splits = project_dir
    video = tmp_path / "video"
    shutil.copytree(tiny_video[0], video)
    table = pd.read_parquet(video / "clips.parquet")
    test_ids = set(pd.read_parquet(splits).query("role == 'test'")["utterance_id"])
    lost = table.loc[table["utterance_id"].isin(test_ids) & table["class"].isin(CLASSES),
                     "clip_id"].iloc[0]
    table.loc[table["clip_id"] == lost, "has_video"] = False
    table.to_parquet(video / "clips.parquet")
    run_stage(params.override({"train.loop.epochs": 1}), "train", "--family", "video", "--audio", tiny_variant,
              "--video", video, "--splits", splits, "--stage", "skips", "--model-dir", tmp_path / "models",
              "--metrics", tmp_path / "metrics.json", "--details", tmp_path / "details")
    skipped = pd.read_csv(tmp_path / "details" / "skipped.csv")
    assert skipped.to_dict("records") == [{"clip_id": lost, "role": "test", "reason": (
        "no usable video (the video stage's skip table says why), train.missing_video=drop")}]
    answered = json.loads((tmp_path / "details" / "predictions.json").read_text())["items"]
    in_test = table["utterance_id"].isin(test_ids) & table["class"].isin(CLASSES)
    assert sorted(answered) == sorted(set(table.loc[in_test, "clip_id"]) - {lost})


def test_the_stage_fails_when_items_in_are_neither_used_nor_skipped(tiny_variant, tiny_video, tiny_splits, tmp_path):
    from avemo.data.datasets import AudioVisualDataset
    from avemo.stages.frame import Frame
    from avemo.stages.train import write_skipped_items
    from avemo.training.recipe import Splits
    from tests.conftest import project_params

    roles = [AudioVisualDataset(tiny_variant, tiny_video[0], tiny_splits, r, CLASSES) for r in ("train", "val", "test")]
    data = Splits(*roles)
    frame = Frame("skips", project_params(), [])
    write_skipped_items(frame, tmp_path / "skipped.csv", "skips", data)  # nothing lost: an empty record
    assert pd.read_csv(tmp_path / "skipped.csv").empty
    data.test.items = data.test.items.iloc[1:]  # an item dropped without a record
    with pytest.raises(RuntimeError, match="skips: the fold's items: .* in, but .* out \\+ 0 skipped"):
        write_skipped_items(frame, tmp_path / "again.csv", "skips", data)
