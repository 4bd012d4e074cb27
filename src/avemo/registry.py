"""The model registry as the hand-off point: register, promote behind a gate, audit, roll back.

`register` turns a training stage's kept model into a version of `avemo-audio` or
`avemo-fusion`: a pyfunc on raw input (serving.py) tagged with what it came from (git commit,
DVC stage, variant, class set, input md5s, params, test metrics), aliased `challenger`.
`promote` evaluates challenger and champion itself, on the held-out test utterances through
the pyfunc (mlflow.models.evaluate: the serving path), and moves `champion` only if the
challenger gains at least `min_delta` on the metric (mlflow.validate_evaluation_results).
Every decision is written as a tag on the version and a line of reports/promotions.jsonl.
Aliases move last, in one call, and are put back if anything after it fails: a failure
leaves them exactly as they were.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import MetricThreshold, make_metric
from mlflow.models.evaluation.validation import ModelValidationFailedException

import avemo
from avemo.data.datasets import items_for_role
from avemo.labels import class_set
from avemo.serving import EmotionModel, serving_config, signature
from avemo.tracking import (
    CLASSIC_ML,
    flatten,
    git_commit,
    pip_requirements,
    tracking_uri,
)

MODEL_NAMES = {"audio": "avemo-audio", "fusion": "avemo-fusion"}
EXPERIMENT = "avemo-registry"
AUDIT = Path("reports") / "promotions.jsonl"


def _experiment() -> str:
    mlflow.set_tracking_uri(tracking_uri())
    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found:
        return found.experiment_id
    Path("mlruns").mkdir(exist_ok=True)
    return mlflow.create_experiment(EXPERIMENT, tags=CLASSIC_ML,
                                    artifact_location=(Path("mlruns") / "artifacts" / EXPERIMENT).resolve().as_uri())


def register(family: str, kind: str, params: dict, model_dir: Path, metrics: Path, audio_dir: Path) -> dict:
    """Register a training stage's kept model (model_dir/best.pt); nothing new if this exact model is registered."""
    name = MODEL_NAMES[family]
    summary = json.loads(metrics.read_text())
    config = serving_config(family, kind, params, audio_dir)
    weights = model_dir / "best.pt"
    fingerprint = hashlib.md5(weights.read_bytes() + json.dumps(config, sort_keys=True).encode()).hexdigest()
    client = mlflow.MlflowClient(tracking_uri())
    _experiment()
    known = client.search_model_versions(f"name='{name}' and tag.fingerprint='{fingerprint}'")
    if known:
        return {"model": name, "version": int(known[0].version), "registered": False, "fingerprint": fingerprint}
    training = client.get_run(summary["mlflow_run_id"])
    tags = {"fingerprint": fingerprint, "git_commit": git_commit(), "dvc_stage": training.data.tags.get("dvc_stage", ""),
            "dataset_variant": training.data.tags.get("dataset_variant", ""), "class_set": params["labels"]["set"],
            "training_run_id": summary["mlflow_run_id"], "seed": str(summary["model"]["seed"]),
            **{k: v for k, v in training.data.tags.items() if k.startswith(("data.", "env."))},
            **{f"test_{m}_mean": f"{summary[f'test_{m}']['mean']:.4f}" for m in ("ua", "wa", "f1_macro")},
            **{f"test_{m}_sd": f"{summary[f'test_{m}']['sd'] or 0:.4f}" for m in ("ua", "wa", "f1_macro")},
            **{f"test_{m}": f"{summary['model'][f'test_{m}']:.4f}" for m in ("ua", "wa", "f1_macro")}}
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(experiment_id=_experiment(),
                                                                run_name=f"register {tags['dvc_stage']}") as run:
        config_path = Path(tmp) / "serving.json"
        config_path.write_text(json.dumps(config, indent=2))
        mlflow.set_tags({k: v for k, v in tags.items() if not k.startswith("data.")} | {"registered_model": name})
        mlflow.log_params(flatten({"params": {k: params[k] for k in ("labels", "train", "models")}}))
        info = mlflow.pyfunc.log_model(name="emotion_model", python_model=EmotionModel(),
                                       artifacts={"weights": str(weights), "config": str(config_path)},
                                       code_paths=[str(Path(avemo.__file__).parent)], signature=signature(),
                                       registered_model_name=name, pip_requirements=pip_requirements())
        version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, "challenger", version)
    return {"model": name, "version": int(version), "registered": True, "fingerprint": fingerprint,
            "run_id": run.info.run_id}


