"""`make ui`: MLflow's own server, with its UI opening on what a classic-ML project's user looks for.

MLflow 3.17's UI keeps a few choices per browser (localStorage), and their first values suit
GenAI projects: an experiment opens on the GenAI overview whatever its `mlflow.experimentKind`
tag (the *GenAI / Model training* switch decides, and it starts on GenAI), the runs table shows
no metric column, the Assistant panel opens itself on a local server over a third of the
window, and pop-ups introduce UI telemetry and the new Model Registry UI. No server option or
tag sets any of them. Served as `mlflow server --app-name avemo` (this module is the
`mlflow.app` entry point `avemo`), the UI's page sets this project's value for every such choice
the browser has not made yet, before the UI starts; whatever the user chooses later is kept.
Everything else is MLflow's own app.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

#: MLflow's job runner serves GenAI jobs (judges, issue detection), which a classic-ML project has
#: none of; starting it, and more than one worker, makes the UI answer several times later on 2 cores.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

#: localStorage entries of MLflow 3.17's UI (`<key>_v<version>`, JSON) and this project's values.
DEFAULTS = {
    "mlflow.workflowType_v1": "machine_learning",  # experiments open on their runs; Models in the sidebar
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,  # the Assistant stays a button until clicked
    "mlflow.settings.telemetry.enabled_v1": False,  # the project sends no usage data (MLFLOW_DISABLE_TELEMETRY)
    "mlflow.telemetry.info.alert.dismissed_v1": True,  # so the banner asking for that choice has nothing to ask
    "_mlflow_model_registry_promo_modal_dismissed_v1": True,  # the new Registry UI (aliases, tags) is already on
}


#: Runs-table columns an experiment opens with: the Dataset (the DVC lineage), then the headline
#: figures where its runs have them (training: test UA, its mean and sd over seeds, validation UA;
#: searches: validation UA; registry evaluations: UA), all inside a 1600-pixel window. MLflow's own
#: default is Source, Models, Dataset (the run page shows both).
COLUMNS = ["attributes.`Dataset`",
           *(f"metrics.`{m}`" for m in ("test_ua", "test_ua_mean", "test_ua_sd", "best_val_ua", "value_val_ua", "ua"))]


def defaults(experiment_ids: list[str]) -> dict:
    """DEFAULTS, and COLUMNS for each experiment (its table state, which MLflow merges with its own defaults)."""
    return DEFAULTS | {f"MLflowLocalStorage-1.1-ExperimentPage-{json.dumps([i])}-ReactComponentState":
                       {"selectedColumns": COLUMNS} for i in experiment_ids}


def preamble(entries: dict) -> str:
    """A script that writes each entry the browser does not hold yet (a user's own choice wins)."""
    return ("<script>(function(d){for(var k in d){if(localStorage.getItem(k)===null)"
            f"localStorage.setItem(k,JSON.stringify(d[k]));}}}})({json.dumps(entries)});</script>")


def index():
    """MLflow's index.html with the preamble first in <head>, before the UI's own script."""
    from flask import Response, current_app
    from mlflow.server.handlers import _get_tracking_store

    ids = [e.experiment_id for e in _get_tracking_store().search_experiments()]
    page = (Path(current_app.static_folder) / "index.html").read_text()
    return Response(page.replace("<head>", f"<head>{preamble(defaults(ids))}", 1), mimetype="text/html")


def create_app():
    """The `mlflow.app` factory: MLflow's app with its index page (endpoint `serve`) replaced.

    Called in the server worker; MLflow's server is imported here, not when the CLI looks the
    entry point up (that import would add seconds to `make ui`'s start).
    """
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app

    app.view_functions["serve"] = index
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app


def server_command(backend_uri: str, artifact_root: Path, port: int) -> list[str]:
    """`mlflow server` with this app, one worker, on the loopback interface (run it with SERVER_ENV)."""
    return [str(Path(sys.executable).parent / "mlflow"), "server", "--app-name", "avemo", "--workers", "1",
            "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", backend_uri,
            "--default-artifact-root", str(artifact_root)]


def main() -> None:
    """`make ui`: replace this process by the server (Ctrl-C stops it)."""
    parser = argparse.ArgumentParser(description="the MLflow UI on a store, opening on training runs")
    parser.add_argument("--store", required=True, help="backend store URI, e.g. sqlite:///$PWD/mlruns/mlflow.db")
    parser.add_argument("--artifacts", type=Path, required=True, help="artifact root for new experiments")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    command = server_command(args.store, args.artifacts.resolve(), args.port)
    print(f"ui: http://127.0.0.1:{args.port}/  ({' '.join(command[1:])})", flush=True)
    os.execve(command[0], command, os.environ | SERVER_ENV)


if __name__ == "__main__":
    main()
