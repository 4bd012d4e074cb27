"""Screenshots of the MLflow UI pages a user meets, for README: `make screenshots` (renews docs/img/).

Starts `mlflow ui` on a free loopback port over the project's store, opens each page in
Debian's headless Chromium (`apt-get install chromium`), and stops the server. Pages: the runs
of `avemo-fusion` (with the Dataset column), the fusion headline run's confusion matrix, and the
champion fusion version's page (aliases, tags).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import mlflow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1500,950", "--virtual-time-budget=20000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The UI's GenAI / Model training switch is per browser (GenAI first); links can choose it.
CLASSIC = "?workflowType=machine_learning"


def pages(client: mlflow.MlflowClient) -> dict[str, str]:
    fusion = client.get_experiment_by_name("avemo-fusion")
    headline = next(r for r in client.search_runs([fusion.experiment_id], "tags.dvc_stage = 'train_fusion_best'",
                                                  order_by=["attributes.start_time DESC"])
                    if "mlflow.parentRunId" not in r.data.tags)
    champion = client.get_model_version_by_alias("avemo-fusion", "champion")
    return {"runs": f"#/experiments/{fusion.experiment_id}/runs{CLASSIC}",
            "confusion": f"#/experiments/{fusion.experiment_id}/runs/{headline.info.run_id}/artifacts/"
                         f"evaluation/confusion_normalised.png{CLASSIC}",
            "champion": f"#/models/avemo-fusion/versions/{champion.version}{CLASSIC}"}


def main(out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("screenshots: Chromium not found; install Debian's: apt-get install chromium")
    from avemo.serving import wait_until_up
    from avemo.tracking import tracking_uri

    uri = tracking_uri()
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--host", "127.0.0.1", "--port",
                               str(port), "--backend-store-uri", uri], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", server)
        for name, route in pages(mlflow.MlflowClient(uri)).items():
            target = out / f"mlflow_{name}.png"
            subprocess.run([chromium, *CHROMIUM_FLAGS, f"--screenshot={target}", f"http://127.0.0.1:{port}/{route}"],
                           check=True, capture_output=True, timeout=120)
            print(f"screenshots: {target}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
