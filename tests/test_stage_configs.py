"""Every stage of both pipelines, as DVC resolves it (matrix and foreach items included), gets valid params from
params.yaml and its `--set` changes, and every training stage's model builds and answers a batch of its inputs:
a config error shows here, not an hour into `make study`."""

import shlex

import pytest
import torch
from torch import nn

from avemo.cli import BY_NAME
from avemo.labels import class_set
from avemo.models.audio import PAPER
from avemo.models.kinds import KINDS
from avemo.params import set_changes
from avemo.stages.frame import searched
from avemo.training.recipe import spec_for
from tests.conftest import PROJECT, project_params


def resolved_commands() -> dict[str, str]:
    from dvc.repo import Repo

    with Repo(str(PROJECT)) as repo:
        return {stage.addressing: stage.cmd for stage in repo.index.stages if getattr(stage, "cmd", None)}


COMMANDS = resolved_commands()


def split_command(cmd: str) -> tuple[dict, str, list[str]]:
    """(--set changes, verb, the verb's arguments) of an `avemo` command."""
    words = shlex.split(cmd)
    assert words[0] == "avemo", cmd
    sets, rest = [], words[1:]
    while rest[0].startswith("--"):
        assert rest[0] == "--set", cmd
        sets.append(rest[1])
        rest = rest[2:]
    return set_changes(sets), rest[0], rest[1:]


def option(arguments: list[str], name: str) -> str | None:
    return arguments[arguments.index(name) + 1] if name in arguments else None


def dotted(params, key: str):
    """The value at a dotted path of the params."""
    value = params
    for part in key.split("."):
        value = getattr(value, part)
    return value


def plain(value):
    """Tuples as lists and models as dicts, as YAML gives them."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return [plain(v) for v in value] if isinstance(value, list | tuple) else value


def assert_audio_built_as(net: nn.Module, m) -> None:
    """The audio network has the layers `models.audio` asks for (its own sizes, or the paper preset's)."""
    convs = [x for x in net.conv if isinstance(x, nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(m.channels)
    assert [list(c.kernel_size) for c in convs] == [list(k) for k in m.kernels]
    assert [c.padding != (0, 0) for c in convs] == list(m.padding)
    assert all(x.kernel_size == m.pool for x in net.conv if isinstance(x, nn.MaxPool2d))
    assert any(isinstance(x, nn.BatchNorm2d) for x in net.conv) == m.batch_norm
    assert type(net.rnn) is (getattr(nn, KINDS[m.kind]) if KINDS[m.kind] else type(None)), m.kind
    if net.rnn is not None:
        assert (net.rnn.hidden_size, net.rnn.num_layers, net.rnn.bidirectional) == (m.hidden, m.rnn_layers,
                                                                                     m.bidirectional)
    assert net.embedding[0].out_features == m.fc and net.embedding[2].p == m.dropout


def assert_video_built_as(net: nn.Module, m) -> None:
    """The video network has the layers `models.video` asks for."""
    assert [c.out_channels for c in net.conv if isinstance(c, nn.Conv3d)] == list(m.channels)
    assert sum(isinstance(x, nn.MaxPool3d) for x in net.conv) == m.pools
    assert any(isinstance(x, nn.BatchNorm3d) for x in net.conv) == m.batch_norm
    assert [x.kernel_size for x in net.conv if isinstance(x, nn.AvgPool3d)] == (
        [] if tuple(m.stem_pool) == (1, 1, 1) else [tuple(m.stem_pool)])
    linear = [x for x in net.embedding if isinstance(x, nn.Linear)]
    assert [x.out_features for x in linear] == list(m.fc)
    assert [x.p for x in net.embedding if isinstance(x, nn.Dropout)] == [m.dropout]


def test_both_pipelines_resolve_to_every_planned_stage():
    params = project_params()
    names = set(COMMANDS)
    assert {f"study/dvc.yaml:train_audio@{m}-{v}" for m in params.study.models for v in params.study.grid_variants} \
        <= names
    assert {f"study/dvc.yaml:train_fusion_loso@{k}" for k in params.study.loso_folds} <= names
    assert {"train_audio_best", "train_video", "train_fusion_best", "register", "report"} <= names


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_stage_gets_valid_params_and_its_model_builds(name):
    sets, verb, arguments = split_command(COMMANDS[name])
    assert verb in BY_NAME, f"{name}: unknown verb {verb}"
    params = project_params().override(sets)
    for key, value in sets.items():  # each --set reaches the params the stage runs with
        assert plain(dotted(params, key)) == value, f"{name}: --set {key}={value} did not take"
    family = option(arguments, "--family")
    if verb != "train" or family is None:
        return
    classes = class_set(params.labels)
    s, v = params.audio.spectrogram, params.video
    spec = spec_for(family, params, classes, (s.bins, s.frames), (v.n_frames, v.face.height, v.face.width))
    model = spec.build().eval()
    audio = model if family == "audio" else getattr(model, "audio", None)
    video = model.net if family == "video" else getattr(model, "video", None)
    if audio is not None:
        m = params.models.audio
        assert_audio_built_as(audio, m if m.preset != "paper" else PAPER.model_copy(update={"kind": m.kind}))
    if video is not None:
        assert_video_built_as(video, params.models.video)
    assert (model.head if family != "video" else model.net.head).out_features == len(classes), name
    spectrograms = torch.zeros(2, 1, s.bins, s.frames)
    frames = torch.zeros(2, 3, v.n_frames, v.face.height, v.face.width, dtype=torch.uint8)
    with torch.no_grad():
        out = model(spectrograms) if family == "audio" else model(spectrograms, frames)
    assert out.shape == (2, len(classes)), name


def test_a_knob_the_command_line_sets_wins_over_the_search_choice(tmp_path):
    """train_audio_aug: the kept params with augmentation on, though the audio search chose that knob too (it
    trained without augmentation when the search's choice was applied last)."""
    choice = tmp_path / "audio.json"
    choice.write_text('{"study": "avemo-audio-1", "chosen": {"trial": 3, "why": "trial 3", "overrides": '
                      '{"train.augment.enabled": false, "train.audio.lr": 0.001}}}')
    command = COMMANDS["study/dvc.yaml:train_audio_aug"]
    assert "--set train.augment.enabled=true" in command and "--best reports/tune/audio.json" in command
    params = project_params()
    kept = searched(params, [choice], [])
    augmented = searched(params, [choice], ["train.augment.enabled=true"])
    assert not kept.train.augment.enabled and augmented.train.augment.enabled
    assert augmented.train.loop_for("audio", 0).lr == kept.train.loop_for("audio", 0).lr == 0.001
    assert augmented.override({"train.augment.enabled": False}) == kept
