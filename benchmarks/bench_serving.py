"""Serving: latency of one call, load under concurrent clients, and `avemo predict`'s cold start.

For `avemo-audio` and `avemo-fusion` (alias `BENCH_ALIAS`, default champion, else challenger),
one test utterance of about 3 s sent as the server takes it: the wav's bytes and, for fusion,
the utterance's video clip (cut from its dialogue and re-encoded as an MPEG-4 AVI), base64.
- the cost of loading the model; p50 and p95 over `BENCH_CALLS` calls (default 200) through the
  pyfunc in-process and through `mlflow models serve` (HTTP on loopback, one client); the
  median time of a call's parts, each timed alone: audio preparation, video frames, network.
- load: 1, 4 and 16 concurrent clients, then 1 again, each sending requests back to back on its
  own connection, at most `BENCH_LOAD_REQUESTS` requests (default 200) or `BENCH_LOAD_SECONDS`
  (default 30) per level: requests/s, p50/p99, errors (anything but a 200), and the server's
  resident memory after warm-up and after each level.
- `avemo predict` cold, as a user runs it (a new process: imports, model, one answer), once on
  each of `BENCH_COLD` test utterances (default 7: those closest to 3 s), min, median and max.
Models: the project's registered ones (`dvc repro register`); without them, or with
`BENCH_TINY=1`, a tiny synthetic corpus in a temporary folder and two models trained on it for
2 epochs and registered there, so it runs anywhere (the same networks and preprocessing as
params.yaml's; their answers are not worth anything, their cost is).
Targets on 2 CPU cores (pyfunc p50): audio <= 25 ms, fusion <= 60 ms.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import mlflow
import numpy as np
import pandas as pd
import psutil
import torch

from avemo.audio.segment import plan_clips
from avemo.audio.wav import SAMPLE_RATE
from avemo.params import Params, load_params
from avemo.registry import MODEL_NAMES, evaluation_table
from avemo.serving import wait_until_up
from avemo.tracking import tracking_uri

CALLS = int(os.environ.get("BENCH_CALLS", "200"))
LOAD_CLIENTS = (1, 4, 16)
LOAD_REQUESTS = int(os.environ.get("BENCH_LOAD_REQUESTS", "200"))
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "30"))
COLD_CLIPS = int(os.environ.get("BENCH_COLD", "7"))


def project_models() -> dict[str, str] | None:
    """family -> URI of the project's registered models, or None (BENCH_TINY=1, no store: none is made, or one
    model missing)."""
    uri = tracking_uri()
    if os.environ.get("BENCH_TINY") == "1" or (uri.startswith("sqlite:///")
                                               and not Path(uri.removeprefix("sqlite:///")).exists()):
        return None
    mlflow.set_tracking_uri(uri)
    uris = {family: model_uri(name) for family, name in MODEL_NAMES.items()}
    return uris if all(uris.values()) else None


def model_uri(name: str) -> str | None:
    client = mlflow.MlflowClient()
    for alias in (os.environ.get("BENCH_ALIAS", "champion"), "challenger"):
        try:
            client.get_model_version_by_alias(name, alias)
            return f"models:/{name}@{alias}"
        except mlflow.exceptions.MlflowException:
            continue
    return None


def utterances(family: str, params: Params, tables: Path, video: Path, n: int = 1) -> list[dict]:
    """The `n` test utterances closest to 3 s, closest first (utterances.parquet, splits.parquet in `tables`; the
    video stage's output in `video`): each one's wav, and for fusion its dialogue video, window and side."""
    table_of = pd.read_parquet(tables / "utterances.parquet")
    table = evaluation_table(family, params, table_of, pd.read_parquet(tables / "splits.parquet"), video)
    seconds = table_of.set_index("wav_path").loc[table["audio_path"], "wav_seconds"].to_numpy()
    rows = table.drop(columns=["label"])
    return [rows.iloc[int(i)].to_dict() for i in np.argsort(np.abs(seconds - 3.0), kind="stable")[:n]]


def utterance(family: str, params: Params, tables: Path, video: Path) -> dict:
    """The test utterance closest to 3 s (see utterances)."""
    return utterances(family, params, tables, video)[0]


def request_row(row: dict) -> dict:
    """What a client sends for `row`: the wav's bytes and, for fusion, the utterance's clip with its window in it."""
    sent = {"audio_b64": base64.b64encode(Path(row["audio_path"]).read_bytes()).decode()}
    if "video_path" in row:
        clip, start = cut_clip(row["video_path"], row["start"], row["end"])
        sent.update(video_b64=base64.b64encode(clip).decode(), start=start, end=start + row["end"] - row["start"],
                    side=row["side"])
    return sent


def cut_clip(video: str, start: float, end: float, margin: float = 0.5) -> tuple[bytes, float]:
    """The frames of [start - margin, end + margin] re-encoded as an MPEG-4 AVI at the source's rate and size,
    and where `start` falls in it."""
    buffer = io.BytesIO()
    with av.open(video) as source, av.open(buffer, "w", format="avi") as out:
        stream = source.streams.video[0]
        rate = Fraction(stream.average_rate)
        first = max(0, int((start - margin) * rate))
        last = int((end + margin) * rate)
        target = out.add_stream("mpeg4", rate=rate)
        target.width, target.height, target.pix_fmt = stream.width, stream.height, "yuv420p"
        for k, frame in enumerate(source.decode(stream)):
            if k > last:
                break
            if k >= first:
                out.mux(target.encode(frame.reformat(format="yuv420p")))
        out.mux(target.encode())
    return buffer.getvalue(), start - float(first / rate)


def percentiles(times: list[float], high: int = 95) -> str:
    ms = np.array(times) * 1000
    return f"p50 {np.percentile(ms, 50):6.1f} ms, p{high} {np.percentile(ms, high):6.1f} ms"


def in_process(uri: str, row: dict) -> None:
    started = time.perf_counter()
    model = mlflow.pyfunc.load_model(uri)
    print(f"  load: {time.perf_counter() - started:.2f} s")
    frame = pd.DataFrame([row])
    model.predict(frame)  # warm-up
    times = []
    for _ in range(CALLS):
        t = time.perf_counter()
        model.predict(frame)
        times.append(time.perf_counter() - t)
    print(f"  pyfunc: {percentiles(times)}")
    parts = preparation_and_network(model.unwrap_python_model().model, row)
    print("  median of a call's parts, each timed alone: " + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items()))


def preparation_and_network(predictor, row: dict, calls: int = 50) -> dict[str, float]:
    """Audio preparation (wav, clips, spectrograms), video frames (clip file, decode, face crop; the predictor runs
    them beside the audio preparation) and the network alone."""
    from avemo.inputs import side, video_file, window

    parts: dict[str, list[float]] = {"audio preparation": [], "video frames": [], "network": []}
    for _ in range(calls):
        t = time.perf_counter()
        _, name, y = predictor.samples(row, 0)
        clips = plan_clips(len(y) / SAMPLE_RATE, predictor.variant.policy)
        inputs = [predictor.spectrograms(y, clips, name)]
        parts["audio preparation"].append(time.perf_counter() - t)
        if predictor.family != "audio":
            t = time.perf_counter()
            with video_file(row, 0, predictor.files) as (label, path):
                inputs.append(predictor.frames(path, label, *window(row, 0), side(row, 0), len(y) / SAMPLE_RATE,
                                               clips, name))
            parts["video frames"].append(time.perf_counter() - t)
        t = time.perf_counter()
        with torch.no_grad():
            predictor.network(*inputs)
        parts["network"].append(time.perf_counter() - t)
    return {k: 1000 * float(np.median(v)) for k, v in parts.items() if v}


@contextlib.contextmanager
def server(uri: str) -> Iterator[tuple[int, subprocess.Popen]]:
    """`mlflow models serve` of `uri` on a free loopback port: (port, process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", uri,
                                "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", process, seconds=300)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def call(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, float]:
    t = time.perf_counter()
    connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status, time.perf_counter() - t


def served(port: int, body: bytes) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    call(connection, body)  # warm-up
    times = [call(connection, body)[1] for _ in range(CALLS)]
    connection.close()
    print(f"  server, one client: {percentiles(times)} (HTTP on loopback, base64 bytes)")


def load(port: int, body: bytes, clients: int) -> dict:
    """`clients` threads sending `body` back to back until LOAD_REQUESTS are sent or LOAD_SECONDS have passed."""
    deadline = time.monotonic() + LOAD_SECONDS
    sent, lock, times, errors = [0], threading.Lock(), [], []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= LOAD_REQUESTS:
                    break
                sent[0] += 1
            try:
                status, seconds = call(connection, body)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(repr(exc))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            (times if status == 200 else errors).append(seconds if status == 200 else status)
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ms = np.array(times) * 1000 if times else np.array([np.nan])
    return {"clients": clients, "requests": len(times) + len(errors), "per_s": len(times) / elapsed,
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "errors": len(errors)}


def rss_mib(process: subprocess.Popen) -> float:
    """Resident memory of the server: the `mlflow models serve` process and its uvicorn child."""
    root = psutil.Process(process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def under_load(port: int, process: subprocess.Popen, body: bytes) -> None:
    """Each level of clients, then the lowest again: memory that keeps growing at the same load is a leak."""
    print(f"  load ({LOAD_REQUESTS} requests or {LOAD_SECONDS:.0f} s per level, loopback); server RSS after "
          f"warm-up {rss_mib(process):.0f} MiB")
    print("    clients  requests  req/s    p50 ms   p99 ms  errors  RSS after, MiB")
    for clients in (*LOAD_CLIENTS, LOAD_CLIENTS[0]):
        r = load(port, body, clients)
        print(f"    {r['clients']:7d}  {r['requests']:8d}  {r['per_s']:5.1f}  {r['p50']:8.1f} {r['p99']:8.1f}  "
              f"{r['errors']:6d}  {rss_mib(process):14.0f}")


def cold_start(reference: str, rows: list[dict]) -> None:
    """`avemo predict` in a new process, as a user runs it, once per utterance: the wav (and its clip) from files."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            command = [sys.executable, "-m", "avemo.cli", "predict", row["audio_path"], "--model", reference]
            if "video_path" in row:
                sent = request_row(row)
                clip = Path(tmp) / "clip.avi"
                clip.write_bytes(base64.b64decode(sent["video_b64"]))
                command += ["--video", str(clip), "--start", str(sent["start"]), "--end", str(sent["end"]),
                            "--side", sent["side"]]
            t = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - t)
    print(f"  `avemo predict` cold (a new process per utterance, {len(times)} utterances): min {min(times):.2f} s, "
          f"median {statistics.median(times):.2f} s, max {max(times):.2f} s")


def bench(uri: str, rows: list[dict]) -> None:
    """The warm figures on the first utterance (the closest to 3 s), the cold call on each."""
    row = rows[0]
    sent = request_row(row)
    print(f"{uri}: one clip of {Path(row['audio_path']).name} ({len(json.dumps(sent)) / 1000:.0f} kB as JSON), "
          f"{CALLS} calls")
    in_process(uri, sent)
    body = json.dumps({"dataframe_records": [sent]}).encode()
    with server(uri) as (port, process):
        served(port, body)
        under_load(port, process, body)
    cold_start(uri.removeprefix("models:/"), rows)


@contextlib.contextmanager
def tiny_project() -> Iterator[Path]:
    """A temporary folder with a tiny synthetic corpus, its full-raw audio and video stages, and an audio and a
    fusion model trained on it for 2 epochs and registered in its own MLflow store, which MLFLOW_TRACKING_URI
    then names: the pipeline's own `avemo` verbs, each in its own (pinned) process, so nothing of training's
    settings stays in this one or in the servers started."""
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        root = Path(tmp)
        train_tiny_models(root)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
        mlflow.set_tracking_uri(tracking_uri())
        try:
            yield root
        finally:
            os.environ.pop("MLFLOW_TRACKING_URI")


def train_tiny_models(root: Path) -> None:
    """tiny_project's corpus, stages and models, made in `root` by the CLI."""
    import subprocess

    import yaml

    params = load_params().override({
        "synth.seed": 3, "synth.dialogues_per_session": 1, "synth.turns_per_dialogue": 6, "synth.max_seconds": 4.5,
        "train.loop.batch_size": 8, "train.loop.epochs": 2, "train.seeds": [0], "train.fusion_init": "scratch"})
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    (root / "mlruns").mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"}
    corpus = "synthetic/IEMOCAP_full_release"
    for command in (["synth", "--out", "synthetic"],
                    ["index", corpus, "--out", "utterances.parquet", "--skipped", "s.csv", "--counts", "c.json"],
                    ["split", "utterances.parquet", "--out", "splits.parquet"],
                    ["audio", "utterances.parquet", "--variant", "full-raw", "--out", "full-raw", "--skipped", "a.csv",
                     "--counts", "a.json", "--figure", "a.png"],
                    ["video", "full-raw", "--out", "video", "--skipped", "v.csv", "--counts", "v.json", "--figures", "v"],
                    *(["train", "--family", family, "--audio", "full-raw", "--video", "video", "--splits", "splits.parquet",
                       "--stage", f"train_{family}", "--model-dir", family, "--metrics", f"{family}.json",
                       "--details", f"{family}-details"] for family in ("audio", "fusion")),
                    ["register", "--audio", "full-raw", "--audio-model", "audio", "--audio-details",
                     "audio-details/details.json", "--fusion-model", "fusion", "--fusion-details",
                     "fusion-details/details.json", "--out", "registry.json"]):
        subprocess.run([sys.executable, "-m", "avemo.cli", *command], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)


def main() -> None:
    params = load_params()
    uris = project_models()
    if uris:
        for family, uri in uris.items():
            bench(uri, utterances(family, params, Path("data/interim"), Path("data/processed/video/full-raw"),
                                  COLD_CLIPS))
        return
    print("bench_serving: no registered models here (or BENCH_TINY=1): training tiny ones on a synthetic corpus")
    with tiny_project() as root:
        for family, name in MODEL_NAMES.items():
            bench(f"models:/{name}@challenger", utterances(family, params, root, root / "video", COLD_CLIPS))
