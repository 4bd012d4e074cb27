import numpy as np
import pytest

from avemo.audio.spectrogram import fit_frames, spectrogram_db
from avemo.params import Spectrogram

SR = 16000
P = Spectrogram()


def tone(amplitude: float, seconds: float = 3.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_a_3_s_clip_is_200_by_300_without_resizing():
    db = spectrogram_db(tone(0.1), SR, P)
    assert db.shape == (200, 301)  # centred frames: 1 + 48000 / 160
    assert fit_frames(db, 300, "crop_pad", P.floor_db).shape == (200, 300)


def test_doubling_the_signal_adds_6_db_on_the_fixed_scale():
    quiet, loud = spectrogram_db(tone(0.05), SR, P), spectrogram_db(tone(0.1), SR, P)
    peak = int(round(440 / (SR / P.n_fft)))
    assert np.median(loud[peak] - quiet[peak]) == pytest.approx(20 * np.log10(2), abs=0.05)


def test_loud_signals_clip_at_the_same_ceiling_and_silence_sits_on_the_floor():
    assert spectrogram_db(tone(20.0), SR, P).max() == spectrogram_db(tone(40.0), SR, P).max() == 60.0
    silence = spectrogram_db(np.zeros(SR * 3, np.float32), SR, P)
    assert (silence == -60.0).all()


def test_mel_kind_and_full_time_axis_policies():
    mel = spectrogram_db(tone(0.1, seconds=5.0), SR, Spectrogram(kind="mel", n_fft=512, bins=64))
    assert mel.shape[0] == 64
    assert fit_frames(mel, 300, "resize", -60).shape == (64, 300)
    assert (fit_frames(mel[:, :100], 300, "crop_pad", -60)[:, 100:] == -60).all()
    with pytest.raises(ValueError, match="Input should be .mel. or .stft."):
        spectrogram_db(tone(0.1), SR, Spectrogram(kind="cqt"))
