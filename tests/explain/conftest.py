"""Models trained on the tiny constructed corpora (tests/explain/corpus.py) and their explanations,
made once per session. Everything runs on one intra-op thread: on two shared cores, two threads
made these tiny tensors 15 times slower (33 s against 2 s for one explanation)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest
import torch

from avemo.explain import explain_frames, explain_spectrograms
from tests.explain import corpus


@contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def audio_model(tmp_path_factory):
    with one_thread():
        return corpus.trained_audio(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="session")
def audio_test_set():
    y = corpus.labels(48, 7)
    return corpus.spectrograms(y, 7), y


@pytest.fixture(scope="session")
def audio_explanation(audio_model, audio_test_set):
    x, y = audio_test_set
    with one_thread():
        return explain_spectrograms(audio_model, x, corpus.CLASSES, labels=y.numpy())


@pytest.fixture(scope="session")
def video_model(tmp_path_factory):
    with one_thread():
        return corpus.trained_video(tmp_path_factory.mktemp("video"))


@pytest.fixture(scope="session")
def video_explanation(video_model):
    y = corpus.labels(48, 8)
    with one_thread():
        return explain_frames(video_model, corpus.frames(y, 8), corpus.CLASSES, labels=y.numpy(), grid=(2, 2))


@pytest.fixture(scope="session")
def fusion_model(audio_model, tmp_path_factory):
    with one_thread():
        return corpus.trained_fusion_on_noise_video(audio_model, tmp_path_factory.mktemp("fusion"))
