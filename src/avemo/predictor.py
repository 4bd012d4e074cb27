"""The registered model without MLflow: raw audio (and video) in, class probabilities out.

It runs the training stages' own code on raw input, with the parameters stored beside the
weights: the audio stage's wav reader, segmentation, clean-up and spectrogram
(`item_spectrograms`), the loader's scaling and frequency crop (`model_input`), the video
stage's frame reading and face crop (`cut_clips`), the network built by the training recipe.
Long utterances give several clips; their probabilities are averaged. The MLflow pyfunc
(serving.py) and `avemo predict` both run it; it imports no MLflow, which keeps the CLI's cold
start short. What a row may carry, and how it is read, is inputs.py's business.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from avemo.audio.cleanup import NoiseProfile, estimate_noise
from avemo.audio.segment import Clip, SegmentPolicy, plan_clips
from avemo.audio.variant import VariantConfig, item_spectrograms
from avemo.audio.wav import SAMPLE_RATE, load_wav
from avemo.data.datasets import frames_tensor, model_input
from avemo.inputs import (
    Files,
    InputError,
    audio_bytes,
    check_window,
    given,
    side,
    video_file,
    window,
)
from avemo.models.checkpoint import load_checkpoint
from avemo.params import Cleanup, Spectrogram, Video
from avemo.video.extract import DialogueJob, cut_clips
from avemo.video.frames import VideoError, open_video

#: A served input is one utterance (IEMOCAP's longest lasts 35 s): the bound keeps a request's cost bounded.
MAX_SECONDS = 60.0
#: Quieter than this (RMS over the whole input) is silence, refused: an empty room's recording or a file of
#: dither (+-1 LSB of 16 bits: -92 dBFS) would get a confident emotion. The embedded corpus's quietest
#: utterance measures -36.1 dBFS and its quietest room noise alone -58 dBFS (700 utterances of `avemo synth`).
SILENCE_DBFS = -60.0
FIELDS = {"audio": ("audio_b64",), "fusion": ("audio_b64", "video_b64", "start", "end", "side")}
VIDEO_FIELDS = ("video_b64", "video_path", "start", "end", "side")


def rms_dbfs(y: np.ndarray) -> float:
    """The level of samples in [-1, 1], dB relative to full scale (-inf for digital silence)."""
    with np.errstate(divide="ignore"):
        return float(10 * np.log10(np.mean(np.square(y, dtype=np.float64))))


class Predictor:
    """A model file (it carries its network and classes: models/checkpoint.py) and its serving config
    (serving.serving_config as JSON: the preprocessing), ready to answer."""

    def __init__(self, weights: Path, config: Path, files: Files):
        self.config = c = json.loads(config.read_text())
        self.files = files
        self.network, spec = load_checkpoint(weights)
        self.family, self.classes = spec.family, list(spec.classes)
        self.variant = VariantConfig(policy=SegmentPolicy(**c["segmentation"]),
                                     cleanup=Cleanup(**c["cleanup"]) if c["cleanup"] else None,
                                     spectrogram=Spectrogram(**c["spectrogram"]), min_seconds=c["min_seconds"])
        self.noise = NoiseProfile.from_dict(c["noise"]) if c["noise"] else None
        self.session_noise = {int(k): NoiseProfile.from_dict(v) for k, v in (c.get("noise_by_session") or {}).items()}
        self.video = Video(**c["video"])
        # Each input's video is decoded beside its audio preparation; concurrent requests' side by side.
        self.decoder = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
        cv2.setNumThreads(1)
        # numpy's BLAS on one thread, as in the pipeline's stages (determinism.py): the mel filters' product (64 x
        # 513 by 513 x 301) takes 0.5 ms on one, and 20 ms or more on two threads spinning against the decoding
        # thread and torch's. The answers are the same (checked on the registered models' answers).
        threadpool_limits(1, user_api="blas")

    def predict(self, rows: list[dict]) -> np.ndarray:
        """Class probabilities, one row per input; InputError on the first input it cannot answer for."""
        if not rows:
            raise InputError(f"no input: each row needs {' and '.join(FIELDS[self.family][:2])} (base64-encoded "
                             "bytes); fields other than audio_b64, video_b64, start, end, side, audio_path and "
                             "video_path are dropped by MLflow before the model sees them")
        return np.stack([self.predict_one(row, k) for k, row in enumerate(rows)])

    def predict_one(self, row: dict, k: int) -> np.ndarray:
        """One input's probabilities: the mean over its clips."""
        return self.probabilities(*self.inputs(row, k))

    def inputs(self, row: dict, k: int) -> tuple[torch.Tensor, ...]:
        """What the network reads for row `k`: its clips' spectrograms (and, for fusion, their face frames)."""
        label, name, y = self.samples(row, k)
        clips = plan_clips(len(y) / SAMPLE_RATE, self.variant.policy)
        if not clips:
            raise InputError(f"{label}: shorter than one {self.variant.policy.clip_seconds} s clip, which this "
                             "model drops (audio.segment.short=drop)")
        if self.family == "audio":
            extra = [f for f in VIDEO_FIELDS if given(row.get(f))]
            if extra:
                raise InputError(f"{', '.join(extra)} (row {k}): this audio model reads the audio alone")
            return (self.spectrograms(y, clips, name),)
        start, end = window(row, k)
        with video_file(row, k, self.files) as (video_label, path):  # a missing video is named before the side
            speaker = side(row, k)
            frames = self.decoder.submit(self.frames, path, video_label, start, end, speaker, len(y) / SAMPLE_RATE,
                                         clips, name)
            return self.spectrograms(y, clips, name), frames.result()

    def samples(self, row: dict, k: int) -> tuple[str, str, np.ndarray]:
        """(a label for messages, a name, 16 kHz mono samples) of row `k`'s audio, checked.

        The name seeds the noise of padded clips, as the utterance id does in the audio stage: a
        file's stem (an utterance named as in the corpus gets the very same noise), else `audio_b64`.
        """
        label, data = audio_bytes(row, k, self.files)
        name = Path(str(row["audio_path"])).stem if given(row.get("audio_path")) else "audio_b64"
        try:
            y, _ = load_wav(data, resample=False)
        except ValueError as exc:
            raise InputError(f"{label}: {exc}") from None
        seconds = len(y) / SAMPLE_RATE
        if seconds < self.variant.min_seconds:
            raise InputError(f"{label}: too short: {seconds:.2f} s < {self.variant.min_seconds} s")
        if seconds > MAX_SECONDS:
            raise InputError(f"{label}: too long: {seconds:.1f} s > {MAX_SECONDS:.0f} s: send one utterance")
        level = rms_dbfs(y)
        if level < SILENCE_DBFS:
            raise InputError(f"{label}: silent: its level is {level:.1f} dBFS RMS, below {SILENCE_DBFS:.0f} dBFS "
                             "(speech measures -36 dBFS or more, an empty room -58 dBFS)")
        return label, name, y

    def spectrograms(self, y: np.ndarray, clips: list[Clip], name: str) -> torch.Tensor:
        """The network's audio input: each clip's spectrogram, scaled and cropped as the loader does."""
        session = re.match(r"Ses0(\d)", name)  # a corpus utterance: its own session's noise, as in training
        noise = self.session_noise.get(int(session.group(1)), self.noise) if session else self.noise
        if noise is None and (self.variant.cleanup or any(clip.padded for clip in clips)):
            noise = estimate_noise([y])  # the variant needed none in training; this input's own quiet frames
        c = self.config["spectrogram"]
        db = item_spectrograms(y, clips, name, self.variant, noise)
        return torch.stack([model_input(d, c["floor_db"], c["ceiling_db"], self.config["crop_ratio"]) for d in db])

    def frames(self, path: str, label: str, start: float | None, end: float | None, speaker: str, seconds: float,
               clips: list[Clip], name: str) -> torch.Tensor:
        """The speaker's face frames for each clip's window (from `start`, default 0, as long as the audio), as
        the video stage cuts them; the window is checked against the video first."""
        try:
            cap, fps, count = open_video(path)
        except VideoError as exc:
            raise InputError(f"{label}: {exc}") from None
        try:
            check_window(start, end, seconds, count / fps if count > 0 else None, fps, label)
        except InputError:
            cap.release()
            raise
        start, n = start or 0.0, len(clips)
        job = DialogueJob(path, tuple(f"{name}_c{c.index:02d}" for c in clips), (speaker,) * n,
                          tuple((start + c.start, start + c.end) for c in clips), tuple(range(n)), self.video)
        stacks = []
        for result in cut_clips(job, cap, fps, max(count, 0)):  # a corrupt header's negative count: unknown
            if result.frames is None:
                raise InputError(f"{label}: {result.reason}")
            stacks.append(frames_tensor(result.frames))
        return torch.stack(stacks)

    def probabilities(self, *inputs: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            logits = self.network(*inputs)
        return torch.softmax(logits.float(), dim=1).mean(dim=0).numpy()
