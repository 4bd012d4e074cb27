"""Search spaces from params.yaml: what a trial samples becomes params, and every default configuration builds."""

import optuna
import pytest
import torch

from avemo.models.audio import AudioNet, audio_config
from avemo.models.fusion import FusionNet
from avemo.models.video import video_config
from avemo.params import ParamsError
from avemo.tuning.space import kernel, sample
from tests.conftest import project_params

PARAMS = project_params()


def sampled(space: dict, family: str, n: int, seed: int = 0) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [sample(study.ask(), space, family) for _ in range(n)]


def test_kernels_and_dotted_overrides():
    assert kernel("3x7") == [3, 7]
    with pytest.raises(ValueError, match="kernel 'wide'"):
        kernel("wide")
    out = PARAMS.override({"train.audio.lr": 0.1, "models.audio.channels": [4, 8], "models.audio.kernels": [[3, 3]] * 2,
                           "models.audio.padding": [True, True]})
    assert out.train.loop_for("audio").lr == 0.1 and out.models.audio.channels == (4, 8)
    assert PARAMS.models.audio.channels == (8, 16, 16)  # the loaded params are never changed in place
    with pytest.raises(ParamsError, match="override new.key: .new. is not a section"):
        PARAMS.override({"new.key": 1})


def test_loop_knobs_go_to_the_searched_family_where_the_loop_reads_them():
    (overrides,) = sampled({"train.loop.lr": [0.003], "train.crop_ratio": [0.4]}, "fusion", 1)
    assert overrides == {"train.fusion.lr": 0.003, "train.crop_ratio": 0.4}


def test_every_configuration_sampled_from_the_default_audio_space_builds_and_runs_a_forward_pass():
    for overrides in sampled(PARAMS.tune.audio.space, "audio", 40):
        m = PARAMS.override(overrides).models.audio
        model = AudioNet(audio_config(m, (64, 300)), 4)
        assert model(torch.randn(2, 1, 64, 300)).shape == (2, 4)
        assert len(m.kernels) == len(m.padding) == len(m.channels)


def test_every_configuration_sampled_from_the_default_fusion_space_builds_and_runs_a_forward_pass():
    seen = set()
    for overrides in sampled(PARAMS.tune.fusion.space, "fusion", 24):
        params = PARAMS.override(overrides)
        seen.add(params.train.fusion_init)
        if params.train.fusion_init != "scratch":  # trained encoders bring their own architecture
            assert "models.video.channels" not in overrides
        model = FusionNet(audio_config(params.models.audio, (64, 300)),
                          video_config(params.models.video, (20, 60, 100)), 4).eval()
        assert model(torch.randn(2, 1, 64, 300), torch.randn(2, 3, 20, 60, 100)).shape == (2, 4)
    assert seen == set(PARAMS.tune.fusion.space["train.fusion_init"])  # every initialisation the space offers
