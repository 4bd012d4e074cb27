"""The registered model: raw audio (and video) in, an emotion and class probabilities out.

An MLflow pyfunc around the predictor (predictor.py: the training stages' own code on raw
input, with the parameters stored beside the weights). Input: a table with `audio_b64` (a wav's
bytes, base64) and, for fusion, `video_b64` (the utterance's video clip: AVI, MP4/MOV or
Matroska, base64), `start` and `end` (the utterance's window in that clip, seconds; default the
whole clip) and `side` (`left` or `right`: the speaker's half of the split screen). `audio_path`
and `video_path` are read only where allowed (inputs.py: anywhere for local use, under
AVEMO_SERVE_ROOT on a server, else never). Output: `emotion` and `p_<class>` for every class.
An input it cannot answer for raises BadInput (HTTP 400 from `mlflow models serve`) naming the
input and the problem; any other failure is logged with its traceback and answered with a 500
that carries none.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

from avemo.inputs import Files, InputError
from avemo.params import Params
from avemo.predictor import Predictor

COLUMNS = ("audio_b64", "video_b64", "start", "end", "side", "audio_path", "video_path")
_log = logging.getLogger(__name__)


class BadInput(MlflowException):
    """An input the model cannot answer for; the server turns it into a 400 response with this message."""

    def __init__(self, message: str):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._reason

    @message.setter
    def message(self, value: str) -> None:
        """Set once: MLflow's server later prefixes "Failed to predict data '<the request table>'", which would
        echo the client's whole request (megabytes of base64) into every 400 before the reason."""
        if not hasattr(self, "_reason"):
            self._reason = value


def serving_config(params: Params, audio_dir: Path) -> dict:
    """Everything the pyfunc needs besides the model file (which carries its network and classes): the
    audio variant's preprocessing (from its meta.json: the parameters it was really built with), the
    load-time scaling and crop, and the video settings."""
    meta = json.loads((audio_dir / "meta.json").read_text())
    return {"spectrogram": meta["spectrogram"], "segmentation": meta["segmentation"], "cleanup": meta["cleanup"],
            "noise": meta.get("noise"), "noise_by_session": meta.get("noise_by_session"), "min_seconds": params.audio.min_seconds, "crop_ratio": params.train.crop_ratio,
            "video": params.video.model_copy(update={"workers": 1}).model_dump(mode="json")}


class EmotionModel(mlflow.pyfunc.PythonModel):
    """The pyfunc: artifacts `weights` (a model file) and `config` (serving_config as JSON)."""

    def load_context(self, context) -> None:
        self.load(Path(context.artifacts["weights"]), Path(context.artifacts["config"]))

    def load(self, weights: Path, config: Path, files: Files | None = None) -> None:
        """Ready to answer; rows may name the files `files` allows (default: a server's, from AVEMO_SERVE_ROOT)."""
        self.model = Predictor(weights, config, Files.from_env() if files is None else files)

    def read_local_files(self) -> None:
        """Let rows name any local file: batch scoring in this process (promote's evaluation), never a server."""
        self.model.files = Files(local=True)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        rows = pd.DataFrame(model_input).to_dict("records")
        try:
            probabilities = self.model.predict(rows)
        except InputError as exc:
            raise BadInput(str(exc)) from None
        except Exception:
            _log.exception("avemo: scoring failed")
            raise MlflowException("internal error while scoring: see the server's log",
                                  error_code=INTERNAL_ERROR) from None
        return answers(self.model.classes, probabilities)


def answers(classes: list[str], probabilities) -> pd.DataFrame:
    """`emotion` (the most probable class) and `p_<class>` per class, one row per input."""
    out = pd.DataFrame(probabilities, columns=[f"p_{c}" for c in classes])
    out.insert(0, "emotion", [classes[i] for i in probabilities.argmax(axis=1)])
    return out


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


def signature() -> mlflow.models.ModelSignature:
    from mlflow.types.schema import ColSpec, Schema

    types = {"start": "double", "end": "double"}
    inputs = Schema([ColSpec(types.get(name, "string"), name, required=False) for name in COLUMNS])
    return mlflow.models.ModelSignature(inputs=inputs)
