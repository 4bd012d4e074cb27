"""Sync pre-training: the loss done right, learning on held-out speakers, no labels, fine-tuning starts from it."""

import shutil

import pandas as pd
import pytest
import torch

from avemo.params import Sync
from avemo.training.sync import SyncPairs, contrastive_loss


def test_identical_embeddings_cost_nothing_as_a_positive_and_the_full_margin_as_a_negative():
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    assert contrastive_loss(a, a.clone(), torch.ones(4, dtype=torch.bool), margin=1.0).item() == pytest.approx(0.0)
    assert contrastive_loss(a, a.clone(), torch.zeros(4, dtype=torch.bool), margin=1.0).item() == pytest.approx(1.0)
    # The study's clamp (max=0) would make this a zero loss, and collapsed embeddings a minimum.


def test_the_gradient_pushes_a_negative_pair_apart():
    a = torch.tensor([[1.0, 0.0]], requires_grad=True)
    v = torch.tensor([[0.8, 0.6]], requires_grad=True)
    before = (a - v).norm().item()
    contrastive_loss(a, v, torch.zeros(1, dtype=torch.bool), margin=1.0).backward()
    with torch.no_grad():
        a -= 0.1 * a.grad
        v -= 0.1 * v.grad
    assert (a - v).norm().item() > before


def pairs(folder, splits, role, validation=False):
    return SyncPairs(folder / "full-raw", folder / "video", splits, role, 0, 0.0, Sync(), 4, validation)


def test_the_pre_training_data_path_cannot_reach_the_labels(small_project, tmp_path):
    """Scramble every emotion column of the clip tables: the pairs and their tensors do not change."""
    changed = tmp_path / "changed"
    shutil.copytree(small_project, changed)
    for table in (changed / "full-raw" / "clips.parquet", changed / "video" / "clips.parquet"):
        clips = pd.read_parquet(table)
        clips["class"] = "sad"
        if "label" in clips:
            clips["label"] = "xxx"
        clips.to_parquet(table)
    splits = pd.read_parquet(small_project / "splits.parquet")
    a, b = pairs(small_project, splits, "train"), pairs(changed, splits, "train")
    assert (a.pairs == b.pairs).all()
    for j in range(0, len(a), 7):
        assert all(torch.equal(x, y) for x, y in zip(a[j], b[j]))
    assert "class" not in a.items.columns and "label" not in a.items.columns
    validation = pairs(small_project, splits, "val", validation=True)
    assert set(validation.items["utterance_id"].str[:5]) == {"Ses04"}  # held-out speakers


@pytest.mark.slow
def test_a_short_pre_training_syncs_above_chance_on_held_out_speakers_and_starts_fusion(small_project, tmp_path,
                                                                                       project_dir):
    """Thresholds, on the speakers of Session 5, who neither trained the encoders nor chose their epoch
    (chance 0.5): 0.65 against the clip's own audio shifted in time (synchrony proper), 0.55 overall."""
    from torch.utils.data import DataLoader

    from avemo.models.checkpoint import read_checkpoint
    from avemo.training.recipe import (
        StageData,
        build_datasets,
        fusion_init,
        model_spec,
        prepare_model,
    )
    from avemo.training.sync import SyncTask, sync_model
    from tests.conftest import run_stage

    params, _ = project_dir
    params = params.override({"pretrain.loop.epochs": 6})
    out = tmp_path / "pretrain"
    run_stage(params, "pretrain", "--audio", small_project / "full-raw", "--video", small_project / "video",
              "--splits", small_project / "splits.parquet", "--out", out, "--metrics", tmp_path / "m.json",
              "--details", tmp_path / "plots")
    splits = pd.read_parquet(small_project / "splits.parquet")
    held_out = pairs(small_project, splits, "test", validation=True)
    model = sync_model(params.models, params.pretrain.sync, pairs(small_project, splits, "train"))
    model.load_state_dict(torch.load(out / "sync.pt", weights_only=True))
    accuracy = SyncTask(params.pretrain.sync).validate(model, DataLoader(held_out, batch_size=32), torch.device("cpu"))
    assert accuracy["sync_acc_shifted"] >= 0.65 and accuracy["sync_acc"] >= 0.55, accuracy

    params = params.override({"train.fusion_init": "pretrained"})
    data = build_datasets("fusion", params, StageData(small_project / "full-raw", small_project / "video",
                                                      small_project / "splits.parquet"), ["neutral", "happy", "angry", "sad"])
    model = prepare_model(model_spec("fusion", params, data), data, 0, fusion_init("pretrained", {"init_pretrained": out}, 0))
    for branch, file in ((model.audio, "audio.pt"), (model.video, "video.pt")):
        saved = {k.removeprefix("net."): v for k, v in read_checkpoint(out / file)[1].items()}
        assert all(torch.equal(v, saved[k]) for k, v in branch.state_dict().items() if not k.startswith("head."))
