"""Every figure is written (a stage's outputs must exist), and a method that failed its deletion check is not drawn."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avemo.data.datasets import frames_tensor
from avemo.explain import explain_spectrograms, figures, modality_shares
from avemo.handover import Faithful
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
    verdicts = Faithful.parse(json.loads(json.dumps(audio_explanation.metrics())), Path("explain.json")).passed()
    assert verdicts == figures.passed_checks(audio_explanation)
    scale = figures.ClipScale.of({**CONFIG, "spectrogram": {**CONFIG["spectrogram"], "bins": x.shape[2]}}, 3.0, 16000)
    assert is_png(figures.clip_figure(x[0, 0].numpy(), one, tmp_path / "clip.png", verdicts, scale))


#: A serving config's preprocessing (serving.serving_config), as params.yaml sets it: 64 mel bands to 8 kHz,
#: full utterances resized to 300 columns.
CONFIG = {"spectrogram": {"kind": "mel", "n_fft": 1024, "bins": 64, "hop_length": 160, "frames": 300,
                          "floor_db": -60.0, "ceiling_db": 60.0, "full_time_axis": "resize"},
          "segmentation": {"segmentation": "full"}, "crop_ratio": 0.0}


def test_a_clip_is_drawn_in_hz_and_seconds_with_its_db_scale():
    """The figure read "mel band" by "frame" with no colour bar: rows are frequencies, columns seconds."""
    import librosa

    mel = figures.ClipScale.of(CONFIG, 2.5, 16000)
    centres = librosa.mel_frequencies(66, fmin=0.0, fmax=8000)[1:-1]
    assert len(mel.hz_edges) == 65 and np.all(np.diff(mel.hz_edges) > 0)
    assert centres[10] == pytest.approx(np.mean(mel.hz_edges[10:12]), rel=0.02) and mel.hz_edges[-1] <= 8000
    assert mel.frame_seconds == pytest.approx(2.5 / 300)  # a full utterance resized to 300 columns
    assert mel.db(np.array([-1.0, 0.0, 1.0])).tolist() == [-60.0, 0.0, 60.0]
    stft = figures.ClipScale.of({**CONFIG, "spectrogram": {**CONFIG["spectrogram"], "kind": "stft", "n_fft": 400,
                                                            "bins": 200}, "segmentation": {"segmentation": "clip3s"},
                                 "crop_ratio": 0.6}, 3.0, 16000)
    assert stft.frame_seconds == 0.01 and stft.band_range(0) == [0, 8]  # 40 Hz bins, 80 of 200 kept, stretched
    assert stft.band_range(199) == [3164, 3180]


def test_the_clip_figure_has_a_db_colour_bar_and_hz_and_seconds_axes(audio_model, audio_test_set, tmp_path,
                                                                     monkeypatch):
    x, _ = audio_test_set
    one = explain_spectrograms(audio_model, x[:1], corpus.CLASSES, steps=8, repeats=1)
    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: saved.append(fig) or path)
    scale = figures.ClipScale.of({**CONFIG, "spectrogram": {**CONFIG["spectrogram"], "bins": x.shape[2],
                                                            "frames": x.shape[3]}}, 3.0, 16000)
    figures.clip_figure(x[0, 0].numpy(), one, tmp_path / "clip.png", figures.passed_checks(one), scale)
    labels = {ax.get_ylabel() for ax in saved[0].axes} | {ax.get_xlabel() for ax in saved[0].axes}
    assert {"frequency (Hz)", "time (s)", "dB"} <= labels
    image = saved[0].axes[0]
    assert image.get_xlim()[1] == pytest.approx(x.shape[3] * scale.frame_seconds)
    assert image.get_ylim()[1] == pytest.approx(scale.hz_edges[-1])


@pytest.mark.parametrize("normalise", ["imagenet", "unit"])
def test_faces_are_shown_in_their_own_colours(normalise):
    rgb = np.random.default_rng(0).integers(0, 256, (1, 4, 5, 3), dtype=np.uint8)
    shown = figures.display_rgb(scaled(frames_tensor(rgb)[None], normalise)[0, :, 0].numpy(), normalise)
    np.testing.assert_allclose(shown, torch.from_numpy(rgb[0]).float().numpy() / 255, atol=1e-6)
