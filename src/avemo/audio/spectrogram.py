"""Spectrograms on one fixed dB scale, at the corpus' native 16 kHz.

The study drew every spectrogram with the same +/-60 dB colour bar so that loudness is
comparable across clips; we keep that fixed scale but store the numbers, not a picture.
At 16 kHz a 25 ms window (400) with a 10 ms hop (160) gives 201 bins and 100 frames/s,
so a 3 s clip is 200 x 300 without any resizing.
"""

from __future__ import annotations

import cv2
import librosa
import numpy as np

from avemo.params import Spectrogram


def spectrogram_db(y: np.ndarray, sr: int, p: Spectrogram) -> np.ndarray:
    """Magnitude in dB re 1.0 (no per-clip normalisation), clipped to [floor, ceiling]."""
    stft = np.abs(librosa.stft(y=np.asarray(y, np.float32), n_fft=p.n_fft, hop_length=p.hop_length,
                               win_length=p.win_length, center=True))
    if p.kind == "mel":
        power = librosa.feature.melspectrogram(S=stft**2, sr=sr, n_mels=p.bins, fmax=sr / 2)
        db = 10 * np.log10(np.maximum(power, 10 ** (p.floor_db / 10)))
    else:
        if stft.shape[0] < p.bins:
            raise ValueError(f"spectrogram: n_fft={p.n_fft} gives {stft.shape[0]} bins, fewer than bins={p.bins}")
        db = 20 * np.log10(np.maximum(stft[: p.bins], 10 ** (p.floor_db / 20)))
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
