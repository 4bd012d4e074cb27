"""Serving latency: one 3-second clip through the registered model, with the model loaded.

p50 and p95 over `BENCH_CALLS` calls (default 200), through the pyfunc in-process and through
`mlflow models serve` (HTTP on loopback), for `avemo-audio` and `avemo-fusion` (alias
`BENCH_ALIAS`, default champion, else challenger). Also: the cost of loading the model, and
the median time of a call's parts, each timed alone: audio preparation (wav, clips, spectrograms),
video frames (decode, face crop; the pyfunc runs them beside the audio preparation) and the
network. Targets on 2 CPU cores (pyfunc p50): audio <= 25 ms, fusion <= 60 ms. Needs the
pipeline's registered models: `dvc repro register`.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch

from avemo.audio.segment import plan_clips
from avemo.audio.stage import SAMPLE_RATE, item_spectrograms
from avemo.data.datasets import model_input
from avemo.params import load_params
from avemo.registry import evaluation_table
from avemo.serving import wait_until_up
from avemo.tracking import tracking_uri

CALLS = int(os.environ.get("BENCH_CALLS", "200"))


def model_uri(name: str) -> str:
    client = mlflow.MlflowClient()
    for alias in (os.environ.get("BENCH_ALIAS", "champion"), "challenger"):
        try:
            client.get_model_version_by_alias(name, alias)
            return f"models:/{name}@{alias}"
        except mlflow.exceptions.MlflowException:
            continue
    raise SystemExit(f"bench_serving: {name} has no champion or challenger: run `dvc repro register` first")


def clip_row(family: str) -> dict:
    """The test utterance closest to 3 s, as raw input."""
    params = load_params()
    utterances = pd.read_parquet("data/interim/utterances.parquet")
    table = evaluation_table(family, params, utterances, pd.read_parquet("data/interim/splits.parquet"),
                             Path("data/processed/video/full"))
    seconds = utterances.set_index("wav_path").loc[table["audio_path"], "wav_seconds"].to_numpy()
    return table.drop(columns=["label"]).iloc[int(np.argmin(np.abs(seconds - 3.0)))].to_dict()


def percentiles(times: list[float]) -> str:
    ms = np.array(times) * 1000
    return f"p50 {np.percentile(ms, 50):6.1f} ms, p95 {np.percentile(ms, 95):6.1f} ms"


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
    parts = preparation_and_network(model.unwrap_python_model(), row)
    print("  median of a call's parts, each timed alone: " + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items()))


def preparation_and_network(inner, row: dict, calls: int = 50) -> dict[str, float]:
    """Audio preparation (wav, clips, spectrograms), video frames (decode, face crop; the pyfunc runs it beside the
    audio preparation) and the network alone."""
    parts: dict[str, list[float]] = {"audio preparation": [], "video frames": [], "network": []}
    for _ in range(calls):
        t = time.perf_counter()
        name, y = inner.audio(row)
        clips = plan_clips(len(y) / SAMPLE_RATE, inner.variant.policy)
        c = inner.config
        db = item_spectrograms(y, clips, name, inner.variant, inner.noise)
        inputs = [torch.stack([model_input(d, c["spectrogram"]["floor_db"], c["spectrogram"]["ceiling_db"],
                                           c["crop_ratio"]) for d in db])]
        parts["audio preparation"].append(time.perf_counter() - t)
        if c["family"] != "audio":
            t = time.perf_counter()
            inputs.append(inner.frames(row, clips, name))
            parts["video frames"].append(time.perf_counter() - t)
        t = time.perf_counter()
        with torch.no_grad():
            inner.network(*inputs)
        parts["network"].append(time.perf_counter() - t)
    return {k: 1000 * float(np.median(v)) for k, v in parts.items() if v}


def served(uri: str, row: dict) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", uri,
                               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server)
        record = {k: v for k, v in row.items() if k != "audio_path"}
        record["audio_b64"] = base64.b64encode(Path(row["audio_path"]).read_bytes()).decode()
        body = json.dumps({"dataframe_records": [record]}).encode()
        times = []
        for k in range(CALLS + 1):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body,
                                             {"Content-Type": "application/json"})
            t = time.perf_counter()
            urllib.request.urlopen(request, timeout=60).read()
            if k:  # the first call warms up
                times.append(time.perf_counter() - t)
        print(f"  server: {percentiles(times)} (HTTP on loopback, wav sent as base64)")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    mlflow.set_tracking_uri(tracking_uri())
    for family, name in (("audio", "avemo-audio"), ("fusion", "avemo-fusion")):
        uri = model_uri(name)
        row = clip_row(family)
        print(f"{uri}: one clip of {Path(row['audio_path']).name}, {CALLS} calls")
        in_process(uri, row)
        served(uri, row)
