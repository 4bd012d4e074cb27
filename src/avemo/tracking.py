"""MLflow wiring: where runs go, and what every training run records.

Backend `sqlite:///mlruns/mlflow.db` (the file store is refused by current MLflow), artifacts
under `mlruns/`; MLFLOW_TRACKING_URI points elsewhere (e.g. a team's tracking server, whose
artifact store then holds the artifacts too: README, Storage and workers). Every run
is tagged with the git commit, the DVC stage, the dataset variant, the class set and the
md5 of every input file it read, so any number traces back to code and data.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402

import avemo  # noqa: E402
from avemo.store import tracking_uri  # noqa: E402, F401  (one definition; re-exported for the stages)

#: Opens the experiment on its training runs in the MLflow UI, not on the GenAI overview.
CLASSIC_ML = {"mlflow.experimentKind": "custom_model_development"}


def served(uri: str) -> bool:
    """Whether a tracking URI is a tracking server (HTTP) rather than a database the client opens itself."""
    return uri.startswith(("http://", "https://"))


def experiment(name: str, root: Path = Path(".")) -> str:
    """The id of experiment `name` in the project store, created (tagged CLASSIC_ML) if missing.

    A local store keeps a new experiment's artifacts in `mlruns/artifacts/<name>`. A tracking server
    picks the location itself: with `--serve-artifacts` it is `mlflow-artifacts:/`, so every client
    uploads and downloads through the server and needs no access to its disk (a client-side folder
    here would leave each machine's artifacts on that machine).
    """
    uri = tracking_uri(root)
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.tags.get("mlflow.experimentKind") != CLASSIC_ML["mlflow.experimentKind"]:
            client.set_experiment_tag(found.experiment_id, *next(iter(CLASSIC_ML.items())))
        return found.experiment_id
    location = None
    if not served(uri):
        (root / "mlruns").mkdir(exist_ok=True)
        location = (root / "mlruns" / "artifacts" / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location, tags=CLASSIC_ML)
    except mlflow.exceptions.MlflowException as exc:  # another process created it meanwhile
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id


def use_experiment(family: str, root: Path = Path(".")) -> str:
    """Point MLflow at the project store and the experiment `avemo-<family>`; return its id."""
    mlflow.set_tracking_uri(tracking_uri(root))
    experiment_id = experiment(f"avemo-{family}", root)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


def log_epoch(epoch: int, record: dict) -> None:
    """A training loop's per-epoch record as metrics of the active run, stepped by epoch."""
    mlflow.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=epoch)


def fingerprint(*parts: Any) -> str:
    """A short hash of JSON-able parts (params, input md5s, code hash, ...)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def code_hash() -> str:
    """md5 over the package's source files: a resumed stage and a registered version carry their code."""
    digest = hashlib.md5()
    package = Path(avemo.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def input_hashes(inputs: list[Path]) -> dict[str, str]:
    """md5 of every file the run reads (the md5 DVC records for it in its cache), hashed now.

    Not read from dvc.lock: DVC rewrites the lock only after a stage finishes, so during a
    re-run it still holds the previous run's inputs.
    """
    files = sorted(f for p in inputs for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    return {f"data.{f.as_posix()}": _md5(f) for f in files}


def dvc_digest(path: Path, lock: Path = Path("dvc.lock")) -> str | None:
    """The md5 DVC recorded for an output (a `.dir` md5 for a folder), from the stage that wrote it.

    An upstream stage's entry is final before a downstream stage runs, so this is the version
    of the data the run reads. None outside a DVC project or for a path no stage writes.
    """
    if not lock.exists():
        return None
    return _recorded_outputs(lock.resolve(), lock.stat().st_mtime_ns).get(Path(path))


@functools.lru_cache(maxsize=4)
def _recorded_outputs(lock: Path, mtime_ns: int) -> dict[Path, str | None]:
    """Every output's md5 in a dvc.lock, parsed once per version of the file (libyaml: the lock is large)."""
    import yaml

    stages = (yaml.load(lock.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}).get("stages", {})
    return {Path(out["path"]): out.get("md5") for stage in stages.values() for out in stage.get("outs", [])}


def log_inputs(folders: dict[str, Path], hashes: dict[str, str], context: str = "training") -> None:
    """Each DVC-versioned input as an MLflow dataset (runs table: Dataset column), digest = its DVC md5.

    `folders` maps a dataset name to a stage-output folder holding `clips.parquet`, or to a table.
    Outside DVC the digest is a hash of the md5s of the files read.
    """
    import warnings

    import pandas as pd

    for name, folder in folders.items():
        table = folder / "clips.parquet" if folder.is_dir() else folder
        files = sorted(v for k, v in hashes.items() if k.startswith(f"data.{folder.as_posix()}"))
        digest = dvc_digest(folder) or hashlib.md5("".join(files).encode()).hexdigest()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # schema hints about integer columns and ambiguous local sources
            dataset = mlflow.data.from_pandas(pd.read_parquet(table), source=str(folder), name=name,
                                              digest=digest.removesuffix(".dir")[:36])
            mlflow.log_input(dataset, context=context)


def pip_requirements() -> list[str]:
    """What a logged model needs, pinned to this environment (torch without its local `+cpu` label)."""
    from importlib.metadata import version

    return [f"{p}=={version(p).split('+')[0]}" for p in ("torch", "numpy", "pandas", "librosa", "scipy", "soundfile",
                                                          "opencv-python-headless", "av", "noisereduce", "mlflow")]


def _md5(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def confusion_figure(confusion: list[list[int]], classes: list[str], path: Path, normalise: bool) -> None:
    matrix = np.array(confusion, dtype=float)
    if normalise:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:.2f}" if normalise else f"{int(v)}", ha="center", va="center", fontsize=8)
    ax.set_title("confusion (row-normalised)" if normalise else "confusion (counts)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def learning_curves(epochs: list[dict], path: Path) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    x = [e["epoch"] for e in epochs]
    a.plot(x, [e["train_loss"] for e in epochs], label="train")
    a.plot(x, [e["val_loss"] for e in epochs], label="val")
    a.set_title("loss")
    a.legend()
    b.plot(x, [e["val_wa"] for e in epochs], label="val WA")
    b.plot(x, [e["val_ua"] for e in epochs], label="val UA")
    b.set_title("validation")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def log_evaluation(test: dict, classes: list[str], epochs: list[dict], prefix: str = "test_") -> None:
    """Test metrics (named `prefix` + metric), confusion matrices (PNG + JSON), per-class report and learning
    curves, on the active run."""
    import tempfile

    mlflow.log_metrics({f"{prefix}wa": test["wa"], f"{prefix}ua": test["ua"], f"{prefix}f1_macro": test["f1_macro"],
                        **{f"{prefix}recall_{c}": r for c, r in test["recall"].items()}})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        confusion_figure(test["confusion"], classes, folder / "confusion_counts.png", normalise=False)
        confusion_figure(test["confusion"], classes, folder / "confusion_normalised.png", normalise=True)
        (folder / "confusion.json").write_text(json.dumps({"classes": classes, "matrix": test["confusion"]}, indent=2))
        report = {c: {"precision": test["precision"][c], "recall": test["recall"][c], "support": test["support"][c]}
                  for c in classes}
        (folder / "per_class.json").write_text(json.dumps(report, indent=2))
        if epochs:
            learning_curves(epochs, folder / "learning_curves.png")
        mlflow.log_artifacts(str(folder), artifact_path="evaluation")
