"""Spectrograms on one fixed dB scale, at the corpus' native 16 kHz.

The study drew every spectrogram with the same +/-60 dB colour bar so that loudness is
comparable across clips; we keep that fixed scale but store the numbers, not a picture.
At 16 kHz a 25 ms window (400) with a 10 ms hop (160) gives 201 bins and 100 frames/s,
so a 3 s clip is 200 x 300 without any resizing.

The STFT and the mel filter bank are librosa's (`librosa.stft` with a periodic Hann window,
centred frames and zero padding; `librosa.feature.melspectrogram` with its default Slaney
filters), written out in numpy with the very same operations in the same order, so that every
value is bit for bit librosa's (tests/audio/test_spectrogram.py checks it against librosa):
importing librosa (with numba and scipy.signal) cost a cold `avemo predict` about 1.5 s.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import cv2
import numpy as np

from avemo.params import Spectrogram


def spectrogram_db(y: np.ndarray, sr: int, p: Spectrogram) -> np.ndarray:
    """Magnitude in dB re 1.0 (no per-clip normalisation), clipped to [floor, ceiling]."""
    magnitude = np.abs(stft(np.asarray(y, np.float32), p.n_fft, p.hop_length, p.win_length))
    if p.kind == "mel":
        power = magnitude**2
        # librosa.feature.melspectrogram(S=power, sr=sr, n_mels=p.bins, fmax=sr / 2)
        power = np.einsum("...ft,mf->...mt", power, mel_filters(sr, 2 * (power.shape[-2] - 1), p.bins, sr / 2),
                          optimize=True)
        db = 10 * np.log10(np.maximum(power, 10 ** (p.floor_db / 10)))
    else:
        if magnitude.shape[0] < p.bins:
            raise ValueError(f"spectrogram: n_fft={p.n_fft} gives {magnitude.shape[0]} bins, fewer than bins={p.bins}")
        db = 20 * np.log10(np.maximum(magnitude[: p.bins], 10 ** (p.floor_db / 20)))
    return np.clip(db, p.floor_db, p.ceiling_db).astype(np.float32)


def fit_frames(db: np.ndarray, frames: int, policy: str, floor_db: float) -> np.ndarray:
    """Bring the time axis to `frames` columns: resize (study) or crop / pad with the floor."""
    if db.shape[1] == frames:
        return db
    if policy == "resize":
        return cv2.resize(db, (frames, db.shape[0]), interpolation=cv2.INTER_AREA if db.shape[1] > frames else cv2.INTER_LINEAR)
    if policy == "crop_pad":
        if db.shape[1] > frames:
            return db[:, :frames]
        return np.pad(db, ((0, 0), (0, frames - db.shape[1])), constant_values=floor_db)
    raise ValueError(f"spectrogram.full_time_axis must be 'resize' or 'crop_pad', not {policy!r}")


def stft(y: np.ndarray, n_fft: int, hop_length: int, win_length: int) -> np.ndarray:
    """librosa.stft(y, n_fft=, hop_length=, win_length=, window="hann", center=True, pad_mode="constant") of a
    float32 signal: complex64, (1 + n_fft // 2, 1 + len(y) // hop_length) for an even n_fft."""
    if not np.isfinite(y).all():
        raise ValueError("Audio buffer is not finite everywhere")
    if y.ndim != 1:
        raise ValueError(f"spectrogram: a mono signal is needed, not an array of shape {y.shape}")
    if n_fft > y.shape[-1]:
        warnings.warn(f"n_fft={n_fft} is too large for input signal of length={y.shape[-1]}", stacklevel=3)
    window = _window(win_length, n_fft)[:, np.newaxis]
    padded = np.pad(y, (n_fft // 2, n_fft // 2), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length].T  # (n_fft, frames), a view
    out = np.zeros((1 + n_fft // 2, frames.shape[-1]), dtype=np.complex64, order="F")
    # librosa transforms MAX_MEM_BLOCK bytes of frames at a time; each column's FFT is the same whatever the block
    block = max(int(2**18 // (n_fft * frames.itemsize)), 1)
    for start in range(0, frames.shape[-1], block):
        out[:, start: start + block] = np.fft.rfft(window * frames[:, start: start + block], axis=-2)
    return out


@lru_cache(maxsize=8)
def _window(win_length: int, n_fft: int) -> np.ndarray:
    """scipy.signal.get_window("hann", win_length, fftbins=True) (scipy's general cosine, periodic), centred in
    n_fft zeros as librosa.util.pad_center does; float64, read-only."""
    if win_length <= 1:
        w = np.ones(win_length, dtype=np.float64)
    else:
        fac = np.linspace(-np.pi, np.pi, win_length + 1, dtype=np.float64)
        w = np.zeros(win_length + 1, dtype=np.float64)
        for k, a in enumerate(np.asarray([0.5, 1.0 - 0.5], dtype=np.float64)):
            w += a * np.cos(k * fac)
        w = w[:-1]
    left = int((n_fft - win_length) // 2)
    w = np.pad(w, (left, int(n_fft - win_length - left)), mode="constant")
    w.flags.writeable = False
    return w


def _hz_to_mel(frequencies: float) -> float:
    """librosa.hz_to_mel (Slaney's scale: linear below 1 kHz, logarithmic above) of one frequency."""
    frequencies = np.asanyarray(frequencies)
    f_min, f_sp = 0.0, 200.0 / 3
    mels = (frequencies - f_min) / f_sp
    min_log_hz = 1000.0
    min_log_mel = (min_log_hz - f_min) / f_sp
    logstep = np.log(6.4) / 27.0
    if frequencies >= min_log_hz:
        mels = min_log_mel + np.log(frequencies / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """librosa.mel_to_hz (Slaney's scale) of a vector of mels."""
    mels = np.asanyarray(mels)
    f_min, f_sp = 0.0, 200.0 / 3
    freqs = f_min + f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = (min_log_hz - f_min) / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


def mel_frequencies(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa.mel_frequencies(n_mels, fmin=fmin, fmax=fmax): band edges uniformly spaced in mels, in Hz."""
    return _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels))


@lru_cache(maxsize=8)
def mel_filters(sr: float, n_fft: int, n_mels: int, fmax: float) -> np.ndarray:
    """librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmax=fmax): triangular Slaney-normalised filters,
    (n_mels, 1 + n_fft // 2) float32, read-only."""
    weights = np.zeros((n_mels, int(1 + n_fft // 2)), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_frequencies(n_mels + 2, 0.0, fmax)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2: n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    if not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn("Empty filters detected in mel frequency basis. Some channels will produce empty responses. "
                      "Try increasing your sampling rate (and fmax) or reducing n_mels.", stacklevel=3)
    weights.flags.writeable = False
    return weights
