"""Issue 33's probe variant: the full-raw variant's log-mel spectrograms with three contour rows appended, each
repeated REPEAT times so a 5 x 5 kernel sees it whole: pitch (librosa's YIN, semitones above 55 Hz, unvoiced frames
at the clip's median), frame loudness (RMS, dB) and voicing (loudness within 25 dB of the clip's peak), resized to
the variant's frames as its spectrograms are. Outside the pipeline: docs/recipe.md records what it measured.

    python scripts/prosody_variant.py PROJECT OUT REPEAT [speaker] [pyin]   # then scripts/loso_joins.py ... --variant OUT

`speaker`: the pitch and loudness rows relative to the speaker's own median over all of the speaker's clips (voiced
frames), re-centred on the corpus median: what is left is how this utterance departs from the speaker's usual voice.
Transductive: a test speaker's unlabelled clips set the speaker's medians, as in the field's speaker normalisation.
`pyin`: librosa's probabilistic YIN instead, its voicing decision for the voiced frames and its voicing probability
for the voicing row, instead of YIN gated by loudness.
"""
import json
import shutil
import sys
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import soundfile as sf

root, out, repeat = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
per_speaker, pyin = "speaker" in sys.argv[4:], "pyin" in sys.argv[4:]
src = root / "data/processed/audio/full-raw"
clips = pd.read_parquet(src / "clips.parquet")
wavs = dict(pd.read_parquet(root / "data/interim/utterances.parquet")[["utterance_id", "wav_path"]].values)
spec = np.load(src / "spectrograms.npy")
frames = spec.shape[2]
contours = []
for clip in clips.itertuples():
    y, sr = sf.read(root / wavs[clip.utterance_id], dtype="float32")
    y = y[int(clip.start * sr): int(clip.end * sr)]
    if pyin:
        f0, voiced, voicing = librosa.pyin(y, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=160)
        f0 = np.where(voiced, f0, 55.0)  # unvoiced frames: replaced by the clip's median below
    else:
        f0 = librosa.yin(y, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=160)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=160)[0][: len(f0)]
    db = 20 * np.log10(np.maximum(rms, 1e-5))
    if not pyin:
        voiced = db > db.max() - 25
        voicing = voiced.astype(float)
    st = 12 * np.log2(f0 / 55.0)  # semitones above 55 Hz: ~20-45 for these voices
    contours.append((st, db, voiced, voicing))
if per_speaker:  # each speaker's median pitch (semitones) and loudness (dB) over the voiced frames of all clips
    speakers = clips["speaker"].to_numpy()
    medians = {}
    for who in np.unique(speakers):
        mine = [c for c, s in zip(contours, speakers) if s == who]
        medians[who] = (np.median(np.concatenate([st[v] for st, _, v, _ in mine])),
                        np.median(np.concatenate([db[v] for _, db, v, _ in mine])))
    corpus = np.median(np.array(list(medians.values())), axis=0)
    contours = [(st - medians[s][0] + corpus[0], db - medians[s][1] + corpus[1], voiced, voicing)
                for (st, db, voiced, voicing), s in zip(contours, speakers)]
rows = []
for st, db, voiced, voicing in contours:
    st = np.where(voiced, st, np.median(st[voiced]) if voiced.any() else 30.0)
    t = np.linspace(0, len(st) - 1, frames)
    resize = lambda v: np.interp(t, np.arange(len(v)), v)  # noqa: E731  (the variant resizes full utterances)
    contour = np.stack([resize(st) * 2 - 60, resize(db) + 0, resize(voicing) * 100 - 50])
    rows.append(np.repeat(np.clip(contour, -60, 60), repeat, axis=0))
out.mkdir(parents=True, exist_ok=True)
np.save(out / "spectrograms.npy", np.concatenate([spec, np.stack(rows)], axis=1).astype(np.float16))
shutil.copy(src / "clips.parquet", out / "clips.parquet")
meta = json.loads((src / "meta.json").read_text())
meta["shape"] = [spec.shape[0], spec.shape[1] + 3 * repeat, frames]
(out / "meta.json").write_text(json.dumps(meta))
print(meta["shape"])
