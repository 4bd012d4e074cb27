import numpy as np

from avemo.audio.cleanup import bandpass, clean, estimate_noise
from avemo.params import Cleanup

SR = 16000


def band_snr_db(y: np.ndarray, hz: float = 440.0, width: float = 30.0) -> float:
    """Power near the tone over power everywhere else."""
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    near = np.abs(freqs - hz) < width
    return 10 * np.log10(power[near].sum() / power[~near].sum())


def noisy_tone(rng):
    t = np.arange(3 * SR) / SR
    gate = (np.sin(2 * np.pi * 2 * t) > 0).astype(float)  # speech-like on/off, pauses hold only noise
    tone = 0.2 * np.sin(2 * np.pi * 440 * t) * gate
    rumble = 0.3 * np.sin(2 * np.pi * 25 * t)
    return (tone + rumble + 0.03 * rng.standard_normal(len(t))).astype(np.float32)


def test_band_pass_removes_rumble_below_the_speech_band():
    rng = np.random.default_rng(0)
    y = noisy_tone(rng)
    assert band_snr_db(bandpass(y, SR, 80, 7600)) > band_snr_db(y) + 6


def test_band_pass_and_spectral_gating_raise_the_snr_of_a_noisy_tone():
    rng = np.random.default_rng(1)
    y = noisy_tone(rng)
    noise = (0.03 * rng.standard_normal(SR)).astype(np.float32)
    cleaned = clean(y, SR, noise, Cleanup())
    before, after = band_snr_db(bandpass(y, SR, 80, 7600)), band_snr_db(cleaned)
    assert after > before + 5, (before, after)


def test_the_noise_profile_matches_the_level_of_the_pauses():
    rng = np.random.default_rng(2)
    y = noisy_tone(rng) - 0.3 * np.sin(2 * np.pi * 25 * np.arange(3 * SR) / SR).astype(np.float32)
    profile = estimate_noise([y])
    assert profile.rms == np.float32(profile.rms) and 0.02 < profile.rms < 0.045
    sample = profile.sample(SR, rng)
    assert len(sample) == SR and abs(np.std(sample) - profile.rms) < 1e-3
