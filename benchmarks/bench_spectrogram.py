"""Spectrograms: this project's `audio` stage against the study's way, same clips, one run.

The study's way (its published code): load at 44.1 kHz with librosa, STFT n_fft 2048 hop 512,
amplitude in dB, draw with matplotlib on a fixed -60..+60 dB colour scale (4 x 3 inch, axes
off), save a PNG, re-open it with PIL, crop the top 60 % and resize back to 300 x 200.
Ours: the `clip3s-raw` variant built by `avemo.audio.variant.build_variant`, with 1 and 2
worker processes (process start-up included), best of `REPEATS` runs each, since one run
takes about a second and the machine's noise would otherwise decide the scaling figure.
The study's way runs once (about 20 s). Prints clips per second and the ratios.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from avemo.audio.segment import SegmentPolicy
from avemo.audio.variant import VariantConfig, build_variant
from avemo.corpus import voice
from avemo.params import STUDY_SPECTROGRAM

N_CLIPS = int(os.environ.get("BENCH_CLIPS", "400"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def make_clips(folder: Path, n: int) -> pd.DataFrame:
    """`n` 3-second synthetic utterances (the corpus voice plus room noise), as 16 kHz wavs."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n):
        speaker = voice.make_speaker("FM"[k % 2], rng)
        emotion = ("neu", "hap", "ang", "sad")[k % 4]
        y, _ = voice.speak(3.0, speaker, voice.PROSODY[emotion], rng)
        y = np.clip(y + voice.room_noise(len(y), -50, rng), -1, 1)
        path = folder / f"Ses01F_impro01_F{k:03d}.wav"
        sf.write(path, y, 16000, subtype="PCM_16")
        rows.append({"utterance_id": path.stem, "wav_path": str(path), "wav_seconds": 3.0, "class": emotion,
                     "label": emotion, "session": 1, "speaker": "Ses01F", "dialog": "Ses01F_impro01",
                     "markers": "F", "gender": "F", "start": 0.0, "avi_path": ""})
    return pd.DataFrame(rows)


def study_way(paths: list[str]) -> list[np.ndarray]:
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    images = []
    for path in paths:
        y, sr = librosa.load(path, sr=44100)
        db = librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=2048, hop_length=512)), top_db=80)
        fig = plt.figure(figsize=(4, 3))
        ax = fig.add_axes([0, 0, 1, 1])
        ax.imshow(db, origin="lower", aspect="auto", vmin=-60, vmax=60)
        ax.axis("off")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        w, h = image.size
        image = image.crop((0, int(0.6 * h), w, h)).resize((300, 200))
        images.append(np.asarray(image))
    return images


def ours(utterances: pd.DataFrame, out: Path, workers: int) -> int:
    cfg = VariantConfig(SegmentPolicy(), None, STUDY_SPECTROGRAM, workers=workers)
    clips, _ = build_variant(utterances, cfg, out)
    return len(clips)


def timed(fn, *args, repeats: int = 1) -> tuple[float, object]:
    """Best wall time of `repeats` calls, and the last result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        utterances = make_clips(tmp, N_CLIPS)
        # Ours first, as a stage process would run: forking a process that still holds the study's
        # matplotlib state and 72 MB of images costs the 2-worker runs ~15 ms that no real run pays.
        t_one, n_one = timed(ours, utterances, tmp / "one", 1, repeats=REPEATS)
        t_two, n_two = timed(ours, utterances, tmp / "two", 2, repeats=REPEATS)
        t_study, images = timed(study_way, list(utterances["wav_path"]))
    assert len(images) == n_one == n_two == N_CLIPS
    study, one, two = N_CLIPS / t_study, N_CLIPS / t_one, N_CLIPS / t_two
    print(f"clips: {N_CLIPS} x 3 s, ours best of {REPEATS}, cores available: {os.cpu_count()}, python {sys.version.split()[0]}")
    print(f"study's way (librosa 44.1 kHz + matplotlib PNG + PIL crop/resize): {study:8.1f} clips/s")
    print(f"avemo audio stage, 1 worker:                                      {one:8.1f} clips/s")
    print(f"avemo audio stage, 2 workers:                                     {two:8.1f} clips/s")
    print(f"speed-up over the study's way (2 workers): {two / study:6.1f}x   (target >= 30x)")
    print(f"scaling 2 workers / 1 worker:              {two / one:6.2f}x   (target >= 1.7x)")


if __name__ == "__main__":
    main()
