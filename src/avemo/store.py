"""Where the MLflow store is, and a registered version's files, found without importing MLflow when possible.

Importing MLflow and opening its SQLAlchemy store cost seconds, most of a cold `avemo predict`.
For the project's own store (a local SQLite file whose artifacts are local folders) the
version's folder is two SQL queries away, read-only; anything else (a tracking server, another
artifact store, workspaces, a schema this code does not know) goes through MLflow's own client.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlparse


#: What makes a folder the project's root: `mlruns/` (the store) lies beside them.
PROJECT_MARKERS = ("dvc.yaml", "params.yaml")


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder from `start` (default: the working folder) up that holds dvc.yaml and params.yaml.

    A command run from `study/` or `reports/` then reads the project's store, not an empty one of its own.
    """
    here = (start or Path.cwd()).resolve()
    return next((p for p in (here, *here.parents) if all((p / m).is_file() for m in PROJECT_MARKERS)), None)


def tracking_uri(root: Path | None = None) -> str:
    """MLFLOW_TRACKING_URI when set (a team's server); else the SQLite store of `root`, by default of the
    project holding the working folder (or of the working folder, outside any project)."""
    base = root if root is not None else project_root() or Path(".")
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(base / 'mlruns' / 'mlflow.db').resolve()}"


def require_store() -> None:
    """Refuse, saying how to fix it, where a command that reads the store would find none: outside a project
    without MLFLOW_TRACKING_URI, MLflow would create an empty store in the working folder and find no model."""
    if not os.environ.get("MLFLOW_TRACKING_URI") and project_root() is None:
        raise ValueError(f"no project here: neither {Path.cwd()} nor a folder above it holds "
                         f"{' and '.join(PROJECT_MARKERS)}, so there is no MLflow store to read; run from the "
                         "project root, or set MLFLOW_TRACKING_URI (e.g. sqlite:////path/to/avemo/mlruns/mlflow.db)")


def model_folder(reference: str, uri: str) -> Path:
    """The local folder of a registered version's MLflow model (holding MLmodel), from NAME@ALIAS or NAME/VERSION."""
    found = _sqlite_folder(reference, uri)
    if found is not None:
        return found
    database = Path(uri.removeprefix("sqlite:///").split("?")[0])
    if uri.startswith("sqlite:///") and not database.is_file():  # MLflow would create it, empty
        raise FileNotFoundError(f"no MLflow store at {database}: `make repro` makes "
                                "the project's and registers its models; from another folder, set "
                                "MLFLOW_TRACKING_URI to the project's mlruns/mlflow.db")
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(f"models:/{reference}", tracking_uri=uri))


def _sqlite_folder(reference: str, uri: str) -> Path | None:
    """The version's folder read straight from a local SQLite store, or None when that is not certain."""
    if not uri.startswith("sqlite:///") or "?" in uri or os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").lower() in (
            "1", "true"):
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    name, alias = reference.split("@", 1) if "@" in reference else (reference.rsplit("/", 1)[0], None)
    if alias is None and not reference.rsplit("/", 1)[-1].isdigit():
        return None
    where = ("v.version = (SELECT a.version FROM registered_model_aliases a WHERE a.name = v.name AND a.alias = ?)"
             if alias is not None else "v.version = ?")
    try:
        with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT v.storage_location, v.source FROM model_versions v WHERE v.name = ? AND "
                              f"{where} AND v.status = 'READY' AND "
                              "COALESCE(v.current_stage, '') != 'Deleted_Internal'",
                              (name, alias if alias is not None else int(reference.rsplit("/", 1)[1]))).fetchall()
    except sqlite3.Error:
        return None
    if len(rows) != 1:
        return None
    location = urlparse(rows[0][0] or rows[0][1])
    folder = Path(unquote(location.path))
    return folder if location.scheme == "file" and (folder / "MLmodel").is_file() else None


def pyfunc_artifacts(folder: Path) -> dict[str, Path]:
    """A pyfunc model's artifacts (name -> file), as its MLmodel lists them."""
    import yaml

    spec = yaml.safe_load((folder / "MLmodel").read_text())
    return {name: folder / item["path"] for name, item in spec["flavors"]["python_function"]["artifacts"].items()}
