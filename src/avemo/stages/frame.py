"""The stage frame: what every stage does around its work, written once.

A stage module tells its method; the frame does the rest. Data stages: the reconciled skip
table (in = out + skipped, or the stage fails) and their counts, with what determined their
bytes. Learning stages: intra-op threads and deterministic kernels, the resume folder keyed by
a fingerprint of params, inputs and code, the MLflow parent run with its lineage tags (git
commit, DVC stage, input md5s, environment) and DVC datasets, and the figures: each a mean
with its 95 % interval over test items and seeds (stats.py), written as a short headline
metrics file for `dvc metrics show`, a detail file, the test predictions (what every later
comparison is computed from) and plot tables. The process itself was pinned before the stage
module was imported (cli.py, determinism.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avemo.handover import SearchChoice, TrainingDetails
from avemo.params import Params, set_changes
from avemo.reports import check_reconciled, write_json, write_table
from avemo.stats import LEVEL, METHOD, METRICS, REPLICATES, Predictions, figure
from avemo.tracking import fingerprint, git_commit, input_hashes

#: How every interval in a metrics file was made (stats.py).
INTERVAL_METHOD = {"level": LEVEL, "method": METHOD,
                   "replicates": REPLICATES}


class Frame:
    """One stage's run: its DVC name, its params, the files it reads."""

    def __init__(self, stage: str, params: Params, inputs: Iterable[Path | None]):
        self.stage = stage
        self.params = params
        self.inputs = [Path(p) for p in inputs if p is not None]

    # -- lineage -----------------------------------------------------------------------------------

    @cached_property
    def hashes(self) -> dict[str, str]:
        """md5 of every input file, as `data.<path>` (the md5s DVC keeps for them)."""
        return input_hashes(self.inputs)

    def lineage(self) -> dict[str, str]:
        """Tags that trace a run to code and data."""
        return {"git_commit": git_commit(), "dvc_stage": self.stage, "class_set": self.params.labels.set,
                **self.hashes}

    # -- data stages -------------------------------------------------------------------------------

    def write_skipped(self, path: Path, skipped: pd.DataFrame, what: str, n_in: int, n_out: int,
                      n_skipped: int | None = None) -> None:
        """What the stage skipped, with the reason; fails unless everything in went out or was reported."""
        check_reconciled(what, n_in, n_out, len(skipped) if n_skipped is None else n_skipped)
        write_table(path, skipped)

    def write_counts(self, path: Path, counts: dict[str, Any]) -> None:
        """A data stage's counts, and what determined its bytes besides inputs, params and code."""
        from avemo.determinism import data_environment

        write_json(path, {**counts, "determinism": {"cpu_isa": self.params.compute.cpu_isa, **data_environment()}})

    # -- learning stages ---------------------------------------------------------------------------

    def device(self):
        """Pin intra-op threads and deterministic kernels, then the device the loop trains on."""
        from avemo.determinism import pick_device, pin_torch

        pin_torch(self.params.train.threads, self.params.compute.cpu_isa)
        return pick_device(self.params.train.loop.device)

    def resume(self, *key: Any):
        """This stage's resume folder, for a fingerprint of `key`, the inputs and the package's code."""
        from avemo.stages.resume import ResumeFolder
        from avemo.tracking import code_hash

        return ResumeFolder(self.stage, fingerprint(self.stage, *key, self.hashes, code_hash()))

    def data_record(self, audio: Path, splits: Path, fold: int | None, *, video: Path | None = None,
                    egemaps: Path | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
        """The tags and MLflow datasets that name a stage's data, written the same way by every stage: the audio
        variant, the split (with the fold's sessions and speakers when one fold is trained), the face frames and the
        eGeMAPS table beside them."""
        from avemo.data.splits import split_tags

        tags = {"dataset_variant": audio.name, **(split_tags(pd.read_parquet(splits), fold) if fold is not None else {})}
        datasets = ({audio.name: audio, "splits": splits} | ({f"video-{video.name}": video} if video else {})
                    | ({f"egemaps-{egemaps.parent.name}": egemaps} if egemaps else {}))
        return tags, datasets

    @contextmanager
    def mlflow_run(self, experiment: str, resume=None, *, tags: dict | None = None, params: dict | None = None,
                   datasets: dict[str, Path] | None = None, device=None) -> Iterator:
        """The stage's MLflow parent run (reopened if an interrupted attempt started it), with its lineage."""
        import mlflow

        from avemo.determinism import environment
        from avemo.tracking import flatten, log_inputs, use_experiment

        use_experiment(experiment)
        run = resume.mlflow_run("parent", self.stage) if resume is not None else mlflow.start_run(run_name=self.stage)
        with run as active:
            mlflow.set_tags({k: str(v) for k, v in {**self.lineage(), **(environment(device) if device else {}),
                                                    **(tags or {})}.items()})
            if params:
                mlflow.log_params(flatten(params))
            if datasets:
                log_inputs(datasets, self.hashes)
            yield active

    @contextmanager
    def child_run(self, resume, name: str, run_name: str, tags: dict[str, Any]) -> Iterator:
        """One seed's (or one arm's) run under the stage's parent run, traced to the stage and the commit."""
        import mlflow

        with resume.mlflow_run(name, run_name, nested=True) as run:
            mlflow.set_tags({k: str(v) for k, v in {"dvc_stage": self.stage, "git_commit": git_commit(),
                                                    **tags}.items()})
            yield run

    def write_figures(self, metrics: Path, details: Path, predictions: Predictions, record: dict[str, Any],
                      run_id: str) -> dict[str, Any]:
        """Headline figures with intervals (metrics file), the detail, the predictions; the same on the MLflow run."""
        summary = summarise(predictions)
        headline = {"ua": summary["ua"]["mean"], "ua_low": summary["ua"]["low"], "ua_high": summary["ua"]["high"],
                    "wa": summary["wa"]["mean"], "f1": summary["f1"]["mean"], "seeds": len(predictions.seeds),
                    "items": len(predictions.items)}
        write_json(metrics, {k: round(v, 4) if isinstance(v, float) else v for k, v in headline.items()})
        details.mkdir(parents=True, exist_ok=True)
        detail = {"stage": self.stage, "mlflow_run_id": run_id, "classes": predictions.classes,
                  "interval": INTERVAL_METHOD, "test": summary, **record}
        write_json(details / "details.json", TrainingDetails.checked(detail, details / "details.json"))
        write_json(details / "predictions.json", predictions.to_dict())
        import mlflow

        client = mlflow.MlflowClient()
        for m in METRICS:
            for part in ("mean", "low", "high", "sd"):
                if summary[m][part] is not None:
                    client.log_metric(run_id, f"test_{m}_{part}", summary[m][part])
        client.log_metric(run_id, "test_ua", summary["ua"]["mean"])  # the headline, in the runs table's column
        client.log_artifact(run_id, str(details / "predictions.json"))
        return detail


def summarise(p: Predictions) -> dict[str, dict]:
    """Per metric: the mean over seeds, its interval, the sample sd over seeds and each seed's value."""
    from avemo.metrics import classification_metrics

    per_seed = [classification_metrics(p.y_true, pred, p.classes) for pred in p.y_pred]
    out = {}
    for m, key in zip(METRICS, ("ua", "wa", "f1_macro")):
        interval = figure(p, m)
        values = np.array([s[key] for s in per_seed])
        out[m] = {"mean": interval.estimate, "low": interval.low, "high": interval.high,
                  "sd": float(values.std(ddof=1)) if len(values) > 1 else None,
                  "per_seed": {seed: float(v) for seed, v in zip(p.seeds, values)}}
    return out


def write_plot_tables(folder: Path, predictions: Predictions, seed_index: int, epochs: list[dict] | None) -> None:
    """The DVC plot files of a stage: the kept model's confusion pairs and its learning curve."""
    folder.mkdir(parents=True, exist_ok=True)
    names = np.array(predictions.classes)
    pd.DataFrame({"actual": names[predictions.y_true], "predicted": names[predictions.y_pred[seed_index]]}).to_csv(
        folder / "confusion.csv", index=False)
    if epochs:
        pd.DataFrame(epochs).to_csv(folder / "learning_curve.csv", index=False)


def searched(params: Params, results: Iterable[Path], sets: list[str]) -> Params:
    """params with the knobs each search chose (reports/tune/<family>.json), applied in order; then the
    command line's `--set` pairs (`args.set`; required, so that no stage forgets them) again, which win:
    `train_audio_aug` is the kept params with only `train.augment.enabled` changed, though the audio
    search chose that knob too."""
    for path in results:
        params = params.override(SearchChoice.read(path).chosen.overrides)
    return params.override(set_changes(sets))
