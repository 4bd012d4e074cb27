"""Search spaces from params.yaml: what a trial samples becomes params, and every default configuration builds."""

import pytest
import torch
import yaml

import optuna
from avemo.training.recipe import build_model
from avemo.tuning.space import apply, kernel, sample
from tests.conftest import PROJECT

PARAMS = yaml.safe_load((PROJECT / "params.yaml").read_text())


def sampled(space: dict, family: str, n: int, seed: int = 0) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [sample(study.ask(), space, family) for _ in range(n)]


def test_kernels_and_dotted_overrides():
    assert kernel("3x7") == [3, 7]
    with pytest.raises(ValueError, match="kernel 'wide'"):
        kernel("wide")
    out = apply(PARAMS, {"train.audio.lr": 0.1, "models.audio.channels": [4, 8], "new.section.key": 1})
    assert out["train"]["audio"]["lr"] == 0.1 and out["models"]["audio"]["channels"] == [4, 8]
    assert out["new"]["section"]["key"] == 1 and PARAMS["models"]["audio"]["channels"] == [8, 16, 16]


def test_loop_knobs_go_to_the_searched_family_where_the_loop_reads_them():
    (overrides,) = sampled({"train.loop.lr": [0.003], "train.crop_ratio": [0.4]}, "fusion", 1)
    assert overrides == {"train.fusion.lr": 0.003, "train.crop_ratio": 0.4}


def test_every_configuration_sampled_from_the_default_audio_space_builds_and_runs_a_forward_pass():
    for overrides in sampled(PARAMS["tune"]["audio"]["space"], "audio", 40):
        params = apply(PARAMS, overrides)
        model = build_model("audio", params["models"]["audio"]["kind"], params, 4, (64, 300))
        assert model(torch.randn(2, 1, 64, 300)).shape == (2, 4)
        blocks = len(params["models"]["audio"]["channels"])
        assert len(params["models"]["audio"]["kernels"]) == len(params["models"]["audio"]["padding"]) == blocks


def test_every_configuration_sampled_from_the_default_fusion_space_builds_and_runs_a_forward_pass():
    seen = set()
    for overrides in sampled(PARAMS["tune"]["fusion"]["space"], "fusion", 24):
        params = apply(PARAMS, overrides)
        seen.add(params["train"]["fusion_init"])
        if params["train"]["fusion_init"] != "scratch":  # trained encoders bring their own architecture
            assert "models.video.channels" not in overrides
        model = build_model("fusion", "cnn", params, 4, (64, 300)).eval()
        assert model(torch.randn(2, 1, 64, 300), torch.randn(2, 3, 20, 60, 100)).shape == (2, 4)
    assert seen == {"branches", "pretrained", "scratch"}
