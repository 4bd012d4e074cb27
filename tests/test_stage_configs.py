"""Every stage of both pipelines, as DVC resolves it (matrix and foreach items included), gets valid params from
params.yaml and its `--set` changes, and every training stage's model builds and answers a batch of its inputs:
a config error shows here, not an hour into `make study`."""

import shlex

import pytest
import torch

from avemo.cli import BY_NAME
from avemo.labels import class_set
from avemo.models.audio import audio_config
from avemo.models.checkpoint import ModelSpec
from avemo.models.video import video_config
from avemo.params import set_changes
from avemo.stages.frame import searched
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
    family = option(arguments, "--family")
    if verb != "train" or family is None:
        return
    classes = class_set(params.labels)
    s, v = params.audio.spectrogram, params.video
    spec = ModelSpec(family, tuple(classes),
                     audio_config(params.models.audio, (s.bins, s.frames)) if family != "video" else None,
                     video_config(params.models.video, (v.n_frames, v.face.height, v.face.width),
                                  params.train.video_normalise) if family != "audio" else None)
    model = spec.build().eval()
    spectrograms = torch.zeros(2, 1, s.bins, s.frames)
    frames = torch.zeros(2, 3, v.n_frames, v.face.height, v.face.width, dtype=torch.uint8)
    with torch.no_grad():
        out = model(spectrograms) if family == "audio" else model(spectrograms, frames)
    assert out.shape == (2, len(classes)), name


def test_a_knob_the_command_line_sets_wins_over_the_search_choice(tmp_path):
    """train_audio_aug: the kept params with augmentation on, though the audio search chose that knob too (it
    trained without augmentation when the search's choice was applied last)."""
    choice = tmp_path / "audio.json"
    choice.write_text('{"chosen": {"overrides": {"train.augment.enabled": false, "train.audio.lr": 0.001}}}')
    command = COMMANDS["study/dvc.yaml:train_audio_aug"]
    assert "--set train.augment.enabled=true" in command and "--best reports/tune/audio.json" in command
    params = project_params()
    kept = searched(params, [choice], [])
    augmented = searched(params, [choice], ["train.augment.enabled=true"])
    assert not kept.train.augment.enabled and augmented.train.augment.enabled
    assert augmented.train.loop_for("audio", 0).lr == kept.train.loop_for("audio", 0).lr == 0.001
    assert augmented.override({"train.augment.enabled": False}) == kept
