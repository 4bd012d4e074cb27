"""Resumable state of a long stage, kept where DVC does not delete it.

DVC removes a stage's outputs before it runs the stage, so a checkpoint inside them is gone
by the time a re-run after a kill looks for it. Stages keep their resumable state in
`.avemo/resume/<stage>/` instead (git- and DVC-ignored), stamped with a fingerprint of
everything that determines the result: the params the stage reads, the md5 of every input
file, the package's code. A re-run with the same fingerprint resumes; state with another
fingerprint is set aside (moved to `.avemo/resume/stale/`, with a message), never resumed.
The folder is removed once the stage has written its outputs.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow

RESUME_ROOT = Path(".avemo") / "resume"


class ResumeFolder:
    """`root/<stage>/` for one fingerprint; `resumed` says whether state of an interrupted run was found."""

    def __init__(self, stage: str, key: str, root: Path = RESUME_ROOT):
        self.key = key  # the fingerprint: what a checkpoint inside must also carry to be resumed
        self.path = root / stage.replace("@", "_").replace("/", "_")
        stamp = self.path / "fingerprint"
        self.resumed = stamp.exists() and stamp.read_text() == key
        if self.path.exists() and not self.resumed:
            aside = root / "stale" / f"{self.path.name}-{time.strftime('%Y%m%dT%H%M%S')}"
            aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.path), str(aside))
            print(f"{stage}: saved state from another run (other params, data or code) set aside in {aside}; "
                  "starting afresh", flush=True)
        self.path.mkdir(parents=True, exist_ok=True)
        stamp.write_text(key)

    def sub(self, name: str) -> Path:
        return self.path / name

    def read(self, name: str) -> dict | None:
        """A JSON record saved by an earlier attempt (e.g. a finished seed), or None."""
        path = self.path / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def write(self, name: str, record: dict) -> None:
        tmp = self.path / f"{name}.json.tmp"
        tmp.write_text(json.dumps(record))
        tmp.replace(self.path / f"{name}.json")  # atomic: a kill never leaves half a record

    @contextmanager
    def mlflow_run(self, name: str, run_name: str, nested: bool = False) -> Iterator[mlflow.ActiveRun]:
        """Start the MLflow run `name` of this stage, or reopen the one an interrupted attempt started."""
        saved = self.read("mlflow") or {}
        with mlflow.start_run(run_id=saved.get(name), run_name=None if saved.get(name) else run_name,
                              nested=nested) as run:
            self.write("mlflow", {**(self.read("mlflow") or {}), name: run.info.run_id})
            yield run

    def finish(self) -> None:
        """The stage's outputs are written: nothing left to resume."""
        shutil.rmtree(self.path, ignore_errors=True)
