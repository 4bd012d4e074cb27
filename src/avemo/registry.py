"""The model registry as the hand-off point: register, promote behind a gate, audit, roll back.

`register` turns a training stage's kept model into a version of `avemo-audio` or
`avemo-fusion`: a pyfunc on raw input (serving.py) tagged with what it came from (git commit,
DVC stage, variant, class set, input md5s, params, test metrics), aliased `challenger`
(`register_compact`: the search's compact pick, aliased `compact`).
`promote` evaluates challenger and champion itself, on the held-out test utterances through
the pyfunc (mlflow.models.evaluate: the serving path), and moves `champion` only if the
challenger's paired gain on the same utterances has a 95 % interval above `min_delta` (stats.py:
the rule every verdict of the project follows). Every decision, with its interval, is written as
a tag on the version and a line of the store's audit trail (`promotions.jsonl` of one run in the
`avemo-registry` experiment: it lives with the registry it describes). Aliases move last, in one
call, and are put back if anything after it fails: a failure leaves them exactly as they were.
A version's source run is the training stage's run, so the MLflow UI walks from a headline run to
its registered version and back.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import make_metric
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS, MLFLOW_RUN_NOTE

import avemo
from avemo.corpus.iemocap import speaker_side
from avemo.data.splits import items_for_role
from avemo.handover import TrainingDetails
from avemo.labels import class_set
from avemo.params import Params
from avemo.serving import EmotionModel, serving_config, signature
from avemo.stats import BETTER, Predictions, compare
from avemo.tracking import (
    code_hash,
    experiment,
    flatten,
    git_commit,
    pip_requirements,
    tracking_uri,
)

MODEL_NAMES = {"audio": "avemo-audio", "fusion": "avemo-fusion"}
COMPACT = "compact"  # the alias of the smallest model the interval rule cannot tell from the search's best
EXPERIMENT = "avemo-registry"
AUDIT_TAG = "avemo.audit"  # = "promotions" on the run holding the audit trail
AUDIT_FILE = "promotions.jsonl"


def _experiment() -> str:
    mlflow.set_tracking_uri(tracking_uri())
    return experiment(EXPERIMENT)


class PromotionHalfDone(RuntimeError):
    """A promotion or rollback failed after it began changing the registry (the message says what was restored)."""


def register(family: str, params: Params, model_dir: Path, details: Path, audio_dir: Path,
             alias: str = "challenger") -> dict:
    """Register a training stage's kept model (model_dir/best.pt) under `alias` (`challenger`); no new version if
    this exact model is registered already (the alias then moves to that version).

    `details` is the training stage's details.json: its run, kept seed and figures with intervals.
    """
    name = MODEL_NAMES[family]
    summary = TrainingDetails.read(details)
    config = serving_config(params, audio_dir)
    weights = model_dir / "best.pt"
    fingerprint = version_fingerprint(weights, config)
    client = mlflow.MlflowClient(tracking_uri())
    _experiment()
    known = client.search_model_versions(f"name='{name}' and tag.fingerprint='{fingerprint}'")
    if known:  # the pipeline's output is this version again (say, after a revert): it is the challenger again
        client.set_registered_model_alias(name, alias, known[0].version)
        return {"model": name, "version": int(known[0].version), "registered": False, "fingerprint": fingerprint}
    training = client.get_run(summary.mlflow_run_id)
    test, seed = summary.test, str(summary.model.seed)
    tags = {"fingerprint": fingerprint, "git_commit": git_commit(), "dvc_stage": training.data.tags.get("dvc_stage", ""),
            "dataset_variant": training.data.tags.get("dataset_variant", ""), "class_set": params.labels.set,
            "training_run_id": summary.mlflow_run_id, "seed": seed,
            **{k: v for k, v in training.data.tags.items() if k.startswith(("data.", "env."))},
            **{f"test_{m}_{part}": f"{getattr(test[m], part):.4f}" for m in ("ua", "wa", "f1")
               for part in ("mean", "low", "high")},
            **{f"test_{m}_seed": f"{test[m].per_seed[seed]:.4f}" for m in ("ua", "wa", "f1")}}
    version, run_id = log_version(name, weights, config, tags, params.yaml_values(["labels", "train", "models"]),
                                  source_run_id=summary.mlflow_run_id, alias=alias)
    return {"model": name, "version": int(version), "registered": True, "fingerprint": fingerprint, "run_id": run_id}


def version_fingerprint(weights: Path, config: dict) -> str:
    """md5 of the model file, the serving config and the package's code: a version carries its code (code_paths),
    so new serving code makes a new version even for the same weights."""
    return hashlib.md5(weights.read_bytes() + json.dumps(config, sort_keys=True).encode()
                       + code_hash().encode()).hexdigest()


def log_version(name: str, weights: Path, config: dict, tags: dict, params: dict | None = None,
                source_run_id: str | None = None, alias: str = "challenger") -> tuple[str, str]:
    """Log the pyfunc (model file, serving config, the package's code) in a registering run and make it a new
    version of `name`, tagged and aliased `alias`; its source run is `source_run_id` (the training run) when
    given. Return (version, the registering run's id)."""
    client = mlflow.MlflowClient(tracking_uri())
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(experiment_id=_experiment(),
                                                                run_name=f"register {tags.get('dvc_stage', '')}") as run:
        config_path = Path(tmp) / "serving.json"
        config_path.write_text(json.dumps(config, indent=2))
        mlflow.set_tags({k: v for k, v in tags.items() if not k.startswith("data.")} | {"registered_model": name})
        if params:
            mlflow.log_params(flatten({"params": params}))
        info = mlflow.pyfunc.log_model(name="emotion_model", python_model=EmotionModel(),
                                       artifacts={"weights": str(weights), "config": str(config_path)},
                                       code_paths=[str(Path(avemo.__file__).parent)], signature=signature(),
                                       pip_requirements=pip_requirements())
    version = _new_version(client, name, info.model_id, source_run_id or run.info.run_id)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, alias, version)
    return version, run.info.run_id


def register_compact(family: str, params: Params, model_dir: Path, details: Path, audio_dir: Path) -> Decision:
    """Register the search's compact pick, trained over the seeds (a compact training stage's model), and point the
    `compact` alias at it, on the audit trail. No gate: the pick is the search's (tuning/front.py), for users who
    serve on small machines; `champion` and `challenger` stay where they are."""
    name = MODEL_NAMES[family]
    client = mlflow.MlflowClient(tracking_uri())
    before = _alias(client, name, COMPACT)
    registered = register(family, params, model_dir, details, audio_dir, alias=COMPACT)
    version = str(registered["version"])
    client.set_model_version_tag(name, version, "role", COMPACT)
    decision = Decision(name, COMPACT, before.version if before else None, version, {},
                        f"the search's compact pick, trained over the seeds ({model_dir})")
    _append_audit(client, decision.line())
    return decision


def _new_version(client: mlflow.MlflowClient, name: str, model_id: str, source_run_id: str) -> str:
    """A new version of `name` holding the logged model, with `source_run_id` as its run.

    The MLflow UI lists a run's versions by the version's run_id: the headline training run then shows
    "Registered models: <name> vN", and the version page links back to that run. That row sits below the
    fold of the run page, so the run's description (shown first) links the version too.
    """
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"models:/{model_id}", run_id=source_run_id, model_id=model_id)
    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([{"name": name,
                                                                               "version": version.version}])})
    client.set_tag(source_run_id, MLFLOW_RUN_NOTE, f"Registered as [{name} version {version.version}]"
                                                   f"(#/models/{name}/versions/{version.version}).")
    return str(version.version)


