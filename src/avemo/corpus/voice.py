"""A source-filter voice whose prosody follows Murray and Arnott (1993).

A glottal pulse train (Rosenberg pulses, open quotient = voice tension) with a smooth
pitch contour is shaped by three formant resonators per syllable, gated by a syllable-rate
envelope, with short fricative bursts between syllables. Emotion moves pitch level, pitch
range, loudness, rate, tension, breathiness and the contour's slope: mostly arousal, so the
voice separates anger/happiness from sadness well and anger from happiness only weakly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import signal

SAMPLE_RATE = 16_000

#: (F1, F2, F3) in Hz of an adult male vocal tract; speakers scale them.
VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]])
BANDWIDTHS = np.array([70.0, 100.0, 160.0])


@dataclass(frozen=True)
class Prosody:
    """How an emotion moves the voice, relative to the speaker's neutral voice."""

    pitch: float = 1.0  # factor on the speaker's mean f0
    range_st: float = 2.0  # pitch accents, in semitones (standard deviation)
    gain_db: float = 0.0
    rate: float = 1.0  # factor on the syllable rate
    open_quotient: float = 0.6  # lower = tenser, brighter voice
    slope_st: float = -1.0  # pitch change over the utterance, in semitones
    breath: float = 0.02  # aspiration noise relative to the pulses


PROSODY: dict[str, Prosody] = {
    "neu": Prosody(),
    "ang": Prosody(pitch=1.28, range_st=5.0, gain_db=8.0, rate=1.12, open_quotient=0.42, slope_st=-2.0, breath=0.01),
    "hap": Prosody(pitch=1.24, range_st=5.0, gain_db=6.5, rate=1.08, open_quotient=0.48, slope_st=2.0, breath=0.03),
    "exc": Prosody(pitch=1.27, range_st=5.5, gain_db=7.0, rate=1.12, open_quotient=0.46, slope_st=2.0, breath=0.03),
    "sad": Prosody(pitch=0.92, range_st=1.0, gain_db=-6.0, rate=0.78, open_quotient=0.72, slope_st=-3.0, breath=0.07),
    "fru": Prosody(pitch=1.10, range_st=3.0, gain_db=3.0, rate=1.0, open_quotient=0.5, slope_st=-1.5, breath=0.02),
    "sur": Prosody(pitch=1.30, range_st=6.0, gain_db=4.0, rate=1.0, open_quotient=0.5, slope_st=4.0, breath=0.03),
    "fea": Prosody(pitch=1.20, range_st=4.0, gain_db=0.0, rate=1.18, open_quotient=0.55, slope_st=0.0, breath=0.07),
    "dis": Prosody(pitch=0.95, range_st=2.0, gain_db=1.0, rate=0.9, open_quotient=0.55, slope_st=-2.0, breath=0.03),
    "oth": Prosody(pitch=1.05, range_st=2.5, gain_db=1.0, rate=1.0, open_quotient=0.58, slope_st=0.0, breath=0.03),
}


@dataclass(frozen=True)
class Speaker:
    """A speaker's neutral voice: mean pitch and vocal-tract length (formant scale)."""

    f0: float
    formant_scale: float


def make_speaker(gender: str, rng: np.random.Generator, pitch_scale: float = 1.0) -> Speaker:
    """Female voices sit about an octave-fifth higher, with shorter vocal tracts."""
    low, high = (190, 235) if gender == "F" else (100, 135)
    if pitch_scale != 1.0:
        low, high = low * pitch_scale, high * pitch_scale
    formants = (1.12, 1.2) if gender == "F" else (0.97, 1.04)
    return Speaker(f0=float(rng.uniform(low, high)), formant_scale=float(rng.uniform(*formants)))


def blend(a: Prosody, b: Prosody, w: float) -> Prosody:
    """A mixture of two emotions (used for utterances without a majority label)."""
    return Prosody(*(float((1 - w) * x + w * y) for x, y in zip(_fields(a), _fields(b))))


def _fields(p: Prosody) -> tuple[float, ...]:
    return (p.pitch, p.range_st, p.gain_db, p.rate, p.open_quotient, p.slope_st, p.breath)


def vary(p: Prosody, rng: np.random.Generator) -> Prosody:
    """Per-utterance variation, so that classes overlap as real ones do."""
    return replace(
        p,
        pitch=p.pitch * float(rng.normal(1, 0.06)),
        range_st=max(0.3, p.range_st * float(rng.normal(1, 0.3))),
        gain_db=p.gain_db + float(rng.normal(0, 3.0)),
        rate=p.rate * float(rng.normal(1, 0.1)),
        open_quotient=float(np.clip(p.open_quotient + rng.normal(0, 0.05), 0.3, 0.85)),
        slope_st=p.slope_st + float(rng.normal(0, 1.5)),
        breath=max(0.0, p.breath * float(rng.normal(1, 0.3))),
    )


