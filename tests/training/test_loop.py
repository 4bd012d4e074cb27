import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from avemo.metrics import classification_metrics
from avemo.models.audio import AudioNet, AudioNetConfig
from avemo.params import Loop
from avemo.training.loop import seed_everything, train

CLASSES = ["neutral", "happy", "angry", "sad"]
TINY = AudioNetConfig(kind="cnn", channels=(4, 8), kernels=((3, 3), (3, 3)), padding=(True, True),
                      fc=16, dropout=0.0, batch_norm=False, pooling="flatten", input_shape=(40, 60))


def model(seed=0):
    seed_everything(seed)  # weights are drawn when the model is built
    return AudioNet(TINY, 4)


def tiny_data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 40, 60, generator=g)
    y = torch.arange(n) % 4
    x[torch.arange(n), 0, y * 10, :] += 3.0  # a learnable cue per class
    return TensorDataset(x, y)


def test_metrics_match_hand_computed_values():
    m = classification_metrics(np.array([0, 0, 1, 1, 2, 3]), np.array([0, 1, 1, 1, 2, 0]), CLASSES)
    assert m["wa"] == pytest.approx(4 / 6)
    assert m["ua"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert m["confusion"][0] == [1, 1, 0, 0] and m["recall"]["sad"] == 0.0


def test_the_loop_drives_the_loss_on_a_tiny_fixed_batch_close_to_zero(tmp_path):
    data = tiny_data()
    history = train(model(), data, data, CLASSES,
                    Loop(epochs=60, batch_size=16, lr=3e-3, weight_decay=0.0, patience=100), tmp_path)
    assert history.epochs[-1]["train_loss"] < 0.05
    assert history.best_score == 1.0


def test_same_seed_same_metrics(tmp_path):
    cfg = Loop(epochs=3, batch_size=4, lr=1e-3)
    runs = [train(model(), tiny_data(), tiny_data(seed=1), CLASSES, cfg, tmp_path / str(k)).epochs
            for k in range(2)]
    assert runs[0] == runs[1]


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    cfg = Loop(epochs=4, batch_size=4, lr=1e-3, patience=10)
    straight = train(model(), tiny_data(), tiny_data(seed=1), CLASSES, cfg, tmp_path / "a").epochs

    class Killed(Exception):
        pass

    def kill_after_epoch_1(epoch, record):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train(model(), tiny_data(), tiny_data(seed=1), CLASSES, cfg, tmp_path / "b", on_epoch=kill_after_epoch_1)
    seen = []
    resumed = train(model(), tiny_data(), tiny_data(seed=1), CLASSES, cfg, tmp_path / "b",
                    on_epoch=lambda e, r: seen.append(e)).epochs
    assert seen == [0, 1, 2, 3]  # epochs 0-1 replayed from the checkpoint, 2-3 trained
    assert [r["epoch"] for r in resumed] == [0, 1, 2, 3]
    assert resumed == straight


def test_band_statistics_come_from_the_training_split_only(tiny_variant, tiny_splits, tmp_path):
    """Changing every test item's audio changes nothing in the normalisation the model is given."""
    import shutil

    from avemo.data.datasets import SpectrogramDataset

    changed = tmp_path / "variant"
    shutil.copytree(tiny_variant, changed)
    array = np.load(changed / "spectrograms.npy", mmap_mode="r+")
    test_rows = SpectrogramDataset(changed, tiny_splits, "test", CLASSES).items["row"].to_numpy()
    array[test_rows] = array[test_rows] + 25.0  # 25 dB louder test items
    array.flush()
    before = SpectrogramDataset(tiny_variant, tiny_splits, "train", CLASSES).band_statistics()
    after = SpectrogramDataset(changed, tiny_splits, "train", CLASSES).band_statistics()
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    test_stats = SpectrogramDataset(changed, tiny_splits, "test", CLASSES).band_statistics()
    assert not torch.allclose(test_stats[0], after[0])  # the change is real: the test split's own mean moved


@pytest.mark.slow
def test_the_default_recipe_leaves_chance_level_loss_within_two_epochs(tiny_variant, tiny_splits, tmp_path, project_dir):
    from avemo.training.loop import epochs_at_chance
    from avemo.training.recipe import (
        StageData,
        build_datasets,
        fit,
        model_spec,
        prepare_model,
    )

    params, splits = project_dir
    params = params.override({"train.loop.epochs": 4})
    data = build_datasets("audio", params, StageData(tiny_variant, None, splits), CLASSES)
    for seed in (0, 1, 2):
        model = prepare_model(model_spec("audio", params, data), data, seed)
        history = fit(model, "audio", params, data, seed, tmp_path / str(seed))
        assert epochs_at_chance(history, 4) <= 2, [e["train_loss"] for e in history.epochs]
