"""`baseline`: a reference beside the deep models, one row of references.REFERENCES (a linear model or an SVM).

Fit on the training role (with `train.refit`, the validation session too), answer the test role;
one MLflow run in the experiment of the deep models it stands beside; the metrics file of a
training stage (a single deterministic fit: its interval is over the test items alone); the fitted
scikit-learn pipeline as a DVC output (`joblib.load` gives it back), so a fresh clone refits it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params
from avemo.references import REFERENCES
from avemo.stages import options


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reference", choices=list(REFERENCES), required=True, help="a row of references.REFERENCES")
    options.data(p, video="video folder (references on face statistics)")
    p.add_argument("--egemaps", type=Path, help="the egemaps stage's folder (references on eGeMAPS)")
    p.add_argument("--utterances", type=Path, required=True, help="utterances.parquet (the wav of each clip)")
    options.stage(p)
    options.figures(p)
    p.add_argument("--model-out", type=Path, required=True, help="where the fitted pipeline goes (joblib)")


def run(args: argparse.Namespace, params: Params) -> None:
    import joblib
    import mlflow
    import pandas as pd

    from avemo.baselines import run_reference
    from avemo.data.splits import refit_roles
    from avemo.labels import class_set
    from avemo.stages.frame import Frame, write_plot_tables
    from avemo.stages.show import print_figures
    from avemo.stats import Predictions
    from avemo.tracking import log_evaluation

    reference = REFERENCES[args.reference]
    video = args.video if reference.needs_video else None
    egemaps = args.egemaps if reference.needs_egemaps else None
    table = egemaps / "features.parquet" if egemaps else None
    frame = Frame(args.stage, params, [args.audio, video, table, args.splits])
    classes = class_set(params.labels)
    t = params.train
    splits = pd.read_parquet(args.splits)
    if t.refit:
        splits = refit_roles(splits)
    result = run_reference(reference, args.audio, video, egemaps, pd.read_parquet(args.utterances), splits, classes,
                           t.fold, t.missing_video, params.baseline)
    y_true, y_pred = result["test_predictions"]
    predictions = Predictions(result["test_items"], y_true, [y_pred], ["fit"], classes)
    data_tags, datasets = frame.data_record(args.audio, args.splits, t.fold, video=video, egemaps=table)
    with frame.mlflow_run(reference.family, tags={**data_tags,
                                                  "reference": reference.description,
                                                  **{f"items_{r}": n for r, n in result["items"].items()},
                                                  "items_without_features": result["items_without_features"]},
                          params={"reference": reference.name, "family": reference.family, "model": reference.model,
                                  "features": "+".join(reference.features), "n_features": result["n_features"],
                                  "baseline": params.baseline.model_dump(), "fold": t.fold,
                                  "missing_video": t.missing_video, "refit": t.refit,
                                  "labels.set": params.labels.set},
                          datasets=datasets) as run:
        mlflow.log_metrics({"val_ua": result["val"]["ua"], "val_wa": result["val"]["wa"]})
        log_evaluation(result["test"], classes, [])
        args.model_out.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(result["model"], args.model_out)
        mlflow.log_artifact(str(args.model_out), "model")
        record = {"model": {"seed": "fit", "mlflow_run_id": run.info.run_id, "recall": result["test"]["recall"]},
                  "reference": reference.name, "description": reference.description,
                  "n_features": result["n_features"], "items_without_features": result["items_without_features"]}
        detail = frame.write_figures(args.metrics, args.details, predictions, record, run.info.run_id)
    write_plot_tables(args.details, predictions, 0, None)
    print_figures(f"baseline {args.stage} ({reference.description})", detail)