def evaluation_table(family: str, params: Params, utterances: pd.DataFrame, splits: pd.DataFrame,
                     video_dir: Path | None = None) -> pd.DataFrame:
    """The held-out test utterances as raw input (wav, and for fusion the video window and side), with labels.

    Fusion drops the utterances whose video the video stage could not read, as training did.
    """
    classes = class_set(params.labels)
    items = items_for_role(utterances, splits, "test", params.train.fold, classes)
    table = pd.DataFrame({"audio_path": items["wav_path"], "label": items["class"]})
    if family == "fusion":
        video = pd.read_parquet(video_dir / "clips.parquet").groupby("utterance_id")["has_video"].all()
        keep = items["utterance_id"].map(video).fillna(False).astype(bool).to_numpy()
        items, table = items[keep].reset_index(drop=True), table[keep].reset_index(drop=True)
        table["video_path"] = items["avi_path"]
        table["start"], table["end"] = items["start"].astype(float), items["end"].astype(float)
        table["side"] = [speaker_side(g, m) for g, m in zip(items["gender"], items["markers"])]
    return table


def _ua(predictions: pd.Series, targets: pd.Series, metrics) -> float:
    from sklearn.metrics import recall_score

    return float(recall_score(targets, predictions, average="macro", labels=sorted(set(targets))))


