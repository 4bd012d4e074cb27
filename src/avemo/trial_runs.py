"""Each search trial as a child run of its study's MLflow parent run, whichever process runs it.

The hooks the search library calls (tuning/study.py: TrialHooks) with the trial's sampled params, its
per-epoch metrics, its value and cost, and its end state with the reason; `avemo tune` and every
`avemo tune-worker` record trials through this one class.
"""

from __future__ import annotations

import time

COST = ("parameters", "latency_ms")  # a trial's cost, as user attrs and metrics on its run


class TrialRuns:
    """Trial hooks that record each trial as a child run of the study's MLflow parent run."""

    def __init__(self):
        import mlflow

        from avemo.tracking import tracking_uri

        mlflow.set_tracking_uri(tracking_uri())
        self.client = mlflow.MlflowClient()

    def started(self, trial, config, overrides: dict) -> None:
        from mlflow.entities import Param

        from avemo.tuning.study import worker_id

        tracking = config.tracking
        if not tracking.get("parent_run_id"):
            return
        run = self.client.create_run(tracking["experiment_id"], run_name=f"trial {trial.number}", tags={
            "mlflow.parentRunId": tracking["parent_run_id"], "optuna.study": trial.study.study_name,
            "optuna.trial": str(trial.number), "worker": worker_id(), "dvc_stage": config.stage, "state": "RUNNING"})
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in overrides.items()])
        trial.set_user_attr("mlflow_run_id", run.info.run_id)

    def epoch(self, trial, epoch: int, record: dict) -> None:
        from mlflow.entities import Metric

        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            now = int(time.time() * 1000)
            self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, epoch) for k, v in record.items()
                                                   if k != "epoch"])

    def ended(self, trial, state: str, reason: str, value: float | None) -> None:
        from mlflow.entities import RunStatus

        run_id = trial.user_attrs.get("mlflow_run_id")
        if not run_id:
            return
        if value is not None:
            self.client.log_metric(run_id, "value_val_ua", value)
        for key in COST:  # set by the objective on a completed trial (tuning/cost.py)
            if key in trial.user_attrs:
                self.client.log_metric(run_id, key, float(trial.user_attrs[key]))
        self.client.set_tag(run_id, "state", state)
        if reason:
            self.client.set_tag(run_id, "reason", reason[:5000])
        if "traceback" in trial.user_attrs:  # a trial failed by an error (tuning/study.py: objective)
            self.client.log_text(run_id, trial.user_attrs["traceback"], "traceback.txt")
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if state == "FAIL" else RunStatus.FINISHED))
