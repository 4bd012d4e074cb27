"""The registered model: raw audio (and video) in, an emotion and class probabilities out.

An MLflow pyfunc that runs the training stages' own code on raw input, with the parameters
stored beside the weights: the audio stage's wav reader, segmentation, clean-up and
spectrogram (`item_spectrograms`), the loader's scaling and frequency crop (`model_input`),
the video stage's frame reading and face crop (`process_dialogue`), the network built by the
training recipe. Long utterances give several clips; their probabilities are averaged.

Input: a table with `audio_path` (a wav file) or `audio_b64` (the wav's bytes, base64), and
for fusion `video_path`, `start`, `end` (the utterance's window in the video, seconds) and
`side` (`left` or `right`: the speaker's half of the split screen; default left). Output:
`emotion` and `p_<class>` for every class. Bad input (corrupt, silent, too short, another
sample rate, NaN, a video that cannot be read) raises a clear error, never an emotion.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from avemo.audio.cleanup import NoiseProfile, estimate_noise
from avemo.audio.segment import SegmentPolicy, plan_clips
from avemo.audio.variant import VariantConfig, item_spectrograms
from avemo.audio.wav import SAMPLE_RATE, load_wav
from avemo.data.datasets import frames_tensor, model_input
from avemo.models.checkpoint import load_checkpoint
from avemo.params import Cleanup, Params, Spectrogram, Video
from avemo.video.extract import DialogueJob, process_dialogue

COLUMNS = ("audio_path", "audio_b64", "video_path", "start", "end", "side")


class BadInput(MlflowException):
    """An input the model cannot answer for; the server turns it into a 400 response with this message."""

    def __init__(self, message: str):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


def serving_config(params: Params, audio_dir: Path) -> dict:
    """Everything the pyfunc needs besides the model file (which carries its network and classes): the
    audio variant's preprocessing (from its meta.json: the parameters it was really built with), the
    load-time scaling and crop, and the video settings."""
    meta = json.loads((audio_dir / "meta.json").read_text())
    return {"spectrogram": meta["spectrogram"], "segmentation": meta["segmentation"], "cleanup": meta["cleanup"],
            "noise": meta.get("noise"), "min_seconds": params.audio.min_seconds, "crop_ratio": params.train.crop_ratio,
            "video_normalise": params.train.video_normalise,
            "video": params.video.model_copy(update={"workers": 1}).model_dump(mode="json")}


class EmotionModel(mlflow.pyfunc.PythonModel):
    """The pyfunc: artifacts `weights` (a state dict) and `config` (serving_config as JSON)."""

    def load_context(self, context) -> None:
        self.load(Path(context.artifacts["weights"]), Path(context.artifacts["config"]))

    def load(self, weights: Path, config: Path) -> None:
        self.config = json.loads(config.read_text())
        c = self.config
        self.network, spec = load_checkpoint(weights)
        self.family, self.classes = spec.family, list(spec.classes)
        self.variant = VariantConfig(policy=SegmentPolicy(**c["segmentation"]),
                                     cleanup=Cleanup(**c["cleanup"]) if c["cleanup"] else None,
                                     spectrogram=Spectrogram(**c["spectrogram"]), min_seconds=c["min_seconds"])
        self.noise = NoiseProfile.from_dict(c["noise"]) if c["noise"] else None
        self.video = Video(**c["video"])
        self.decoder = ThreadPoolExecutor(max_workers=1)  # decodes the video while the audio is prepared

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        rows = [self.predict_one(row) for row in model_input.to_dict("records")]
        out = pd.DataFrame(rows, columns=[f"p_{c}" for c in self.classes])
        out.insert(0, "emotion", [self.classes[int(np.argmax(r))] for r in rows])
        return out

    def predict_one(self, row: dict) -> np.ndarray:
        """Class probabilities of one input: the mean over its clips."""
        name, y = self.audio(row)
        clips = plan_clips(len(y) / SAMPLE_RATE, self.variant.policy)
        if not clips:
            raise BadInput(f"{name}: shorter than one {self.variant.policy.clip_seconds} s clip, which this model "
                           "drops (audio.segment.short=drop)")
        c = self.config
        frames = self.decoder.submit(self.frames, row, clips, name) if self.family != "audio" else None
        noise = self.noise
        if noise is None and (self.variant.cleanup or any(clip.padded for clip in clips)):
            noise = estimate_noise([y])  # the variant needed none in training; this input's own quiet frames
        db = item_spectrograms(y, clips, name, self.variant, noise)
        inputs = [torch.stack([model_input(d, c["spectrogram"]["floor_db"], c["spectrogram"]["ceiling_db"],
                                           c["crop_ratio"]) for d in db])]
        if frames is not None:
            inputs.append(frames.result())  # re-raises the decoder's BadInput
        with torch.no_grad():
            logits = self.network(*inputs)
        return torch.softmax(logits.float(), dim=1).mean(dim=0).numpy()

    def audio(self, row: dict) -> tuple[str, np.ndarray]:
        """(a name for messages and noise seeds, 16 kHz mono samples), checked."""
        if _given(row.get("audio_path")):
            name, source = Path(str(row["audio_path"])).stem, str(row["audio_path"])
            if not Path(source).is_file():
                raise BadInput(f"{source}: no such audio file")
        elif _given(row.get("audio_b64")):
            name = "audio_b64"
            try:
                source = io.BytesIO(base64.b64decode(str(row["audio_b64"]), validate=True))
            except (binascii.Error, ValueError):
                raise BadInput("audio_b64: not base64-encoded bytes") from None
        else:
            raise BadInput(f"each input needs `audio_path` or `audio_b64` (columns: {', '.join(COLUMNS)})")
        try:
            y, _ = load_wav(source, resample=False)
        except ValueError as exc:
            raise BadInput(f"{name}: {exc}") from None
        seconds = len(y) / SAMPLE_RATE
        if seconds < self.variant.min_seconds:
            raise BadInput(f"{name}: too short: {seconds:.2f} s < {self.variant.min_seconds} s")
        return name, y

    def frames(self, row: dict, clips: list, name: str) -> torch.Tensor:
        """The speaker's face frames for each clip's window, as the video stage cuts them."""
        if not _given(row.get("video_path")) or not _given(row.get("start")):
            raise BadInput(f"{name}: this model also needs `video_path` and `start` (and `end`, `side`)")
        side = str(row.get("side") or "left")
        if side not in ("left", "right"):
            raise BadInput(f"{name}: side must be 'left' or 'right', not {side!r}")
        start = float(row["start"])
        windows = tuple((start + c.start, start + c.end) for c in clips)
        job = DialogueJob(str(row["video_path"]), tuple(f"{name}_c{c.index:02d}" for c in clips), ("F",) * len(clips),
                          ("F" if side == "left" else "M",) * len(clips), windows, tuple(range(len(clips))), self.video)
        stacks = []
        for result in process_dialogue(job):
            if result.frames is None:
                raise BadInput(f"{row['video_path']}: {result.reason}")
            stacks.append(frames_tensor(result.frames, self.config["video_normalise"]))
        return torch.stack(stacks)


def wait_until_up(url: str, process, seconds: float = 120) -> None:
    """Poll a local server's health URL until it answers; raise with its output if it exits or times out."""
    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"the server exited with code {process.returncode}: {output}") from None
            if time.time() > deadline:
                raise RuntimeError(f"{url}: no answer after {seconds:.0f} s") from None
            time.sleep(0.5)


def _given(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value) != ""


def signature() -> mlflow.models.ModelSignature:
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec("string", "audio_path", required=False), ColSpec("string", "audio_b64", required=False),
                     ColSpec("string", "video_path", required=False), ColSpec("double", "start", required=False),
                     ColSpec("double", "end", required=False), ColSpec("string", "side", required=False)])
    return mlflow.models.ModelSignature(inputs=inputs)
