"""openSMILE's eGeMAPS functionals of every item: the speech-emotion field's hand-crafted reference features.

eGeMAPSv02 (Eyben et al. 2016), functionals level: 88 numbers per item (pitch, jitter, shimmer,
loudness, formants, spectral balance, rates), computed by the real openSMILE library of the
`opensmile` package (audEERING's research licence: free for research and education, not for
commercial use; the `egemaps` extra). Each item is its clip's window of its utterance's samples,
mono float32 at 16 kHz as every other stage reads them (wav.load_wav), padding excluded, so the
items and their ids (`clip_id`) are the audio variant's own and comparisons pair. A wav that
cannot be read (corrupt, silent) or a window openSMILE cannot describe (silent, too short: NaN)
is skipped with its reason, never written as zeros.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from avemo.audio.wav import SAMPLE_RATE, load_wav
from avemo.parallel import parallel_map

FEATURE_SET = "eGeMAPSv02"
FEATURE_LEVEL = "Functionals"
N_FEATURES = 88
SILENT_PEAK = 1e-5  # -100 dBFS, load_wav's own threshold for a silent wav
SKIPPED_COLUMNS = ["clip_id", "utterance_id", "file", "reason"]


@dataclass(frozen=True)
class Job:
    """One utterance's wav and the windows (clip id, start s, end s) of its items: each wav is read once."""

    utterance_id: str
    wav_path: str
    windows: tuple[tuple[str, float, float], ...]


def smile():
    """openSMILE set up for eGeMAPSv02 functionals, or a clear message on how to install it."""
    try:
        import opensmile
    except ImportError:
        raise RuntimeError("eGeMAPS needs openSMILE: pip install -e '.[egemaps]' (`make install` includes it; "
                           "audEERING's research licence, not for commercial use)") from None
    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, FEATURE_SET),
                           feature_level=getattr(opensmile.FeatureLevel, FEATURE_LEVEL))


def opensmile_version() -> str:
    from importlib.metadata import version

    return version("opensmile")


def clip_window(y: np.ndarray, start: float, end: float) -> np.ndarray:
    """The real samples of an item's window (at least one), as the log-mel reference takes them."""
    first = int(start * SAMPLE_RATE)
    return y[first: max(int(end * SAMPLE_RATE), first + 1)]


def functionals(extractor, window: np.ndarray) -> np.ndarray:
    """The 88 functionals of one window (float32, openSMILE's own type). Raises ValueError with the reason."""
    if float(np.max(np.abs(window))) < SILENT_PEAK:
        raise ValueError(f"silent clip window (peak below -100 dBFS over {len(window) / SAMPLE_RATE:.2f} s)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Segment too short, filling with NaN": reported below, with the length
        row = extractor.process_signal(window, SAMPLE_RATE).to_numpy()[0]
    if not np.isfinite(row).all():
        raise ValueError(f"openSMILE gave {int((~np.isfinite(row)).sum())} NaN features for a "
                         f"{len(window) / SAMPLE_RATE:.2f} s window (too short to describe)")
    return row


_EXTRACTOR = None


def _init_worker() -> None:
    global _EXTRACTOR
    _EXTRACTOR = smile()


def _process(job: Job) -> list[tuple[str, np.ndarray | None, str]]:
    """(clip id, features or None, reason) for each window of one utterance."""
    try:
        y, _ = load_wav(job.wav_path)
    except ValueError as exc:
        return [(clip_id, None, str(exc)) for clip_id, _, _ in job.windows]
    out = []
    for clip_id, start, end in job.windows:
        try:
            out.append((clip_id, functionals(_EXTRACTOR, clip_window(y, start, end)), ""))
        except ValueError as exc:
            out.append((clip_id, None, str(exc)))
    return out


def plan_jobs(clips: pd.DataFrame, utterances: pd.DataFrame) -> list[Job]:
    """One job per utterance, its items in the clip table's order; every item's utterance must be known."""
    wav_of = dict(zip(utterances["utterance_id"], utterances["wav_path"]))
    unknown = sorted(set(clips["utterance_id"]) - set(wav_of))
    if unknown:
        raise ValueError(f"{len(unknown)} items' utterances are not in the utterance table (e.g. {unknown[0]}): "
                         "the clip table and utterances.parquet come from different corpora")
    windows: dict[str, list[tuple[str, float, float]]] = {}
    for clip_id, utterance_id, start, end in zip(clips["clip_id"], clips["utterance_id"], clips["start"],
                                                 clips["end"]):
        windows.setdefault(utterance_id, []).append((clip_id, float(start), float(end)))
    return [Job(u, str(wav_of[u]), tuple(w)) for u, w in windows.items()]


def egemaps_table(clips: pd.DataFrame, utterances: pd.DataFrame,
                  workers: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clip_id + 88 float32 feature columns, in the clip table's order; skipped items with the reason)."""
    jobs = plan_jobs(clips, utterances)
    names = list(smile().feature_names)
    if len(names) != N_FEATURES:
        raise RuntimeError(f"openSMILE {opensmile_version()} gives {len(names)} {FEATURE_SET} functionals, "
                           f"not {N_FEATURES}")
    wav_of = {j.utterance_id: j.wav_path for j in jobs}
    utterance_of = dict(zip(clips["clip_id"], clips["utterance_id"]))
    rows: dict[str, np.ndarray] = {}
    skipped = []
    for outcome in parallel_map(_process, jobs, workers, "egemaps: openSMILE functionals",
                                initializer=_init_worker, chunksize=4):
        for clip_id, values, reason in outcome:
            if values is None:
                u = utterance_of[clip_id]
                skipped.append({"clip_id": clip_id, "utterance_id": u, "file": wav_of[u], "reason": reason})
            else:
                rows[clip_id] = values
    kept = [c for c in clips["clip_id"] if c in rows]
    matrix = np.stack([rows[c] for c in kept]) if kept else np.zeros((0, N_FEATURES), np.float32)
    table = pd.concat([pd.DataFrame({"clip_id": kept}), pd.DataFrame(matrix.astype(np.float32), columns=names)],
                      axis=1)
    return table, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)


def egemaps_summary(clips: pd.DataFrame, table: pd.DataFrame, skipped: pd.DataFrame, classes: list[str]) -> dict:
    """Items in, written and skipped (in = out + skipped), items per class, and what computed them."""
    written = clips[clips["clip_id"].isin(table["clip_id"])]
    return {"clips_in": len(clips), "clips_out": len(table), "skipped": len(skipped),
            "features": N_FEATURES, "feature_set": f"{FEATURE_SET} {FEATURE_LEVEL.lower()}",
            "opensmile": opensmile_version(), "sample_rate": SAMPLE_RATE,
            "items_per_class": {c: int((written["class"] == c).sum()) for c in classes}}
