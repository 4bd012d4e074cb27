"""A fusion model whose video input is noise gets its decision from the audio."""

import numpy as np

from avemo.explain import explain_spectrograms, modality_shares
from tests.explain import corpus


def shares(model, background):
    y = corpus.labels(48, 9)
    return modality_shares(model, corpus.spectrograms(y, 9), corpus.frames(y, 9, carry=False), corpus.CLASSES,
                           labels=y.numpy(), background=background)


def training_background(n: int = 16):
    """The fusion model's first `n` training clips."""
    y = corpus.labels(192, 5)
    return corpus.spectrograms(y, 5)[:n], corpus.frames(y, 5, carry=False)[:n]


def test_the_share_is_all_audio_when_the_video_is_noise(fusion_model):
    result = shares(fusion_model, training_background())
    metrics = result.metrics()
    assert metrics["audio_share"] > 0.9
    assert all(c["audio_share"] > 0.85 for c in metrics["per_class"].values())
    assert metrics["audio_drop"] > 0.3 and abs(metrics["video_drop"]) < 0.05


def test_shapley_values_share_the_whole_change(fusion_model):
    result = shares(fusion_model, training_background(4))
    np.testing.assert_allclose(result.audio_shapley + result.video_shapley, result.both - result.neither, atol=1e-6)


def test_without_a_background_a_modality_is_removed_to_one_reference_input(fusion_model):
    """The band means and a blank face: cheap, but the model gives that input a class of its own."""
    result = shares(fusion_model, None)
    assert np.ptp(result.neither[result.targets == 0]) == 0  # one reference: one p per class
    assert 0 <= np.nanmin(result.audio_share) and np.nanmax(result.audio_share) <= 1


def test_a_fusion_models_audio_side_is_explained_with_its_frames_held(fusion_model):
    y = corpus.labels(8, 11)
    explanation = explain_spectrograms(fusion_model, corpus.spectrograms(y, 11), corpus.CLASSES,
                                       frames=corpus.frames(y, 11, carry=False), steps=8, repeats=1)
    assert (explanation.bands["integrated_gradients"].argmax(axis=1) == corpus.CARRIER_BAND).all()
    assert (explanation.bands["occlusion"].argmax(axis=1) == corpus.CARRIER_BAND).all()
