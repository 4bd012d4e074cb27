"""A team's tracking store, for real: `mlflow server` on PostgreSQL, proxying its artifact folder; two search
workers logging into it at once; registration and promotion through it; a client that cannot see the server's
disk nor import a PostgreSQL driver loads the champion over HTTP."""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from optuna.trial import TrialState

from avemo.registry import evaluation_table, promote
from avemo.serving import wait_until_up
from avemo.stages.tune import run_search, summarise, write_outputs
from tests.conftest import create_database
from tests.test_registry import CLASSES, aliases, train_and_register
from tests.tuning.test_distributed import config_for

NO_ACCESS = Path(__file__).parent / "no_access"  # its sitecustomize guards every Python process started with it
#: The champion, loaded by a fresh process elsewhere, with PostgreSQL's driver made unimportable.
LOAD_CHAMPION = """
import json, sys
sys.modules["psycopg2"] = None
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/avemo-audio@champion")
model.unwrap_python_model().read_local_files()  # batch scoring: the table names local wavs
print(json.dumps(model.predict(pd.read_parquet(sys.argv[1]))["emotion"].tolist()))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tracking_server(postgres_url, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(http URI, artifact folder) of an MLflow server on its own PostgreSQL database, loopback only, a free port.

    One uvicorn worker and no job runner (MLflow's GenAI jobs, seven processes by default) keep its start
    to seconds; its process group is stopped at the end, whatever happened.
    """
    backend = create_database(postgres_url, "mlflow")
    artifacts = tmp_path_factory.mktemp("server-artifacts").resolve()
    log = artifacts.parent / "mlflow-server.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
                                   "--artifacts-destination", str(artifacts), "--serve-artifacts",
                                   "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                  stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        try:
            wait_until_up(f"http://127.0.0.1:{port}/health", server)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{log.read_text()[-4000:]}") from None
        yield f"http://127.0.0.1:{port}", artifacts
    finally:
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it runs uvicorn as a child), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
            server.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def overlapping(runs: list) -> bool:
    """Whether two runs of different workers were open at the same time: the workers wrote concurrently."""
    return any(a.data.tags["worker"] != b.data.tags["worker"] and a.info.start_time < b.info.end_time
               and b.info.start_time < a.info.end_time for a in runs for b in runs)


@pytest.mark.slow
def test_a_search_and_the_registry_share_a_tracking_server_on_postgresql(
        tracking_server, postgres_url, tiny_variant, tiny_utterances, tiny_splits, project_dir, tmp_path, monkeypatch,
        capfd):
    uri, artifacts = tracking_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("AVEMO_NO_ACCESS", str(artifacts))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(NO_ACCESS), os.environ.get("PYTHONPATH")])))
    import tests.no_access.sitecustomize  # noqa: F401 - and this process is a client without access too
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    params, splits = project_dir

    # Two worker processes of one study log their trials into the server at once.
    config, frame = config_for(params, tiny_variant, splits, trials=6, epochs=1)
    study = run_search(config, frame, create_database(postgres_url, "optuna"), workers=2)
    outputs = argparse.Namespace(out=tmp_path / "tune.json", metrics=tmp_path / "tune_metrics.json",
                                 figures=tmp_path / "tune", compact_out=None)
    write_outputs(summarise(study, config, 0.0, (101, 102)), study, config, outputs, 1.0)
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials) == 6
    experiment = client.get_experiment_by_name("avemo-tune")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server's store, not a client folder
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(c.data.tags["optuna.trial"]) for c in children) == sorted(t.number for t in study.trials)
    assert all(c.info.status == "FINISHED" and "val_ua" in c.data.metrics for c in children)
    assert overlapping(children)
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "study")} >= {"study/history.png",
                                                                                    "study/tune.json"}
    assert (artifacts / experiment.experiment_id / parent.info.run_id / "artifacts" / "study" / "tune.json").is_file()
    assert "database is locked" not in "".join(capfd.readouterr())

    # The registry: register a trained model, promote it, load the champion from elsewhere over HTTP.
    registered = train_and_register("audio", tiny_variant, None, tmp_path, params, "team")
    table = evaluation_table("audio", params, tiny_utterances, tiny_splits)
    promote("avemo-audio", table)
    assert aliases("avemo-audio") == {"challenger": "1", "champion": "1"} and registered["version"] == 1
    version = client.get_model_version("avemo-audio", "1")
    assert any(k.startswith("decision.") for k in version.tags)
    assert client.get_model_version_download_uri("avemo-audio", "1").startswith("mlflow-artifacts:")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    table.drop(columns=["label"]).to_parquet(elsewhere / "input.parquet")
    loaded = subprocess.run([sys.executable, "-c", LOAD_CHAMPION, "input.parquet"], cwd=elsewhere,
                            capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-4000:]
    emotions = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert len(emotions) == len(table) and set(emotions) <= set(CLASSES)

    monkeypatch.delenv("AVEMO_NO_ACCESS")  # the server's side: everything landed in its folder, nothing here
    assert list(artifacts.rglob("MLmodel")) and not (Path("mlruns") / "artifacts").exists()
