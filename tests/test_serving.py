"""A served model reads only what the request carries, refuses every bad input with a 400 naming it, and stays up.

One untrained audio model and one untrained fusion model (the answers' quality is not under
test), registered once for the module; two real `mlflow models serve` servers on free loopback
ports, with an allowed folder (AVEMO_SERVE_ROOT) holding a few files and links.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import mlflow
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from avemo import cli
from avemo.inputs import ROOT_ENV, Files
from avemo.registry import MODEL_NAMES, log_version
from avemo.serving import BadInput, EmotionModel, serving_config, wait_until_up
from avemo.store import model_folder, pyfunc_artifacts
from tests.conftest import project_params

REFUSED = "not a readable file under the served folder"


def wav_bytes(seconds: float = 2.0, rate: int = 16000, channels: int = 1, subtype: str = "PCM_16",
              silent: bool = False) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    y = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([y] * channels, axis=1).astype(np.float32), rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def video_bytes(fmt: str = "avi", seconds: float = 3.0, fps: int = 25) -> bytes:
    """A clip of `seconds` in an AVI, MP4 or Matroska container (no face in it: the crop falls back to its box)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for k in range(int(seconds * fps)):
            frame = np.full((240, 320, 3), (40 + 3 * k) % 255, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def dither_bytes(seconds: float = 2.0) -> bytes:
    """Near-silence as sox writes it: triangular dither of +-1 LSB of 16 bits (-92 dBFS RMS), no signal."""
    buffer = io.BytesIO()
    steps = np.random.default_rng(1).integers(-1, 2, int(seconds * 16000)).astype(np.int16)
    sf.write(buffer, steps, 16000, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


GOOD = wav_bytes()
CLIP = video_bytes()
HLS = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/segment.ts\n#EXT-X-ENDLIST\n"
NOISE = np.random.default_rng(0).bytes(4000)
FUSION = {"video_b64": b64(CLIP), "side": "left"}

#: The issue's table, and the rest of what a row can get wrong: (family, rows, what the refusal says).
BAD_INPUTS = {
    "truncated": ("audio", [{"audio_b64": b64(wav_bytes(3.35)[:32044])}],
                  "audio_b64 (row 0): truncated wav: its header announces 3.35 s, the file holds 1.00 s"),
    "stereo": ("audio", [{"audio_b64": b64(wav_bytes(channels=2))}], "audio_b64 (row 0): 2 channels"),
    "empty": ("audio", [{"audio_b64": ""}], "audio_b64 (row 0): empty audio"),
    "no field": ("audio", [{"side": "left"}], "audio_b64 (row 0): missing"),
    "no rows": ("audio", [], "no input: each row needs audio_b64"),
    "random bytes": ("audio", [{"audio_b64": b64(NOISE)}], "audio_b64 (row 0): not a wav file"),
    "header and random bytes": ("audio", [{"audio_b64": b64(GOOD[:44] + NOISE)}], "audio_b64 (row 0): truncated wav"),
    "second row": ("audio", [{"audio_b64": b64(GOOD)}, {"audio_b64": b64(NOISE)}], "audio_b64 (row 1): not a wav"),
    "not base64": ("audio", [{"audio_b64": "%%%"}], "audio_b64 (row 0): not base64-encoded bytes"),
    "silent": ("audio", [{"audio_b64": b64(wav_bytes(silent=True))}], "audio_b64 (row 0): silent wav"),
    "dithered silence": ("audio", [{"audio_b64": b64(dither_bytes())}],
                         "audio_b64 (row 0): silent: its level is -92.1 dBFS RMS, below -60 dBFS"),
    "dithered silence to fusion": ("fusion", [{"audio_b64": b64(dither_bytes()), **FUSION}],
                                   "audio_b64 (row 0): silent: its level is -92.1 dBFS RMS"),
    "short": ("audio", [{"audio_b64": b64(wav_bytes(0.1))}], "audio_b64 (row 0): too short: 0.10 s"),
    "long": ("audio", [{"audio_b64": b64(wav_bytes(61))}], "audio_b64 (row 0): too long: 61.0 s > 60 s"),
    "rate": ("audio", [{"audio_b64": b64(wav_bytes(rate=8000))}], "audio_b64 (row 0): sample rate 8000 Hz"),
    "video to audio": ("audio", [{"audio_b64": b64(GOOD), **FUSION}],
                       "video_b64, side (row 0): this audio model reads the audio alone"),
    "no video": ("fusion", [{"audio_b64": b64(GOOD), "side": "left"}], "video_b64 (row 0): missing"),
    "audio alone to fusion": ("fusion", [{"audio_b64": b64(GOOD)}], "video_b64 (row 0): missing"),
    "no side": ("fusion", [{"audio_b64": b64(GOOD), "video_b64": b64(CLIP)}], "side (row 0): missing"),
    "bad side": ("fusion", [{"audio_b64": b64(GOOD), **FUSION, "side": "up"}],
                 "side (row 0): 'up': must be 'left' or 'right'"),
    "start before the video": ("fusion", [{"audio_b64": b64(GOOD), **FUSION, "start": -1.0, "end": 2.0}],
                               "video_b64 (row 0): window -1.00-2.00 s starts before the video "
                               "(the video lasts 3.00 s)"),
    "start after end": ("fusion", [{"audio_b64": b64(GOOD), **FUSION, "start": 2.0, "end": 1.0}],
                        "video_b64 (row 0): window 2.00-1.00 s ends before it starts (the video lasts 3.00 s)"),
    "end past the video": ("fusion", [{"audio_b64": b64(GOOD), **FUSION, "start": 1.0, "end": 9.0}],
                           "video_b64 (row 0): window 1.00-9.00 s ends past the video (the video lasts 3.00 s)"),
    "no window in a dialogue's video": ("fusion", [{"audio_b64": b64(GOOD), **FUSION, "video_b64": b64(video_bytes(
        seconds=6.0))}], "video_b64 (row 0): no window given, and the video lasts 6.00 s for 2.00 s of audio: give "
                         "the utterance's window in it"),
    "audio longer than the window": ("fusion", [{"audio_b64": b64(GOOD), **FUSION, "start": 0.0, "end": 1.0}],
                                     "window 0.00-1.00 s is shorter than the audio (2.00 s)"),
    "video of random bytes": ("fusion", [{"audio_b64": b64(GOOD), **FUSION, "video_b64": b64(NOISE)}],
                              "video_b64 (row 0): not an AVI, MP4/MOV or Matroska video"),
    "HLS playlist": ("fusion", [{"audio_b64": b64(GOOD), **FUSION, "video_b64": b64(HLS)}],
                     "video_b64 (row 0): not an AVI, MP4/MOV or Matroska video"),
    "AVI header, no video": ("fusion", [{"audio_b64": b64(GOOD), **FUSION, "video_b64": b64(CLIP[:12] + NOISE)}],
                             "video_b64 (row 0): video missing or unreadable"),
}


@pytest.fixture(scope="module")
def models(tiny_variant, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """family -> (weights, serving config) of an untrained network, on the tiny variant's preprocessing."""
    from avemo.labels import class_set
    from avemo.models.audio import audio_config
    from avemo.models.checkpoint import ModelSpec, save_checkpoint
    from avemo.models.video import video_config

    params = project_params()
    folder = tmp_path_factory.mktemp("models")
    config = serving_config(params, tiny_variant)
    out = {}
    for family in ("audio", "fusion"):
        spec = ModelSpec(family, tuple(class_set(params.labels)), audio_config(params.models.audio, (64, 300)),
                         video_config(params.models.video, (20, 60, 100)) if family == "fusion" else None)
        torch.manual_seed(0)
        save_checkpoint(folder / f"{family}.pt", spec.build(), spec)
        (folder / f"{family}.json").write_text(json.dumps(config))
        out[family] = (folder / f"{family}.pt", folder / f"{family}.json")
    return out


def pyfunc(models, family: str, files: Files | None = None) -> EmotionModel:
    model = EmotionModel()
    model.load(*models[family], files or Files())
    return model


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_the_pyfunc_refuses_each_bad_input_naming_it_and_the_problem(models, case):
    family, rows, message = BAD_INPUTS[case]
    with pytest.raises(BadInput) as refused:
        pyfunc(models, family).predict(None, pd.DataFrame(rows))
    assert message in refused.value.message


def test_no_utterance_of_the_embedded_corpus_is_refused_as_silent(tiny_corpus):
    """Its room noise spans -58..-40 dBFS (synth.noise_dbfs) under speech: every utterance, even the quietest,
    lies well above the silence threshold."""
    from avemo.audio.wav import load_wav
    from avemo.predictor import SILENCE_DBFS, rms_dbfs

    levels = [rms_dbfs(load_wav(p)[0]) for p in tiny_corpus[0].glob("Session*/sentences/wav/*/Ses*.wav")]
    assert len(levels) == 30 and min(levels) > SILENCE_DBFS + 15, min(levels)


def test_a_400_carries_the_reason_not_the_request_table(models):
    """MLflow's scoring server prefixes a model's error with "Failed to predict data '<the table>'": a client's
    whole request (megabytes of base64) echoed back before the reason."""
    from mlflow.pyfunc.scoring_server import invocations

    class Loaded:  # what the server holds: a loaded model's predict (a PyFuncModel's interface)
        metadata = None

        def __init__(self, model: EmotionModel):
            self.model = model

        def predict(self, data, params=None):
            return self.model.predict(None, data, params)

    body = json.dumps(records([{"audio_b64": b64(GOOD)}]))
    with pytest.raises(BadInput) as refused:
        invocations(body, "application/json", Loaded(pyfunc(models, "fusion")), None)
    assert refused.value.message == "video_b64 (row 0): missing: this fusion model also needs the utterance's " \
                                    "video clip, base64-encoded (AVI, MP4/MOV or Matroska)"
    assert json.loads(refused.value.serialize_as_json())["message"] == refused.value.message


def test_the_pyfunc_scores_float_wavs_and_videos_in_each_container_and_leaves_no_temporary_file(models):
    audio = pyfunc(models, "audio")
    answers = audio.predict(None, pd.DataFrame([{"audio_b64": b64(wav_bytes(subtype=s))} for s in ("PCM_16", "FLOAT")]))
    assert np.allclose(answers.filter(like="p_").to_numpy()[0], answers.filter(like="p_").to_numpy()[1], atol=1e-3)
    fusion = pyfunc(models, "fusion")
    before = set(Path(tempfile.gettempdir()).glob("avemo-video-*"))
    for fmt in ("avi", "mp4", "matroska"):
        answer = fusion.predict(None, pd.DataFrame([{"audio_b64": b64(GOOD), "video_b64": b64(video_bytes(fmt)),
                                                     "start": 0.5, "end": 2.5, "side": "right"}]))
        assert answer["emotion"].iloc[0] in fusion.model.classes, fmt
    whole = fusion.predict(None, pd.DataFrame([{"audio_b64": b64(GOOD), **FUSION}]))  # the window defaults to the clip
    assert whole.filter(like="p_").sum(axis=1).iloc[0] == pytest.approx(1, abs=1e-5)
    assert set(Path(tempfile.gettempdir()).glob("avemo-video-*")) == before


def test_a_served_model_reads_no_path_unless_an_operator_allows_a_folder(models, tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.wav").write_bytes(GOOD)
    (tmp_path / "outside.wav").write_bytes(GOOD)
    with pytest.raises(BadInput, match=f"audio_path \\(row 0\\): this server reads no files: .*{ROOT_ENV}"):
        pyfunc(models, "audio").predict(None, pd.DataFrame([{"audio_path": str(tmp_path / "in" / "good.wav")}]))
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "in"))
    served = pyfunc(models, "audio", Files.from_env())
    assert len(served.predict(None, pd.DataFrame([{"audio_path": "good.wav"}]))) == 1
    with pytest.raises(BadInput, match=REFUSED):
        served.predict(None, pd.DataFrame([{"audio_path": "../outside.wav"}]))
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=f"{ROOT_ENV}=.*missing: not a folder"):
        Files.from_env()


@pytest.fixture(scope="module")
def store(models, empty_mlflow_store, tmp_path_factory) -> str:
    """A tracking store (SQLite) where both models are registered, alias `challenger`; its URI."""
    root = tmp_path_factory.mktemp("store")
    (root / "mlruns").mkdir()
    shutil.copy(empty_mlflow_store, root / "mlruns" / "mlflow.db")
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        for family, (weights, config) in models.items():
            log_version(MODEL_NAMES[family], weights, json.loads(config.read_text()), {"dvc_stage": "test_serving"})
    return uri


@pytest.mark.slow
def test_avemo_predict_finds_the_version_mlflow_finds_without_importing_mlflow(store, tmp_path):
    for reference in ("avemo-audio@challenger", "avemo-fusion/1"):
        ours, theirs = model_folder(reference, store), Path(mlflow.artifacts.download_artifacts(
            f"models:/{reference}", tracking_uri=store))
        assert (ours / "MLmodel").read_text() == (theirs / "MLmodel").read_text()
        assert [f.read_bytes() for f in pyfunc_artifacts(ours).values()] == [
            f.read_bytes() for f in pyfunc_artifacts(theirs).values()]
    with pytest.raises(mlflow.exceptions.MlflowException, match="champion"):
        model_folder("avemo-audio@champion", store)  # not in the store: MLflow's own client says so
    (tmp_path / "clip.wav").write_bytes(GOOD)
    probe = ("import sys; from avemo.cli import main; "
             f"code = main(['predict', {str(tmp_path / 'clip.wav')!r}, '--model', 'avemo-audio@challenger']); "
             "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'matplotlib', 'sklearn', "
             "'librosa', 'numba', 'scipy', 'pandas'}))")
    cold = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "MLFLOW_TRACKING_URI": store},
                          capture_output=True, text=True)
    assert cold.stdout.strip().splitlines()[-1] == "0 []", cold.stdout + cold.stderr


