"""One audio dataset variant (DS I-IV): utterances -> spectrogram items, streamed into one array.

Output folder: `clips.parquet` (one row per item, `row` indexes the array), `spectrograms.npy`
(float16 dB, items x bins x frames, memory-mappable) and `meta.json`. Utterances are
processed in parallel and streamed into the array, so the corpus never sits in memory.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avemo.audio.cleanup import NoiseProfile, clean, estimate_noise
from avemo.audio.segment import Clip, SegmentPolicy, plan_clips
from avemo.audio.spectrogram import fit_frames, spectrogram_db
from avemo.audio.wav import SAMPLE_RATE, load_wav
from avemo.parallel import parallel_map
from avemo.params import Audio, Cleanup, Spectrogram

if TYPE_CHECKING:  # pandas costs a cold `avemo predict` ~0.3 s: imported where a table is made or read
    import pandas as pd

SKIPPED_COLUMNS = ["file", "utterance_id", "action", "reason"]
#: Utterance fields every item carries, so later stages need not join the utterance table.
UTTERANCE_FIELDS = ["class", "label", "session", "speaker", "dialog", "markers", "gender"]
CLIP_COLUMNS = ["clip_id", "utterance_id", "clip_index", "start", "end", "padded", "row", *UTTERANCE_FIELDS,
                "utt_start", "avi_path"]


#: The study's names for the four variants.
STUDY_NAMES = {"full-raw": "DS I", "full-clean": "DS II", "clip3s-raw": "DS III", "clip3s-clean": "DS IV"}


@dataclass(frozen=True)
class VariantConfig:
    policy: SegmentPolicy
    cleanup: Cleanup | None  # None: the raw variant
    spectrogram: Spectrogram
    min_seconds: float = 0.3  # shorter utterances are skipped: too little to learn from
    workers: int = 0


def variant_config(audio: Audio, segmentation: str, cleanup: str) -> VariantConfig:
    """params.yaml `audio` -> one variant: `full` or `clip3s` segmentation, `raw` or `clean`."""
    return VariantConfig(policy=SegmentPolicy(segmentation=segmentation, **audio.segment.model_dump()),
                         cleanup=audio.cleanup.clean if cleanup == "clean" else None,
                         spectrogram=audio.spectrogram, min_seconds=audio.min_seconds, workers=audio.workers)


@dataclass(frozen=True)
class Job:
    utterance_id: str
    wav_path: str
    clips: tuple[Clip, ...]
    first_row: int  # where its items go in the array
    session: int = 0  # whose room noise pads and cleans its clips


@dataclass
class Outcome:
    utterance_id: str
    written: bool  # items written at the job's rows; False when skipped
    action: str = ""  # '', 'skipped' or 'resampled'
    reason: str = ""


_CFG: VariantConfig | None = None
_NOISE: dict[int, NoiseProfile] | None = None
_ARRAY: np.ndarray | None = None


def _init_worker(cfg: VariantConfig, noise: dict[int, NoiseProfile] | None, array_path: str) -> None:
    """Each worker writes its items straight into the memory-mapped array (no pickling back)."""
    global _CFG, _NOISE, _ARRAY
    _CFG, _NOISE, _ARRAY = cfg, noise, np.load(array_path, mmap_mode="r+")


def item_spectrograms(y: np.ndarray, clips: tuple[Clip, ...], utterance_id: str, cfg: VariantConfig,
                      noise: NoiseProfile | None) -> np.ndarray:
    """The spectrogram of each clip of one utterance, padded with corpus noise where planned.

    `noise` may be None only when no clip is padded and there is no clean-up (see `needs_noise`).
    """
    sp = cfg.spectrogram
    n_clip = int(round(cfg.policy.clip_seconds * SAMPLE_RATE))
    time_axis = sp.full_time_axis if cfg.policy.segmentation == "full" else "crop_pad"
    out = np.empty((len(clips), sp.bins, sp.frames), np.float16)
    for k, clip in enumerate(clips):
        segment = y[int(round(clip.start * SAMPLE_RATE)): int(round(clip.end * SAMPLE_RATE))]
        rng = np.random.default_rng(zlib.crc32(f"{utterance_id}:{clip.index}".encode()))
        if clip.padded:
            segment = np.concatenate([segment, noise.sample(max(0, n_clip - len(segment)), rng)])
        if cfg.cleanup is not None:
            segment = clean(segment, SAMPLE_RATE, noise.sample(SAMPLE_RATE, rng), cfg.cleanup)
        out[k] = fit_frames(spectrogram_db(segment, SAMPLE_RATE, sp), sp.frames, time_axis, sp.floor_db)
    return out


def process(job: Job) -> Outcome:
    try:
        y, note = load_wav(job.wav_path)
    except ValueError as exc:
        return Outcome(job.utterance_id, False, "skipped", str(exc))
    noise = _NOISE[job.session] if _NOISE is not None else None
    _ARRAY[job.first_row: job.first_row + len(job.clips)] = item_spectrograms(y, job.clips, job.utterance_id, _CFG, noise)
    return Outcome(job.utterance_id, True, "resampled" if note else "", note)


def plan_jobs(utterances: pd.DataFrame, cfg: VariantConfig) -> tuple[list[Job], list[dict]]:
    """Which clips each utterance gives; utterances the policy drops are reported, not lost."""
    jobs, skipped, row = [], [], 0
    for utterance_id, wav_path, seconds, session in zip(utterances["utterance_id"].tolist(),
                                                        utterances["wav_path"].tolist(),
                                                        utterances["wav_seconds"].tolist(),
                                                        utterances["session"].tolist()):
        if seconds < cfg.min_seconds:
            skipped.append(_skip_row(utterance_id, wav_path,
                                     f"too short: {seconds:.2f} s < audio.min_seconds={cfg.min_seconds}"))
            continue
        clips = plan_clips(seconds, cfg.policy)
        if not clips:
            skipped.append(_skip_row(utterance_id, wav_path,
                                     f"shorter than {cfg.policy.clip_seconds} s and audio.short=drop"))
            continue
        jobs.append(Job(utterance_id, wav_path, tuple(clips), row, int(session)))
        row += len(clips)
    return jobs, skipped


def _skip_row(utterance_id: str, wav_path: str, reason: str, action: str = "skipped") -> dict:
    return {"file": wav_path, "utterance_id": utterance_id, "action": action, "reason": reason}


def needs_noise(jobs: list[Job], cfg: VariantConfig) -> bool:
    """Whether any item uses the corpus noise: padding and clean-up do; `full` raw items never do."""
    return cfg.cleanup is not None or any(clip.padded for job in jobs for clip in job.clips)


def corpus_noise(utterances: pd.DataFrame, max_files: int = 60, seconds: float = 2.0) -> NoiseProfile:
    """The corpus' room noise, from the quietest frames of the first seconds of up to `max_files` utterances."""
    signals = []
    for path in utterances["wav_path"].iloc[:: max(1, len(utterances) // max_files)]:
        try:
            signals.append(load_wav(path, max_frames=int(seconds * SAMPLE_RATE))[0])
        except ValueError:
            continue  # reported when the utterance itself is processed
    return estimate_noise(signals)


def session_noise(utterances: pd.DataFrame) -> dict[int, NoiseProfile]:
    """Each session's room noise, from its own recordings only: a session's clips are padded and cleaned with
    noise that no other session shaped, so a test session shapes nothing a model trains on (under any split:
    the fixed one and every leave-one-session-out fold use the same variant)."""
    return {int(s): corpus_noise(group) for s, group in utterances.groupby("session", sort=True)}


def build_variant(utterances: pd.DataFrame, cfg: VariantConfig, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write one variant to `out_dir`; return (clip table, skipped table)."""
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, skipped = plan_jobs(utterances, cfg)
    noise = session_noise(utterances) if needs_noise(jobs, cfg) else None
    planned = sum(len(j.clips) for j in jobs)
    sp = cfg.spectrogram
    array_path = out_dir / "spectrograms.npy"
    np.lib.format.open_memmap(array_path, mode="w+", dtype=np.float16, shape=(planned, sp.bins, sp.frames)).flush()
    wav_of = {j.utterance_id: j.wav_path for j in jobs}
    name = f"audio: {cfg.policy.segmentation}-{'clean' if cfg.cleanup else 'raw'}"
    written = set()
    for outcome in parallel_map(process, jobs, cfg.workers, name, _init_worker, (cfg, noise, str(array_path)),
                                chunksize=8):
        if outcome.action:
            skipped.append(_skip_row(outcome.utterance_id, wav_of[outcome.utterance_id], outcome.reason,
                                     outcome.action))
        if outcome.written:
            written.add(outcome.utterance_id)
    clips = clip_table(utterances, [j for j in jobs if j.utterance_id in written])
    if len(clips) < planned:
        _keep_rows(array_path, clips["row"].tolist())
    clips["row"] = np.arange(len(clips))
    clips.to_parquet(out_dir / "clips.parquet", index=False)
    meta = {"segmentation": asdict(cfg.policy), "cleanup": cfg.cleanup.model_dump() if cfg.cleanup else None,
            "spectrogram": sp.model_dump(), "sample_rate": SAMPLE_RATE, "shape": [len(clips), sp.bins, sp.frames],
            "dtype": "float16", "unit": "dB re 1.0, clipped to [floor_db, ceiling_db]",
            # a served recording names no session: it is padded with the pooled profile (serving.py)
            "noise": corpus_noise(utterances).to_dict() if noise is not None else None,
            "noise_by_session": {str(s): n.to_dict() for s, n in noise.items()} if noise is not None else None}
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return clips, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)


def variant_summary(n_utterances: int, clips: pd.DataFrame, skipped: pd.DataFrame, classes: list[str]) -> dict:
    """The variant's counts: utterances in, kept, skipped (resampled ones are kept, and listed too)."""
    dropped = int((skipped["action"] == "skipped").sum())
    kept = int(clips["utterance_id"].nunique())
    return {"utterances_in": n_utterances, "utterances_out": kept, "skipped": dropped,
            "resampled": int((skipped["action"] == "resampled").sum()), "items": len(clips),
            "padded": int(clips["padded"].sum()),
            "items_per_class": {c: int((clips["class"] == c).sum()) for c in classes}}


def clip_table(utterances: pd.DataFrame, jobs: list[Job]) -> pd.DataFrame:
    """One row per written item, with its utterance's fields; `row` is its place in the array as planned."""
    import pandas as pd

    clips = [(j, k, c) for j in jobs for k, c in enumerate(j.clips)]
    where = pd.Index(utterances["utterance_id"]).get_indexer([j.utterance_id for j, _, _ in clips])
    fields = utterances.iloc[where][["utterance_id", *UTTERANCE_FIELDS, "start", "avi_path"]].reset_index(drop=True)
    table = pd.DataFrame({
        "clip_id": [f"{j.utterance_id}_c{c.index:02d}" for j, _, c in clips],
        "utterance_id": fields["utterance_id"],
        "clip_index": pd.Series([c.index for _, _, c in clips], dtype="int64"),
        "start": pd.Series([round(c.start, 4) for _, _, c in clips], dtype="float64"),
        "end": pd.Series([round(c.end, 4) for _, _, c in clips], dtype="float64"),
        "padded": pd.Series([c.padded for _, _, c in clips], dtype="bool"),
        "row": pd.Series([j.first_row + k for j, k, _ in clips], dtype="int64"),
        **{name: fields[name] for name in UTTERANCE_FIELDS},
        "utt_start": fields["start"], "avi_path": fields["avi_path"]})
    return table[CLIP_COLUMNS]


def _keep_rows(path: Path, keep: list[int], chunk: int = 256) -> None:
    """Drop the rows of skipped utterances from an .npy array, streaming chunk by chunk."""
    source = np.load(path, mmap_mode="r")
    tmp = path.with_suffix(".tmp.npy")
    target = np.lib.format.open_memmap(tmp, mode="w+", dtype=source.dtype, shape=(len(keep), *source.shape[1:]))
    for a in range(0, len(keep), chunk):
        target[a: a + chunk] = source[keep[a: a + chunk]]
    target.flush()
    del source, target
    tmp.replace(path)
