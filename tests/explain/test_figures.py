"""Every figure is written (a stage's outputs must exist), and a method that failed its deletion check is not drawn."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from avemo.data.datasets import frames_tensor
from avemo.explain import explain_spectrograms, figures, modality_shares
from avemo.models.video import scaled
from tests.explain import corpus

PNG = b"\x89PNG"


def is_png(path) -> bool:
    return path.exists() and path.read_bytes()[:4] == PNG


def failing(explanation):
    """The same explanation with every deletion check turned into a failure (curves and random swapped)."""
    deletions = {key: dataclasses.replace(d, curves=d.random_curves, random_curves=d.curves)
                 for key, d in explanation.deletions.items()}
    return dataclasses.replace(explanation, deletions=deletions)


def test_the_set_figures(audio_explanation, video_explanation, fusion_model, tmp_path):
    y = corpus.labels(12, 9)
    shares = modality_shares(fusion_model, corpus.spectrograms(y, 9), corpus.frames(y, 9, carry=False),
                             corpus.CLASSES, labels=y.numpy())
    paths = [*figures.audio_figures(audio_explanation, tmp_path),
             *figures.video_figures(video_explanation, tmp_path, normalise="imagenet"),
             figures.modality_share_figure(shares, tmp_path / "modalities.png")]
    assert [p.name for p in paths] == ["bands.png", "moments.png", "audio_deletion.png", "face_regions.png",
                                       "frames.png", "video_deletion.png", "modalities.png"]
    assert all(is_png(p) for p in paths)


def test_a_failing_method_is_not_drawn(audio_explanation, tmp_path):
    assert figures.passed_checks(audio_explanation) == {(m, u) for m in ("occlusion", "integrated_gradients")
                                                        for u in ("band", "moment")}
    failed = failing(audio_explanation)
    assert figures.passed_checks(failed) == set()
    drawn = figures.band_importance_figure(audio_explanation, tmp_path / "drawn.png")
    note = figures.band_importance_figure(failed, tmp_path / "note.png")  # written, but only a note
    assert is_png(note) and note.stat().st_size < drawn.stat().st_size / 3


def test_one_clip_is_drawn_with_the_test_sets_verdicts(audio_model, audio_explanation, audio_test_set, tmp_path):
    """What `avemo explain clip.wav` needs: one clip's maps, drawn for the methods that passed on the test set
    (read back from the stage's metrics file)."""
    x, _ = audio_test_set
    one = explain_spectrograms(audio_model, x[:1], corpus.CLASSES, steps=8, repeats=1)
    verdicts = figures.passed_in(json.loads(json.dumps(audio_explanation.metrics())))
    assert verdicts == figures.passed_checks(audio_explanation)
    assert is_png(figures.clip_figure(x[0, 0].numpy(), one, tmp_path / "clip.png", verdicts))


@pytest.mark.parametrize("normalise", ["imagenet", "unit"])
def test_faces_are_shown_in_their_own_colours(normalise):
    rgb = np.random.default_rng(0).integers(0, 256, (1, 4, 5, 3), dtype=np.uint8)
    shown = figures.display_rgb(scaled(frames_tensor(rgb)[None], normalise)[0, :, 0].numpy(), normalise)
    np.testing.assert_allclose(shown, torch.from_numpy(rgb[0]).float().numpy() / 255, atol=1e-6)
