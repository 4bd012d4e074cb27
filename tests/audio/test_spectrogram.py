import numpy as np
import pytest

from avemo.audio.spectrogram import fit_frames, spectrogram_db
from avemo.params import STUDY_SPECTROGRAM, Spectrogram

SR = 16000
P = STUDY_SPECTROGRAM


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
    mel = spectrogram_db(tone(0.1, seconds=5.0), SR, Spectrogram(kind="mel", n_fft=512, win_length=512, bins=64))
    assert mel.shape[0] == 64
    assert fit_frames(mel, 300, "resize", -60).shape == (64, 300)
    assert (fit_frames(mel[:, :100], 300, "crop_pad", -60)[:, 100:] == -60).all()
    with pytest.raises(ValueError, match="Input should be .mel. or .stft."):
        spectrogram_db(tone(0.1), SR, Spectrogram(kind="cqt"))


def librosa_spectrogram_db(y: np.ndarray, sr: int, p: Spectrogram) -> np.ndarray:
    """spectrogram_db as it was written with librosa (before its numpy transcription): the reference."""
    import librosa

    stft = np.abs(librosa.stft(y=np.asarray(y, np.float32), n_fft=p.n_fft, hop_length=p.hop_length,
                               win_length=p.win_length, center=True))
    if p.kind == "mel":
        power = librosa.feature.melspectrogram(S=stft**2, sr=sr, n_mels=p.bins, fmax=sr / 2)
        db = 10 * np.log10(np.maximum(power, 10 ** (p.floor_db / 10)))
    else:
        db = 20 * np.log10(np.maximum(stft[: p.bins], 10 ** (p.floor_db / 20)))
    return np.clip(db, p.floor_db, p.ceiling_db).astype(np.float32)


#: params.yaml's log-mel, the study's linear bins, and odd sizes: a window shorter than n_fft, an odd n_fft.
SETTINGS = [Spectrogram(), P,
            Spectrogram(kind="mel", n_fft=512, win_length=400, bins=64), Spectrogram(kind="mel", n_fft=400, win_length=400, bins=40),
            Spectrogram(kind="stft", n_fft=512, win_length=321, hop_length=100, bins=200),
            Spectrogram(kind="mel", n_fft=2048, win_length=2048, hop_length=512, bins=128),
            Spectrogram(kind="mel", n_fft=1023, win_length=1000, bins=64)]


@pytest.mark.parametrize("p", SETTINGS, ids=lambda p: f"{p.kind}-{p.n_fft}-{p.win_length}-{p.hop_length}-{p.bins}")
def test_the_numpy_stft_and_mel_filters_are_librosas_bit_for_bit(p, tiny_corpus):
    """No librosa on the serving path (its import cost a cold `avemo predict` ~1.5 s): every value must still be
    the one the audio stage stored with librosa, so a model answers as it was trained and tested."""
    import librosa
    import soundfile as sf

    from avemo.audio import spectrogram

    wavs = sorted(tiny_corpus[0].rglob("sentences/wav/*/Ses*.wav"))[:6]
    rng = np.random.default_rng(0)
    signals = [sf.read(w, dtype="float32")[0] for w in wavs] + [
        (a * rng.standard_normal(n)).astype(np.float32) for n in (4800, 48000, 48001, 12345, 1123) for a in (0.01, 1.0)]
    signals += [np.zeros(SR * 3, np.float32), tone(0.1)]
    for y in signals:
        ours, theirs = spectrogram_db(y, SR, p), librosa_spectrogram_db(y, SR, p)
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs), (len(y), np.abs(ours - theirs).max())
        stft = spectrogram.stft(y, p.n_fft, p.hop_length, p.win_length)
        reference = librosa.stft(y=y, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length)
        assert stft.dtype == reference.dtype and np.array_equal(stft, reference)
    assert np.array_equal(spectrogram.mel_filters(SR, p.n_fft, p.bins, SR / 2),
                          librosa.filters.mel(sr=SR, n_fft=p.n_fft, n_mels=p.bins, fmax=SR / 2))


def test_a_signal_that_is_not_finite_is_refused_as_librosa_refuses_it():
    y = tone(0.1)
    y[100] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        spectrogram_db(y, SR, P)
