"""The MLflow UI as `make ui` serves it: it opens on training runs with their metrics, and a headline
run and its registered version link each other. What a browser fetches is checked always; what it
shows, in headless Chromium when Debian's chromium and chromium-driver are installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from avemo.registry import register
from avemo.serving import wait_until_up
from avemo.ui import SERVER_ENV, server_command
from tests import browser
from tests.conftest import details, project_params, run_stage

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class UI:
    url: str
    experiment_id: str
    run_id: str  # the headline training run (the parent of its seed runs)
    version: str  # the version registered from it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_and_register(root: Path, tiny_variant: Path, tiny_splits) -> tuple[str, dict]:
    """A headline stage with two seeds on the tiny corpus, and its registration (run in `root`)."""
    params = project_params().override({"train.loop.batch_size": 8, "train.loop.epochs": 1, "train.seeds": [0, 1]})
    tiny_splits.to_parquet(root / "splits.parquet")
    run_stage(params, "train", "--family", "audio", "--audio", tiny_variant, "--splits", root / "splits.parquet",
              "--stage", "train_audio_best", "--model-dir", root / "model", "--metrics", root / "metrics.json",
              "--details", root / "details")
    return (details(root / "details")["mlflow_run_id"],
            register("audio", params, root / "model", root / "details" / "details.json", tiny_variant))


@pytest.fixture(scope="module")
def ui(tmp_path_factory, empty_mlflow_store, tiny_variant, tiny_splits):
    """`make ui`'s server on a free loopback port over a store with one headline run and its version."""
    root = tmp_path_factory.mktemp("ui")
    (root / "mlruns").mkdir()
    shutil.copy(empty_mlflow_store, root / "mlruns" / "mlflow.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        run_id, registered = _train_and_register(root, tiny_variant, tiny_splits)
    port = _free_port()
    server = subprocess.Popen(server_command(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}", root / "mlruns", port),
                              env=os.environ | SERVER_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", server)
        experiment = _json(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/get-by-name"
                          "?experiment_name=avemo-audio")["experiment"]
        yield UI(f"http://127.0.0.1:{port}", experiment["experiment_id"], run_id, str(registered["version"]))
    finally:
        server.terminate()
        server.wait(timeout=30)


def _fetch(url: str, body: dict | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data, {"Content-Type": "application/json"}),
                                timeout=60) as response:
        return response.read()


def _json(url: str, body: dict | None = None) -> dict:
    return json.loads(_fetch(url, body))


def test_the_page_and_the_answers_a_browser_gets(ui):
    page = _fetch(f"{ui.url}/").decode()
    entries = json.loads(re.search(r"<head><script>\(function\(d\)\{.*?\}\)\((\{.*?\})\);</script>", page).group(1))
    assert page.index("localStorage") < page.index("static/js/main.")  # set before the UI reads them
    assert entries["mlflow.workflowType_v1"] == "machine_learning"  # experiments open on their runs
    columns = entries[f'MLflowLocalStorage-1.1-ExperimentPage-["{ui.experiment_id}"]-ReactComponentState']
    assert "metrics.`test_ua_mean`" in columns["selectedColumns"]

    # The run page asks GraphQL for the run with its model versions (those whose run_id is the run).
    query = ("query GetRun($data: MlflowGetRunInput!) { mlflowGetRun(input: $data) "
             "{ run { info { runName } modelVersions { name version } } } }")
    run = _json(f"{ui.url}/graphql", {"query": query, "variables": {"data": {"runId": ui.run_id}}})
    run = run["data"]["mlflowGetRun"]["run"]
    assert run["info"]["runName"] == "train_audio_best"
    assert run["modelVersions"] == [{"name": "avemo-audio", "version": ui.version}]
    # The version page's "Source Run" is the version's run_id.
    version = _json(f"{ui.url}/ajax-api/2.0/mlflow/model-versions/get?name=avemo-audio&version={ui.version}")
    assert version["model_version"]["run_id"] == ui.run_id


@pytest.mark.skipif(not browser.available(), reason="needs Debian's chromium and chromium-driver")
def test_a_new_user_clicks_to_the_runs_sees_metrics_and_walks_from_run_to_version_and_back(ui):
    with browser.Browser(1600, 1000) as b:
        b.go(f"{ui.url}/")
        b.click_link("avemo-audio")  # the home page's experiment list
        b.wait("return /#\\/experiments\\/[0-9]+\\/runs/.test(location.href)")
        assert f"#/experiments/{ui.experiment_id}/runs" in b.url()  # the runs, not the GenAI overview
        b.wait("return arguments[0].every(t => document.body.innerText.includes(t))", ["train_audio_best", "test_ua"])
        assert b.unobscured("[role=columnheader]", "test_ua_mean")  # in the window, no panel over it

        b.click_link("train_audio_best")
        version_link = f'a[href="#/models/avemo-audio/versions/{ui.version}"]'
        # seen without scrolling: the run's description (registry.py) links its version at the top of the page
        assert b.in_window(version_link), "the run page's registered version is below the fold"
        b.click(f'{version_link}:not([target="_blank"])')  # MLflow's own "Registered models" row
        b.wait("return location.hash.startsWith(arguments[0])", f"#/models/avemo-audio/versions/{ui.version}")
        b.click(f'a[href="#/experiments/{ui.experiment_id}/runs/{ui.run_id}"]')  # the version's "Source Run"
        b.wait("return location.hash.startsWith(arguments[0])", f"#/experiments/{ui.experiment_id}/runs/{ui.run_id}")