UA = make_metric(eval_fn=_ua, greater_is_better=True, name="ua")


def evaluate(name: str, version: str, table: pd.DataFrame) -> tuple[object, list[str]]:
    """Run the registered pyfunc itself on the raw test table (the serving path), then MLflow's classifier
    evaluation of its answers (an evaluation run in MLflow); return the evaluation result and the answers."""
    experiment_id = _experiment()  # the project's store first: `models:/` resolves in the current one
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    model.unwrap_python_model().read_local_files()  # batch scoring in this process: the table names local files
    emotions = model.predict(table.drop(columns=["label"]))["emotion"].tolist()
    answers = table.assign(emotion=emotions)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate {name} v{version}"):
        mlflow.set_tags({"registered_model": name, "model_version": version})
        result = mlflow.models.evaluate(data=answers, targets="label", predictions="emotion", model_type="classifier",
                                        extra_metrics=[UA], evaluators=["default"])
    return result, emotions


@dataclass
class Decision:
    model: str
    action: str  # promote | refuse | rollback | none
    from_version: str | None
    to_version: str | None
    metrics: dict
    reason: str
    gain: dict | None = None  # the paired difference challenger - champion, its interval and verdict

    def line(self) -> dict:
        return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": self.model, "decision": self.action,
                "from": self.from_version, "to": self.to_version, "metrics": self.metrics, "reason": self.reason,
                "gain": self.gain}


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


def promote(name: str, table: pd.DataFrame, metric: str = "ua", min_delta: float = 0.0,
            dry_run: bool = False) -> Decision:
    """Evaluate challenger and champion on `table`; move `champion` if the challenger's gain has an interval above
    `min_delta`."""
    client = mlflow.MlflowClient(tracking_uri())
    challenger, champion = _alias(client, name, "challenger"), _alias(client, name, "champion")
    if challenger is None:
        raise ValueError(f"{name} has no challenger: run the register stage first")
    if champion is not None and champion.version == challenger.version:
        return Decision(name, "none", champion.version, challenger.version, {},
                        f"version {challenger.version} is already the champion")
    versions = [challenger.version] + ([champion.version] if champion else [])
    evaluated = {v: evaluate(name, v, table) for v in versions}
    scores = {f"v{v}": {m: float(r.metrics[m]) for m in (metric, "accuracy_score", "f1_score") if m in r.metrics}
              for v, (r, _) in evaluated.items()}
    if champion is None:
        return _decide(client, Decision(name, "promote", None, challenger.version, scores, f"first champion of {name}"),
                       dry_run)
    gain = paired_gain(table, evaluated[challenger.version][1], evaluated[champion.version][1], metric, min_delta)
    action, reason = gate(gain, metric, min_delta)
    return _decide(client, Decision(name, action, champion.version, challenger.version, scores, reason, gain.to_dict()),
                   dry_run)


def _decide(client: mlflow.MlflowClient, decision: Decision, dry_run: bool) -> Decision:
    if not dry_run:
        enact(client, decision)
    return decision


def paired_gain(table: pd.DataFrame, challenger: list[str], champion: list[str], metric: str, margin: float):
    """Challenger minus champion on the same test utterances, with its 95 % interval over them."""
    classes = sorted(set(table["label"]) | set(challenger) | set(champion))
    index = {c: k for k, c in enumerate(classes)}
    items = [str(k) for k in range(len(table))]
    truth = [index[c] for c in table["label"]]
    answers = [Predictions(items, truth, [[index[c] for c in emotions]], ["model"], classes)
               for emotions in (challenger, champion)]
    return compare(*answers, metric=metric if metric in ("ua", "wa", "f1") else "ua", margin=margin)


