"""A search space is checked when params.yaml loads: a misspelt knob or a choice its field cannot take stops
`avemo` with the key, before any trial runs (params.check_space)."""

import subprocess
import sys

import pytest
import yaml

from avemo.params import ParamsError
from tests.conftest import PROJECT, project_params


@pytest.mark.parametrize("space, message", [
    ({"train.optim.lrr": {"low": 0.001, "high": 0.01}},
     "tune.audio.space.train.optim.lrr: not a params.yaml knob nor one of the shorthands blocks, channels, padding, "
     "kernel, video_blocks, video_channels; did you mean 'train.loop.lr'?"),
    ({"train.loop.batch_size": [16, "big"]}, "tune.audio.space.train.loop.batch_size: train.audio.batch_size: "
                                             "Input should be a valid integer"),
    ({"models.audio.kind": ["cnn", "gru"]}, "tune.audio.space.models.audio.kind: models.audio.kind: kind 'gru' is "
                                            "not one of the audio model kinds"),
    ({"models.audio.dropout": {"low": 0.0, "high": 1.5}}, "tune.audio.space.models.audio.dropout: "
                                                          "models.audio.dropout: Input should be less than 1"),
    ({"train.loop.lr": {"low": 0.0, "high": 0.01, "log": True}}, "tune.audio.space.train.loop.lr: a list of choices"),
    ({"kernel": ["5x5", "five"]}, "tune.audio.space.kernel: 'five': String should match pattern"),
    ({"padding": ["yes"]}, "tune.audio.space.padding: 'yes': Input should be a valid boolean"),
])
def test_a_bad_space_is_refused_naming_its_key(space, message):
    with pytest.raises(ParamsError) as refused:
        project_params().override({"tune.audio.space": space})
    assert message in str(refused.value)


def test_the_project_spaces_pass_and_a_misspelt_key_fails_avemo(tmp_path):
    params = project_params()
    assert params.tune.audio.space and params.tune.fusion.space
    tree = yaml.safe_load((PROJECT / "params.yaml").read_text())
    tree["tune"]["audio"]["space"]["train.optim.lrr"] = tree["tune"]["audio"]["space"].pop("train.loop.lr")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tree))
    proc = subprocess.run([sys.executable, "-m", "avemo.cli", "synth", "--out", "corpus"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "tune.audio.space.train.optim.lrr: not a params.yaml knob" in proc.stderr
    assert "did you mean 'train.loop.lr'?" in proc.stderr and not (tmp_path / "corpus").exists()