def rosenberg(phase: np.ndarray, open_quotient: float) -> np.ndarray:
    """Rosenberg glottal flow over one period (phase in [0, 1)): rise, fall, closed."""
    rise, fall = 0.65 * open_quotient, 0.35 * open_quotient
    flow = np.zeros_like(phase)
    up = phase < rise
    down = (phase >= rise) & (phase < rise + fall)
    flow[up] = 0.5 * (1 - np.cos(np.pi * phase[up] / rise))
    flow[down] = np.cos(0.5 * np.pi * (phase[down] - rise) / fall)
    return flow


def resonator_sos(freqs: np.ndarray, bandwidths: np.ndarray, sr: int) -> np.ndarray:
    """Cascade of two-pole resonators, one per formant, as second-order sections."""
    r = np.exp(-np.pi * bandwidths / sr)
    theta = 2 * np.pi * freqs / sr
    sos = np.zeros((len(freqs), 6))
    sos[:, 0] = 1 - r  # rough unit gain at the peak
    sos[:, 3] = 1.0
    sos[:, 4] = -2 * r * np.cos(theta)
    sos[:, 5] = r**2
    return sos


def speak(duration: float, speaker: Speaker, prosody: Prosody, rng: np.random.Generator,
          sr: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Synthesise `duration` seconds of speech: (waveform, amplitude envelope), both at `sr`."""
    n = int(round(duration * sr))
    t = np.arange(n) / sr

    # Syllables: durations around 1 / (4.5 syl/s * rate), with short pauses between words.
    mean_syl = 1.0 / (4.5 * prosody.rate)
    bounds = [0.0]
    while bounds[-1] < duration:
        bounds.append(bounds[-1] + mean_syl * float(rng.uniform(0.6, 1.4)))
    bounds = np.minimum(np.array(bounds), duration)
    n_syl = len(bounds) - 1

    # Pitch: declination/slope plus smooth per-syllable accents, in semitones.
    centres = 0.5 * (bounds[:-1] + bounds[1:])
    accents = rng.normal(0, prosody.range_st, n_syl)
    semitones = np.interp(t, centres, accents) + prosody.slope_st * (t / max(duration, 1e-3) - 0.5)
    f0 = speaker.f0 * prosody.pitch * 2 ** (semitones / 12) * (1 + 0.01 * rng.standard_normal(n))
    phase = np.cumsum(f0) / sr
    source = np.diff(rosenberg(phase % 1.0, prosody.open_quotient), prepend=0.0)
    source += prosody.breath * 0.05 * rng.standard_normal(n)

    speech = np.zeros(n)
    envelope = np.zeros(n)
    fricative_sos = signal.butter(4, 3000, btype="highpass", fs=sr, output="sos")
    for k in range(n_syl):
        a, b = int(bounds[k] * sr), int(bounds[k + 1] * sr)
        if b - a < 16 or rng.random() < 0.08:
            continue  # a pause between words
        vowel = VOWELS[rng.integers(len(VOWELS))] * speaker.formant_scale
        segment = signal.sosfilt(resonator_sos(vowel, BANDWIDTHS, sr), source[a:b])
        segment /= np.std(segment) or 1.0  # every vowel at the same level before the envelope
        shape = np.sin(np.pi * np.linspace(0, 1, b - a)) ** 0.7
        speech[a:b] = segment * shape
        envelope[a:b] = shape
        burst = min(b - a, int(rng.uniform(0.02, 0.05) * sr))
        if rng.random() < 0.6:  # a consonant onset, well below the vowel
            noise = signal.sosfilt(fricative_sos, rng.standard_normal(burst))
            speech[a:a + burst] += 0.12 * noise / (np.std(noise) or 1.0) * np.hanning(burst)

    peak = np.max(np.abs(speech)) or 1.0
    gain = 10 ** ((prosody.gain_db - 14) / 20)  # neutral speech peaks around -14 dBFS
    return speech / peak * gain, envelope * gain


def room_noise(n: int, level_db: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Background noise of a recording room: pink-ish broadband noise plus a faint mains hum."""
    white = rng.standard_normal(n)
    pink = signal.lfilter([0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189], white)
    pink /= np.std(pink) or 1.0
    hum = 0.3 * np.sin(2 * np.pi * 60 * np.arange(n) / sr + rng.uniform(0, 2 * np.pi))
    return (pink + hum) * 10 ** (level_db / 20)