def gate(gain, metric: str, min_delta: float) -> tuple[str, str]:
    """('promote' | 'refuse', why): the interval of the challenger's paired gain must lie above `min_delta`."""
    d = gain.difference
    interval = f"{d.estimate:+.4f} [{d.low:+.4f}, {d.high:+.4f}]"
    if gain.verdict == BETTER:
        return "promote", f"{metric} gain {interval} (paired, 95 % interval over the test utterances) clears {min_delta}"
    return "refuse", (f"{metric} gain {interval} (paired, 95 % interval over the test utterances) does not clear "
                      f"--min-delta {min_delta}: {gain.verdict}")


def rollback(name: str) -> Decision:
    """Move `champion` back to the version it replaced (the `previous_champion` tag of the current one)."""
    client = mlflow.MlflowClient(tracking_uri())
    champion = _alias(client, name, "champion")
    if champion is None:
        raise ValueError(f"{name} has no champion to roll back")
    previous = champion.tags.get("previous_champion")
    if not previous:
        raise ValueError(f"{name} v{champion.version} replaced no earlier champion: nothing to roll back to")
    decision = Decision(name, "rollback", champion.version, previous, {}, f"rolled back from v{champion.version}")
    enact(client, decision)
    return decision


def enact(client: mlflow.MlflowClient, decision: Decision) -> None:
    """Move the alias (promote, rollback), then write the audit trail; on any failure put the alias back."""
    name = decision.model
    before = _alias(client, name, "champion")
    try:
        if decision.action in ("promote", "rollback"):
            client.set_registered_model_alias(name, "champion", decision.to_version)
            if decision.action == "promote" and decision.from_version:
                client.set_model_version_tag(name, decision.to_version, "previous_champion", decision.from_version)
        line = decision.line()
        # to the microsecond: two decisions on one version within a second (a refusal, then a promotion) each keep a tag
        client.set_model_version_tag(name, decision.to_version, f"decision.{datetime.now():%Y-%m-%dT%H%M%S.%f}",
                                     json.dumps({k: line[k] for k in ("decision", "from", "to", "reason")})[:5000])
        _append_audit(client, line)
    except Exception as exc:
        try:
            if before is None:
                client.delete_registered_model_alias(name, "champion")
            else:
                client.set_registered_model_alias(name, "champion", before.version)
            state = "aliases restored: champion is " + (f"v{before.version}" if before else "unset") + " as before"
        except Exception as restore_error:  # noqa: BLE001 - report both, the first is the cause
            state = f"could not restore the champion alias either ({restore_error})"
        raise PromotionHalfDone(f"{decision.action} of {name} failed half-way ({exc}); {state}") from exc


def _audit_run(client: mlflow.MlflowClient) -> str | None:
    runs = client.search_runs([_experiment()], f"tags.`{AUDIT_TAG}` = 'promotions'", max_results=1)
    return runs[0].info.run_id if runs else None


def _trail(client: mlflow.MlflowClient, run_id: str | None) -> list[dict]:
    if run_id is None or AUDIT_FILE not in {f.path for f in client.list_artifacts(run_id)}:
        return []
    return [json.loads(line) for line in mlflow.artifacts.load_text(f"runs:/{run_id}/{AUDIT_FILE}").splitlines()]


def audit_trail(name: str | None = None) -> list[dict]:
    """The store's promotion decisions (of model `name`, or all), oldest first."""
    client = mlflow.MlflowClient(tracking_uri())
    return [line for line in _trail(client, _audit_run(client)) if name is None or line["model"] == name]


def _append_audit(client: mlflow.MlflowClient, line: dict) -> None:
    """Rewrite the trail with `line` added, in one upload (the audit run is made on the first decision)."""
    run_id = _audit_run(client)
    if run_id is None:
        run = client.create_run(_experiment(), run_name="audit: promotions", tags={AUDIT_TAG: "promotions"})
        run_id = run.info.run_id
        client.set_terminated(run_id)
    client.log_text(run_id, "".join(json.dumps(x) + "\n" for x in [*_trail(client, run_id), line]), AUDIT_FILE)