def evaluation_table(family: str, params: dict, utterances: pd.DataFrame, splits: pd.DataFrame,
                     video_dir: Path | None = None) -> pd.DataFrame:
    """The held-out test utterances as raw input (wav, and for fusion the video window and side), with labels.

    Fusion drops the utterances whose video the video stage could not read, as training did.
    """
    classes = class_set(params["labels"])
    items = items_for_role(utterances, splits, "test", params["train"]["fold"], classes)
    table = pd.DataFrame({"audio_path": items["wav_path"], "label": items["class"]})
    if family == "fusion":
        video = pd.read_parquet(video_dir / "clips.parquet").groupby("utterance_id")["has_video"].all()
        keep = items["utterance_id"].map(video).fillna(False).astype(bool).to_numpy()
        items, table = items[keep].reset_index(drop=True), table[keep].reset_index(drop=True)
        table["video_path"] = items["avi_path"]
        table["start"], table["end"] = items["start"].astype(float), items["end"].astype(float)
        table["side"] = np.where(items["gender"] == items["markers"], "left", "right")
    return table


def _ua(predictions: pd.Series, targets: pd.Series, metrics) -> float:
    from sklearn.metrics import recall_score

    return float(recall_score(targets, predictions, average="macro", labels=sorted(set(targets))))


UA = make_metric(eval_fn=_ua, greater_is_better=True, name="ua")


