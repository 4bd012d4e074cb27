"""Noise clean-up (the study's DS II/IV) and the noise used to pad short clips.

The study band-passed the signal, padded short utterances with recorded noise (so every
clip carries the same noise level), then removed noise by spectral gating (noisereduce).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avemo.params import Cleanup


def bandpass(y: np.ndarray, sr: int, low_hz: float, high_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth band-pass: removes rumble and hiss outside the speech band."""
    from scipy import signal  # ~1 s to import: only the clean variants pay for it, not a raw model's answer

    sos = signal.butter(order, [low_hz, min(high_hz, 0.49 * sr)], btype="bandpass", fs=sr, output="sos")
    return signal.sosfiltfilt(sos, y).astype(np.float32)


def clean(y: np.ndarray, sr: int, noise: np.ndarray, p: Cleanup) -> np.ndarray:
    """Band-pass, then stationary spectral gating against a noise sample, `passes` times."""
    import noisereduce  # imports torch: only the clean variants pay for it

    y = bandpass(y, sr, p.low_hz, p.high_hz, p.order)
    noise = bandpass(noise, sr, p.low_hz, p.high_hz, p.order)
    for _ in range(p.passes):
        y = noisereduce.reduce_noise(y=y, sr=sr, y_noise=noise, stationary=True,
                                     n_std_thresh_stationary=p.n_std_thresh, prop_decrease=p.prop_decrease,
                                     n_fft=512, use_tqdm=False, n_jobs=1)
    return y.astype(np.float32)


@dataclass(frozen=True)
class NoiseProfile:
    """The corpus' background noise: a magnitude spectrum shape and an RMS level."""

    magnitude: np.ndarray  # (n_fft // 2 + 1,)
    rms: float
    n_fft: int = 512

    def to_dict(self) -> dict:
        """JSON-able, so that a served model pads and cleans with the noise its variant used."""
        return {"magnitude": self.magnitude.tolist(), "rms": self.rms, "n_fft": self.n_fft}

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseProfile":
        return cls(magnitude=np.asarray(d["magnitude"], dtype=np.float64), rms=float(d["rms"]), n_fft=int(d["n_fft"]))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` samples of noise with this spectrum and level (white noise shaped in frequency)."""
        spectrum = np.fft.rfft(rng.standard_normal(n))
        shape = np.interp(np.linspace(0, 1, len(spectrum)), np.linspace(0, 1, len(self.magnitude)), self.magnitude)
        noise = np.fft.irfft(spectrum * shape, n)
        return (noise / (np.std(noise) or 1.0) * self.rms).astype(np.float32)


def estimate_noise(signals: list[np.ndarray], n_fft: int = 512, quantile: float = 0.1) -> NoiseProfile:
    """Noise from the quietest frames of many utterances: the pauses hold the room noise.

    Frames are half-overlapping; their energies come from sums over half-frame blocks, so only
    the quiet frames are ever copied out.
    """
    hop = n_fft // 2
    signals = [y for y in signals if len(y) >= n_fft]
    if not signals:
        raise ValueError("cannot estimate the corpus noise: no utterance is longer than one frame")
    energies, starts = [], []
    for y in signals:
        blocks = y[: len(y) // hop * hop].reshape(-1, hop).astype(np.float64)
        s1, s2 = blocks.sum(axis=1), np.square(blocks).sum(axis=1)
        mean = (s1[:-1] + s1[1:]) / n_fft
        energies.append((s2[:-1] + s2[1:]) / n_fft - mean**2)
        starts.append(np.arange(len(mean)) * hop)
    energy = np.concatenate(energies)
    quiet_mask = energy <= np.quantile(energy, quantile)
    offsets = np.cumsum([0] + [len(e) for e in energies])
    quiet = np.concatenate([y[s[quiet_mask[a:b]][:, None] + np.arange(n_fft)]
                            for y, s, a, b in zip(signals, starts, offsets[:-1], offsets[1:])])
    magnitude = np.abs(np.fft.rfft(quiet * np.hanning(n_fft), axis=1)).mean(axis=0)
    return NoiseProfile(magnitude=magnitude / magnitude.max(), rms=float(np.sqrt(quiet.var(axis=1).mean())), n_fft=n_fft)
