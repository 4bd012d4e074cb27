"""params.yaml is validated before any stage runs: a misspelt key, a wrong type, an impossible value or a missing key
stops the command with the key's path and what was expected; every section builds what it configures."""

import os
import subprocess
import sys

import pytest
import yaml

from avemo.params import Params, ParamsError, load_params
from tests.conftest import PROJECT


def broken(tmp_path, change) -> str:
    tree = yaml.safe_load((PROJECT / "params.yaml").read_text())
    change(tree)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    with pytest.raises(ParamsError) as error:
        load_params(path)
    return str(error.value)


def test_the_project_params_load_and_every_loop_is_valid():
    params = load_params(PROJECT / "params.yaml")
    for family in ("audio", "video", "fusion"):
        assert params.train.loop_for(family, seed=3).seed == 3
    tree = yaml.safe_load((PROJECT / "params.yaml").read_text())["train"]
    video = params.train.loop_for("video")  # the family's changes over the shared loop, the rest inherited
    assert (video.epochs, video.lr) == (tree["video"]["epochs"], tree["video"]["lr"]) != (tree["loop"]["epochs"],
                                                                                          tree["loop"]["lr"])
    assert video.batch_size == tree["loop"]["batch_size"] == params.train.loop.batch_size


def test_the_typed_defaults_are_params_yaml_value_for_value():
    """One value per knob: `Params()` (a library called without a file, `avemo predict` outside a project) computes
    what the pipeline does. params.yaml still writes every knob (DVC reads stage params from it); they must agree."""
    def leaves(tree, path=""):
        if not isinstance(tree, dict):
            return {path: tree}
        return {k: v for key, value in tree.items() for k, v in leaves(value, f"{path}.{key}".lstrip(".")).items()}

    typed = leaves(Params().model_dump(mode="json"))
    written = leaves(yaml.safe_load((PROJECT / "params.yaml").read_text()))
    differ = {key: (typed.get(key, "<no such knob>"), value) for key, value in written.items()
              if typed.get(key, "<no such knob>") != value}
    assert not differ, f"typed default vs params.yaml: {differ}"
    assert {key for key, value in typed.items() if value is not None} <= set(written)


@pytest.mark.parametrize("change, message", [
    (lambda t: t["train"]["loop"].update(learning_rate=0.1), "train.loop.learning_rate: unknown key"),
    (lambda t: t["train"]["loop"].update(lr="fast"), "train.loop.lr: Input should be a valid number"),
    (lambda t: t["train"].update(crop_ratio=1.5), "train.crop_ratio: Input should be less than 1"),
    (lambda t: t["split"].update(scheme="speaker"), "split.scheme: Input should be 'fixed', 'loso' or 'random'"),
    (lambda t: t["split"].update(test_session=4), "split: test_session and val_session must differ"),
    (lambda t: t["labels"].update(set="paper5"), "labels: set 'paper5' is not one of the sets"),
    (lambda t: t["models"]["audio"].update(kernels=[[3, 3]]), "models.audio: channels, kernels and padding need one"),
    (lambda t: t["train"]["loop"].pop("ema_decay"), "train.loop.ema_decay: missing"),
    (lambda t: t["train"]["balance"].update(mode="smote"),
     "train.balance.mode: Input should be 'resample', 'class_weight' or 'none'"),
    (lambda t: t["compute"].update(cpu_isa="sse"), "compute.cpu_isa: Input should be 'avx2', 'avx512' or 'native'"),
])
def test_a_bad_params_file_names_the_key_and_what_was_expected(tmp_path, change, message):
    assert message in broken(tmp_path, change)


def test_a_typo_suggests_the_key_it_resembles(tmp_path):
    assert "train.loop.epoch: unknown key; did you mean 'epochs'?" in broken(
        tmp_path, lambda t: t["train"]["loop"].update(epoch=3))


def test_the_cli_refuses_a_bad_params_file_before_any_stage_runs(tmp_path):
    tree = yaml.safe_load((PROJECT / "params.yaml").read_text())
    tree["synth"]["turns_per_dialog"] = 6
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tree))
    proc = subprocess.run([sys.executable, "-m", "avemo.cli", "synth", "--out", "corpus"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "synth.turns_per_dialog: unknown key; did you mean 'turns_per_dialogue'?" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "corpus").exists()
    bad_set = subprocess.run([sys.executable, "-m", "avemo.cli", "--params", str(PROJECT / "params.yaml"), "--set",
                              "train.fold", "synth", "--out", "corpus"], cwd=tmp_path, capture_output=True, text=True)
    assert bad_set.returncode == 1 and "--set 'train.fold': expected KEY=VALUE" in bad_set.stderr


def test_every_verb_points_mlflow_at_the_project_store_unless_a_team_server_is_set(tmp_path):
    """MLflow's own default is a `mlflow.db` in whatever folder: a call that forgot to name the store would
    read an empty one (`Registered Model not found`). The CLI names it for the whole process."""
    probe = ("import mlflow; from avemo import cli; verb = cli.BY_NAME['promote']; "
             "cli.prepare(['promote'], verb); print(mlflow.MlflowClient().tracking_uri)")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    (tmp_path / "dvc.yaml").touch()
    (tmp_path / "params.yaml").write_text((PROJECT / "params.yaml").read_text())
    (tmp_path / "study").mkdir()
    for cwd in (tmp_path, tmp_path / "study"):  # from a subfolder too: the project's store, not one of its own
        own = subprocess.run([sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True)
        assert own.returncode == 0, own.stderr
        assert own.stdout.strip() == f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}"
    team = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"})
    assert team.stdout.strip() == "http://127.0.0.1:5000"


def test_a_command_that_reads_the_store_refuses_outside_a_project_and_creates_no_store(tmp_path):
    """Run elsewhere, MLflow would create an empty ./mlruns/mlflow.db and answer "Registered Model ... not found"."""
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}

    def predict(cwd) -> str:
        proc = subprocess.run([sys.executable, "-m", "avemo.cli", "predict", str(tmp_path / "clip.wav")], cwd=cwd,
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        return " ".join(proc.stderr.split())

    assert ("no project here: neither" in (outside := predict(tmp_path)) and "holds dvc.yaml and params.yaml" in outside
            and "run from the project root, or set MLFLOW_TRACKING_URI" in outside), outside
    assert not (tmp_path / "mlruns").exists()
    for marker in ("dvc.yaml", "params.yaml"):  # a project before `make repro`: no store yet
        (tmp_path / marker).touch()
    (tmp_path / "reports").mkdir()
    inside = predict(tmp_path / "reports")
    assert f"no MLflow store at {tmp_path.resolve() / 'mlruns' / 'mlflow.db'}: `make repro` makes" in inside, inside
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "reports" / "mlruns").exists()
