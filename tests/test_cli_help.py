"""Every `avemo <verb> --help` explains every option, a misspelt --set section gets a did-you-mean, and no
library draws a progress bar over a command's output."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import pytest

from avemo.cli import VERBS, build_parser
from avemo.params import ParamsError
from tests.conftest import project_params

#: Owned by another engineer this round: their options are listed here until they get help text.
KNOWN_WITHOUT_HELP: dict[str, set[str]] = {}


def options_without_help(verb) -> set[str]:
    parser = build_parser(verb)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[verb.name]
    return {(a.option_strings or [a.dest])[0] for a in sub._actions
            if not a.help and not isinstance(a, argparse._HelpAction)}


@pytest.mark.parametrize("verb", VERBS, ids=[v.name for v in VERBS])
def test_every_option_of_every_verb_has_help(verb):
    assert options_without_help(verb) == KNOWN_WITHOUT_HELP.get(verb.name, set())


def test_a_misspelt_section_in_set_gets_a_did_you_mean():
    with pytest.raises(ParamsError, match="override trian.x: 'trian' is not a section of params.yaml; "
                                          "did you mean 'train'?"):
        project_params().override({"trian.x": 1})
    with pytest.raises(ParamsError, match="override train.lop.lr: 'lop' is not a section .*; did you mean 'loop'?"):
        project_params().override({"train.lop.lr": 0.1})


def test_downloading_run_artifacts_draws_no_progress_bar(empty_mlflow_store, tmp_path):
    """`avemo promote --audit` printed MLflow's "Downloading artifacts" bar above its table."""
    shutil.copy(empty_mlflow_store, tmp_path / "mlflow.db")
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.json").write_text("{}")
    probe = ("import avemo, mlflow; mlflow.set_tracking_uri('sqlite:///mlflow.db'); "
             "exp = mlflow.create_experiment('x', artifact_location=(__import__('pathlib').Path('art').resolve().as_uri()));"
             "run = mlflow.start_run(experiment_id=exp); mlflow.log_artifact('a.json', 'd'); "
             "mlflow.log_artifact('b.json', 'd'); mlflow.end_run(); "
             "print(sorted(__import__('os').listdir(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, "
             "artifact_path='d'))))")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "['a.json', 'b.json']", proc.stderr
    assert "Downloading artifacts" not in proc.stderr and "it/s" not in proc.stderr, proc.stderr