def test_the_predictor_answers_as_with_librosas_spectrograms(models, monkeypatch):
    """The predictor's spectrograms are numpy's transcription of librosa's (a cold `avemo predict` imports no
    librosa, numba or scipy): each answer is the one librosa's spectrograms give, bit for bit."""
    from avemo.audio import variant
    from tests.audio.test_spectrogram import librosa_spectrogram_db

    noisy = wav_bytes(4.7)  # a second clip padded with noise: `full` segmentation of 4.7 s
    rows = {"audio": [{"audio_b64": b64(GOOD)}, {"audio_b64": b64(noisy)}],
            "fusion": [{"audio_b64": b64(GOOD), **FUSION}, {"audio_b64": b64(noisy), **FUSION,
                                                           "video_b64": b64(video_bytes(seconds=4.7))}]}
    for family, sent in rows.items():
        model = pyfunc(models, family)
        ours = model.predict(None, pd.DataFrame(sent))
        monkeypatch.setattr(variant, "spectrogram_db", librosa_spectrogram_db)
        theirs = model.predict(None, pd.DataFrame(sent))
        monkeypatch.undo()
        pd.testing.assert_frame_equal(ours, theirs, check_exact=True)


@pytest.fixture(scope="module")
def served_root(tmp_path_factory) -> Path:
    """The folder a server may read (good.wav, clip.avi, a link inside and one out, a FIFO), beside outside.wav."""
    base = tmp_path_factory.mktemp("serve")
    root, outside = base / "root", base / "outside.wav"
    (root / "sub").mkdir(parents=True)
    (root / "good.wav").write_bytes(GOOD)
    (root / "clip.avi").write_bytes(CLIP)
    (root / "playlist.avi").write_bytes(HLS)
    outside.write_bytes(GOOD)
    (root / "inside_link.wav").symlink_to(root / "good.wav")
    (root / "escape.wav").symlink_to(outside)
    os.mkfifo(root / "fifo.wav")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def servers(store, served_root):
    """family -> base URL of `mlflow models serve` for its challenger, both started at once, allowed `served_root`."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, ROOT_ENV: str(served_root),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    mlflow_cli = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    started = {}
    for family, name in MODEL_NAMES.items():
        port = free_port()
        started[family] = (f"http://127.0.0.1:{port}", subprocess.Popen(
            [mlflow_cli, "models", "serve", "-m", f"models:/{name}@challenger", "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        for url, process in started.values():
            wait_until_up(f"{url}/ping", process, seconds=240)
        yield {family: url for family, (url, _) in started.items()}
    finally:
        for _, process in started.values():
            process.terminate()
            process.wait(timeout=30)


def post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/invocations", data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def records(rows: list[dict]) -> dict:
    return {"dataframe_records": rows}


@pytest.fixture
def listener():
    """A local HTTP server that records every request it gets: a forged request would land here."""
    hits: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = socketserver.TCPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_the_server_reads_paths_only_under_its_folder_and_never_a_url_device_or_fifo(servers, served_root, listener):
    address, hits = listener
    allowed = ["good.wav", "sub/../good.wav", str(served_root / "good.wav"), "inside_link.wav"]
    for path in allowed:
        status, answer = post(servers["audio"], records([{"audio_path": path}]))
        assert status == 200 and answer["predictions"][0]["emotion"], (path, answer)
    refused = ["missing.wav", str(served_root.parent / "outside.wav"), "../outside.wav", "sub/../../outside.wav",
               "escape.wav", "fifo.wav", "sub", "/dev/zero", "/proc/self/environ", "/etc/passwd",
               f"http://{address}/ssrf.wav", f"file://{served_root}/good.wav", f"ftp://{address}/x.wav",
               f"data:audio/wav;base64,{b64(GOOD)}", "good.wav\x00.txt"]
    for path in refused:
        status, error = post(servers["audio"], records([{"audio_path": path}]))
        assert status == 400 and error["message"].endswith(f"audio_path (row 0): {REFUSED}"), (path, error)
    fusion = {"audio_b64": b64(GOOD), "start": 0.5, "end": 2.5, "side": "left"}
    status, answer = post(servers["fusion"], records([{**fusion, "video_path": "clip.avi"}]))
    assert status == 200, answer
    for path in (f"http://{address}/ssrf.avi", f"https://{address}/ssrf.avi", f"rtsp://{address}/x", "/dev/zero",
                 "../outside.wav", f"concat:{served_root}/clip.avi|{served_root}/clip.avi"):
        status, error = post(servers["fusion"], records([{**fusion, "video_path": path}]))
        assert status == 400 and error["message"].endswith(f"video_path (row 0): {REFUSED}"), (path, error)
    status, error = post(servers["fusion"], records([{**fusion, "video_path": "playlist.avi"}]))
    assert status == 400 and "video_path (row 0): not an AVI, MP4/MOV or Matroska video" in error["message"]
    assert hits == []  # the server sent no request anywhere


@pytest.mark.slow
def test_the_server_answers_400_naming_each_bad_input(servers):
    for case, (family, rows, message) in BAD_INPUTS.items():
        status, error = post(servers[family], records(rows))
        assert status == 400 and message in error["message"], (case, status, error)
        assert "stack_trace" not in error and "Traceback" not in error["message"]
        assert "Failed to predict data" not in error["message"], (case, error["message"][:200])  # no request echo
    # A body MLflow cannot read as a table is refused by MLflow itself (the model never sees it), naming the
    # fields it expects.
    for body in ({}, {"foo": 1}, []):
        status, error = post(servers["audio"], body)
        assert status == 400 and "dataframe_records" in error["message"], (body, error)
    status, error = post(servers["audio"], {"inputs": {"foo": 1}})
    assert status == 400 and error["error_class"] == "SCHEMA_ENFORCEMENT_FAILED"
    # Fields the signature does not know are dropped by MLflow before the model sees them: a row of only
    # those, and LLM-style bodies, reach the model empty.
    for body in (records([{}]), records([{"foo": 1}]), {"dataframe_split": {"columns": [], "data": []}},
                 {"prompt": "x"}, {"messages": []}):
        status, error = post(servers["audio"], body)
        assert status == 400 and "no input: each row needs audio_b64" in error["message"], (body, error)
    status, error = post(servers["fusion"], records([{"audio_b64": b64(GOOD), **FUSION, "start": "abc"}]))
    assert status == 400 and "start" in error["message"]  # MLflow's schema: not a double
    status, answer = post(servers["audio"], records([{"audio_b64": b64(wav_bytes(subtype="FLOAT"))}]))
    assert status == 200 and answer["predictions"][0]["emotion"]


def mutations(rng: np.random.Generator, n: int) -> list[dict]:
    """`n` seeded request bodies: random bytes, good wavs mutated (bytes flipped, cut, spliced, header fields
    changed), and malformed fields and shapes."""
    def mutated() -> bytes:
        data = bytearray(GOOD)
        kind = rng.integers(4)
        if kind == 0:
            for at in rng.integers(0, 64 if rng.random() < 0.7 else len(data), rng.integers(1, 8)):
                data[at] = rng.integers(256)
        elif kind == 1:
            data = data[: rng.integers(0, len(data))]
        elif kind == 2:
            at = rng.integers(0, len(data))
            data[at:at] = rng.bytes(int(rng.integers(1, 200)))
        else:
            at = int(rng.choice([4, 20, 22, 24, 28, 32, 34, 40]))
            data[at:at + 4] = rng.bytes(4)
        return bytes(data)

    bodies = []
    for _ in range(n):
        kind = rng.integers(6)
        if kind == 0:
            body = records([{"audio_b64": b64(rng.bytes(int(rng.integers(0, 3000))))}])
        elif kind in (1, 2, 3):
            body = records([{"audio_b64": b64(mutated())}])
        elif kind == 4:
            value = rng.choice(["", "=", "a" * int(rng.integers(1, 9)), None, 3, 2.5, True])
            body = records([{str(rng.choice(["audio_b64", "audio_path", "start", "side", "x"])): value}])
        else:
            body = rng.choice([{"dataframe_records": "x"}, {"dataframe_split": {"columns": ["audio_b64"]}},
                               {"instances": [[1, 2]]}, {"dataframe_records": [[b64(GOOD)]]}, {"inputs": None}])
        bodies.append(body)
    return bodies


@pytest.mark.slow
def test_a_bounded_fuzz_gets_only_200_or_400_and_the_server_stays_up(servers):
    rng = np.random.default_rng(22)
    deadline = time.monotonic() + 120
    statuses = {}
    for k, body in enumerate(mutations(rng, 300)):
        if time.monotonic() > deadline:
            break
        status, answer = post(servers["audio"], body)
        assert status in (200, 400), (k, body if len(json.dumps(body, default=str)) < 300 else "...", answer)
        statuses[status] = statuses.get(status, 0) + 1
    for k in range(30):  # mutated videos: FFmpeg sees them
        video = bytearray(CLIP)
        for at in rng.integers(0, len(video), 20):
            video[at] = rng.integers(256)
        status, answer = post(servers["fusion"], records([{"audio_b64": b64(GOOD), "video_b64": b64(bytes(video)),
                                                            "side": "right"}]))
        assert status in (200, 400), (k, answer)
    assert sum(statuses.values()) >= 100 and statuses.get(400, 0) > 0
    for url in servers.values():
        assert urllib.request.urlopen(f"{url}/ping", timeout=5).status == 200


@pytest.mark.slow
def test_avemo_predict_refuses_bad_files_and_finds_the_side_from_an_iemocap_name(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    files = {"good": GOOD, "truncated": wav_bytes(3.35)[:32044], "stereo": wav_bytes(channels=2), "random": NOISE,
             "header": GOOD[:44] + NOISE, "dither": dither_bytes()}
    for name, data in files.items():
        (tmp_path / f"{name}.wav").write_bytes(data)
    (tmp_path / "Ses01F_impro01_M013.wav").write_bytes(GOOD)
    (tmp_path / "clip.avi").write_bytes(CLIP)

    def predict(*args: str) -> tuple[int, str]:
        code = cli.main(["predict", *args])
        out = capsys.readouterr()
        assert "Traceback" not in out.out + out.err
        return code, " ".join((out.out + out.err).split())

    code, out = predict(str(tmp_path / "good.wav"), "--model", "avemo-audio@challenger")
    assert code == 0 and json.loads(out)["emotion"]
    refusals = {"truncated": "truncated wav: its header announces 3.35 s", "stereo": "2 channels",
                "random": "not a wav file", "header": "truncated wav",
                "dither": "silent: its level is -92.1 dBFS RMS, below -60 dBFS"}
    for name, message in refusals.items():
        code, out = predict(str(tmp_path / f"{name}.wav"), "--model", "avemo-audio@challenger")
        assert code == 1 and f"{name}.wav: {message}" in out, (name, out)
    for path, message in (("/dev/zero", "/dev/zero: not a regular file"),
                          (str(tmp_path / "none.wav"), "none.wav: no such file or directory")):
        code, out = predict(path, "--model", "avemo-audio@challenger")
        assert code == 1 and message in out, out
    video = ["--model", "avemo-fusion@challenger", "--video", str(tmp_path / "clip.avi")]
    for window, message in ((["--start", "-1", "--end", "1"], "window -1.00-1.00 s starts before the video"),
                            (["--start", "2", "--end", "1"], "window 2.00-1.00 s ends before it starts"),
                            (["--start", "1", "--end", "5"], "window 1.00-5.00 s ends past the video")):
        code, out = predict(str(tmp_path / "good.wav"), *video, *window, "--side", "left")
        assert code == 1 and f"clip.avi: {message} (the video lasts 3.00 s)" in out, out
    code, out = predict(str(tmp_path / "good.wav"), *video)
    assert code == 1 and "give --side left|right" in out
    named = predict(str(tmp_path / "Ses01F_impro01_M013.wav"), *video, "--start", "0.5")
    explicit = predict(str(tmp_path / "Ses01F_impro01_M013.wav"), *video, "--start", "0.5", "--side", "right")
    assert named[0] == 0 and named == explicit  # M speaking in F's dialogue: the right half
