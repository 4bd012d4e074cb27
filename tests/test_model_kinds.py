"""A new audio model kind is one entry of models/kinds.py's KINDS: params validation accepts it, a search space
offers it, the study grid and the report list it (README: Add a model kind)."""

import optuna
import pytest
import torch
from torch import nn

from avemo.models.audio import AudioNet, audio_config
from avemo.models.kinds import KINDS
from avemo.params import ParamsError
from avemo.report import Store, audio_grid
from avemo.tuning.space import sample
from tests.conftest import project_params


@pytest.fixture
def gru(monkeypatch):
    """The kind `cnn_gru`, registered as a new kind is: one entry, its recurrent read-out."""
    monkeypatch.setitem(KINDS, "cnn_gru", "GRU")
    return "cnn_gru"


def test_an_unregistered_kind_is_refused_at_load():
    with pytest.raises(ParamsError, match="models.audio.kind: kind 'cnn_gru' is not one of the audio model kinds"):
        project_params().override({"models.audio.kind": "cnn_gru"})


def test_a_registered_kind_is_accepted_built_with_its_block_searched_and_reported(gru, tmp_path, empty_mlflow_store):
    params = project_params()
    kinds = [*params.study.models, gru]
    space = {"models.audio.kind": kinds, "models.audio.hidden": [32]}
    params = params.override({"models.audio.kind": gru, "study.models": kinds, "tune.audio.space": space})

    net = AudioNet(audio_config(params.models.audio, (64, 300)), 4)  # the read-out is the kind's own block
    assert type(net.rnn) is nn.GRU and net(torch.zeros(2, 1, 64, 300)).shape == (2, 4)

    overrides = sample(optuna.trial.FixedTrial({"models.audio.kind": gru, "models.audio.hidden": 32}),
                       params.tune.audio.space, "audio")
    assert params.override(overrides).models.audio.kind == gru

    text = "\n".join(audio_grid(Store(f"sqlite:///{empty_mlflow_store}"), params))
    assert f"| {gru} | — (gap: `dvc repro study/dvc.yaml:train_audio@{gru}-full-raw`" in text
