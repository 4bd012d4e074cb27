"""Screenshots of the MLflow UI pages a user meets, for README: `make screenshots` (renews docs/img/).

Starts the UI as `make ui` does (src/avemo/ui.py) on a free loopback port over the project's
store, opens each page in Debian's headless Chromium (`apt-get install chromium`) with a new
profile each time, as a first-time user would see it (no click), and stops the server. Pages:
the runs of `avemo-fusion` (Dataset and metric columns), the fusion headline run (its registered
version), its confusion matrix, and the champion fusion version (aliases, lineage tags, source run).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow

from avemo.serving import wait_until_up
from avemo.tracking import tracking_uri
from avemo.ui import SERVER_ENV, server_command

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--hide-scrollbars",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--virtual-time-budget=20000"]
#: Window heights (width 1600): the run page lists its registered versions low in its right column.
HEIGHT = {"run": 1400}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pages(client: mlflow.MlflowClient) -> dict[str, str]:
    """Page name -> UI route: plain links, as the UI's own navigation writes them."""
    fusion = client.get_experiment_by_name("avemo-fusion")
    headline = next(r for r in client.search_runs([fusion.experiment_id], "tags.dvc_stage = 'train_fusion_best'",
                                                  order_by=["attributes.start_time DESC"])
                    if "mlflow.parentRunId" not in r.data.tags)
    champion = client.get_model_version_by_alias("avemo-fusion", "champion")
    run = f"#/experiments/{fusion.experiment_id}/runs/{headline.info.run_id}"
    return {"runs": f"#/experiments/{fusion.experiment_id}", "run": run,
            "confusion": f"{run}/artifacts/evaluation/confusion_normalised.png",
            "champion": f"#/models/avemo-fusion/versions/{champion.version}"}


def screenshot(chromium: str, url: str, target: Path, height: int) -> None:
    """One page in a new Chromium profile: what a first-time user sees."""
    with tempfile.TemporaryDirectory(prefix="avemo-chromium-") as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--window-size=1600,{height}", f"--user-data-dir={profile}",
                        f"--screenshot={target}", url], check=True, capture_output=True, timeout=120)


def main(out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("screenshots: Chromium not found; install Debian's: apt-get install chromium")
    uri = tracking_uri()
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(server_command(uri, Path("mlruns").resolve(), port), env=os.environ | SERVER_ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", server)
        for name, route in pages(mlflow.MlflowClient(uri)).items():
            target = out / f"mlflow_{name}.png"
            screenshot(chromium, f"http://127.0.0.1:{port}/{route}", target, HEIGHT.get(name, 1000))
            print(f"screenshots: {target}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
