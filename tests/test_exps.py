"""`make exps`: the experiments table fits 160 columns with the headline figures whole (a plain `dvc exp show`
prints 360-odd columns, every cell "…")."""

from __future__ import annotations

import json
import subprocess
import sys

from avemo import exps
from tests.conftest import PROJECT

CSV = ("Experiment,rev,typ,Created,parent,reports/metrics/train_video.json:ua,reports/metrics/train_video.json:ua_low,"
       "reports/metrics/train_video.json:ua_high,reports/metrics/train_audio_best.json:ua,"
       "reports/metrics/train_audio_best.json:ua_low,reports/metrics/train_audio_best.json:ua_high,"
       "reports/metrics/train_fusion_best.json:ua,reports/metrics/train_fusion_best.json:ua_low,"
       "reports/metrics/train_fusion_best.json:ua_high,train.loop.epochs,corpus.root," + ",".join(
           f"synth.knob_{k}" for k in range(12)) + ",src/avemo/cli.py\n"
       ",workspace,baseline,,,0.71,0.619,0.794,0.7222,0.6452,0.8077,0.9175,0.8656,0.9644,40,"
       "data/raw/a/very/long/path/to/IEMOCAP_full_release," + ",".join(["1"] * 12) + ",\n"
       "funny-exp,a1b2c3d,branch_commit,2026-12-01T10:11:12,main,0.70,0.6,0.8,,,,0.9,0.85,0.95,3,x,"
       + ",".join(["2"] * 12) + ",0123456789abcdef\n"
       "failed-exp,b2c3d4e,branch_commit,2026-12-01T11:00:00,main,!,!,!,0.7,0.6,0.8,0.9,0.85,0.95,3,x,"
       + ",".join(["2"] * 12) + ",\n")


def test_the_table_fits_160_columns_and_keeps_the_figures_whole():
    headers, rows = exps.table(CSV)
    assert headers[:5] == ["experiment", "created", "audio UA [95 %]", "video UA [95 %]", "fusion UA [95 %]"]
    assert "src/avemo/cli.py" not in headers and headers[5:7] == ["train.loop.epochs", "corpus.root"]
    assert rows[0][:5] == ["workspace", "-", "0.722 [0.645, 0.808]", "0.710 [0.619, 0.794]", "0.917 [0.866, 0.964]"]
    assert rows[1][:5] == ["└ funny-exp", "2026-12-01 10:11", "-", "0.700 [0.600, 0.800]", "0.900 [0.850, 0.950]"]
    assert rows[2][2:4] == ["0.700 [0.600, 0.800]", "!"]  # DVC's mark for a metric whose file is missing
    lines = exps.render(headers, rows).splitlines()
    assert max(map(len, lines)) <= 160 and "0.917 [0.866, 0.964]" in lines[1]
    assert "data/raw/a/very/long/pa…" in lines[1]  # a long knob is cut, not the table
    assert lines[-1].startswith("not shown (wider than 160 columns): synth.knob_")


def test_make_exps_on_the_project_fits_160_columns():
    """The real `dvc exp show` of this checkout (its committed reports/metrics)."""
    proc = subprocess.run([sys.executable, "-m", "avemo.exps"], cwd=PROJECT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    fusion = json.loads((PROJECT / "reports" / "metrics" / "train_fusion_best.json").read_text())
    assert max(map(len, lines)) <= 160 and lines[1].startswith("workspace") and f"{fusion['ua']:.3f} [" in lines[1]


def test_no_default_stage_is_always_changed_and_the_report_follows_every_run_it_names():
    """`dvc status` was never clean: the report was always_changed. It must rerun when a default stage writes a
    new MLflow run (its details.json holds the run id) and `make study` renders it after the study's runs."""
    import yaml

    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    assert [name for name, s in stages.items() if s.get("always_changed")] == []
    with_runs = {f"reports/details/{d}/details.json" for d in ("train_audio_best", "train_video", "train_fusion_best")}
    with_runs |= {f"reports/details/baseline-{r}/details.json" for r in ("audio", "video", "fusion")}
    assert with_runs <= set(stages["report"]["deps"])


def test_make_study_renders_the_report_again_even_when_dvc_sees_nothing_changed(monkeypatch):
    from avemo.stages import study

    calls = []
    monkeypatch.setattr(study, "stages_to_run", lambda target: ["train_audio@cnn-full-raw"] if "study" in target
                        else [])
    monkeypatch.setattr(study, "repro_with_progress", lambda target, pending, force=False: calls.append(
        (target, force)))
    study.run(type("Args", (), {"dry": False})(), None)
    assert calls == [("study/dvc.yaml", False), ("dvc.yaml", False), ("dvc.yaml:report", True)]


def test_the_dry_run_lists_what_would_run_and_leaves_params_yaml_as_it_was(tmp_path, monkeypatch, capfd):
    """`dvc exp run --dry` fails on this pipeline (DVC's temporary copy has no data); `make exp-dry` must not."""
    params = tmp_path / "params.yaml"
    params.write_text("# a comment DVC's writer would drop\ntrain:\n  loop:\n    epochs: 40\n")
    original = params.read_bytes()
    seen = []

    def repro(cmd, **_):
        seen.append((cmd[1:], params.read_text()))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(exps.subprocess, "run", repro)
    assert exps.dry_run(["-S", "train.loop.epochs=3", "train_audio_best"], params) == 0
    assert seen[0][0] == ["repro", "--dry", "train_audio_best"] and "epochs: 3" in seen[0][1]
    assert params.read_bytes() == original
    assert exps.main(["--dry", "-S"]) == 1 and "-S: expected KEY=VALUE" in capfd.readouterr().err