def evaluate(name: str, version: str, table: pd.DataFrame):
    """Run the registered pyfunc itself on the raw test table (the serving path), then MLflow's classifier
    evaluation of its answers (an evaluation run in MLflow); return the evaluation result."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    answers = table.assign(emotion=model.predict(table.drop(columns=["label"]))["emotion"].to_numpy())
    with mlflow.start_run(experiment_id=_experiment(), run_name=f"evaluate {name} v{version}"):
        mlflow.set_tags({"registered_model": name, "model_version": version})
        return mlflow.models.evaluate(data=answers, targets="label", predictions="emotion", model_type="classifier",
                                      extra_metrics=[UA], evaluators=["default"])


@dataclass
class Decision:
    model: str
    action: str  # promote | refuse | rollback | none
    from_version: str | None
    to_version: str | None
    metrics: dict
    reason: str

    def line(self) -> dict:
        return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": self.model, "decision": self.action,
                "from": self.from_version, "to": self.to_version, "metrics": self.metrics, "reason": self.reason}


@dataclass
class Version:
    version: str
    tags: dict


def _alias(client: mlflow.MlflowClient, name: str, alias: str) -> Version | None:
    """The version an alias points at (its number as a string, its tags), or None."""
    try:
        found = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return Version(str(found.version), dict(found.tags))


def promote(name: str, table: pd.DataFrame, metric: str = "ua", min_delta: float = 0.0, dry_run: bool = False,
            audit: Path = AUDIT) -> Decision:
    """Evaluate challenger and champion on `table` and move `champion` if the challenger gains `min_delta`."""
    client = mlflow.MlflowClient(tracking_uri())
    challenger, champion = _alias(client, name, "challenger"), _alias(client, name, "champion")
    if challenger is None:
        raise ValueError(f"{name} has no challenger: run the register stage first")
    if champion is not None and champion.version == challenger.version:
        return Decision(name, "none", champion.version, challenger.version, {},
                        f"version {challenger.version} is already the champion")
    results = {challenger.version: evaluate(name, challenger.version, table)}
    if champion is not None:
        results[champion.version] = evaluate(name, champion.version, table)
    scores = {v: {m: float(r.metrics[m]) for m in (metric, "accuracy_score", "f1_score") if m in r.metrics}
              for v, r in results.items()}
    if champion is None:
        action, reason = "promote", f"first champion of {name}"
    else:
        action, reason = gate(metric, min_delta, results[challenger.version], results[champion.version])
    decision = Decision(name, action, champion.version if champion else None, challenger.version,
                        {f"v{v}": s for v, s in scores.items()}, reason)
    if not dry_run:
        enact(client, decision, audit)
    return decision


def gate(metric: str, min_delta: float, candidate, baseline) -> tuple[str, str]:
    """('promote' | 'refuse', why): the challenger must gain at least `min_delta` on `metric`.

    A positive delta is MLflow's own gate (validate_evaluation_results with min_absolute_change);
    zero or a negative one (a tolerated loss) is a plain comparison, which MetricThreshold does not take.
    """
    new, old = float(candidate.metrics[metric]), float(baseline.metrics[metric])
    if min_delta > 0:
        try:
            mlflow.validate_evaluation_results(
                {metric: MetricThreshold(min_absolute_change=min_delta, greater_is_better=True)}, candidate, baseline)
        except ModelValidationFailedException as exc:
            return "refuse", " ".join(str(exc).split())
    elif new - old < min_delta:
        return "refuse", f"{metric} {new:.4f} vs {old:.4f}: the challenger loses more than {-min_delta}"
    return "promote", f"{metric} {new:.4f} vs {old:.4f}: gains at least {min_delta}"


def rollback(name: str, audit: Path = AUDIT) -> Decision:
    """Move `champion` back to the version it replaced (the `previous_champion` tag of the current one)."""
    client = mlflow.MlflowClient(tracking_uri())
    champion = _alias(client, name, "champion")
    if champion is None:
        raise ValueError(f"{name} has no champion to roll back")
    previous = champion.tags.get("previous_champion")
    if not previous:
        raise ValueError(f"{name} v{champion.version} replaced no earlier champion: nothing to roll back to")
    decision = Decision(name, "rollback", champion.version, previous, {}, f"rolled back from v{champion.version}")
    enact(client, decision, audit)
    return decision


def enact(client: mlflow.MlflowClient, decision: Decision, audit: Path) -> None:
    """Move the alias (promote, rollback), then write the audit trail; on any failure put the alias back."""
    name = decision.model
    before = _alias(client, name, "champion")
    try:
        if decision.action in ("promote", "rollback"):
            client.set_registered_model_alias(name, "champion", decision.to_version)
            if decision.action == "promote" and decision.from_version:
                client.set_model_version_tag(name, decision.to_version, "previous_champion", decision.from_version)
        line = decision.line()
        client.set_model_version_tag(name, decision.to_version, f"decision.{line['time'].replace(':', '')[:17]}",
                                     json.dumps({k: line[k] for k in ("decision", "from", "to", "reason")})[:5000])
        audit.parent.mkdir(parents=True, exist_ok=True)
        with audit.open("a") as f:
            f.write(json.dumps(line) + "\n")
    except Exception as exc:
        try:
            if before is None:
                client.delete_registered_model_alias(name, "champion")
            else:
                client.set_registered_model_alias(name, "champion", before.version)
            state = "aliases restored: champion is " + (f"v{before.version}" if before else "unset") + " as before"
        except Exception as restore_error:  # noqa: BLE001 - report both, the first is the cause
            state = f"could not restore the champion alias either ({restore_error})"
        raise RuntimeError(f"{decision.action} of {name} failed half-way ({exc}); {state}") from exc

