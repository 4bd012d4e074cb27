"""`dvc plots show` (`make plots`): every plot file the stages write is on the page, and the page needs no network."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml

from avemo import plots_page
from tests import browser

PROJECT = Path(__file__).resolve().parents[1]


def declared_plots(pipeline: Path = PROJECT / "dvc.yaml") -> dict[str, dict]:
    """A dvc.yaml's top-level plots: file -> its properties."""
    return {path: props for entry in yaml.safe_load(pipeline.read_text())["plots"] for path, props in entry.items()}


def study_plots() -> dict[str, dict]:
    """study/dvc.yaml's plots by their path from the project root (DVC reads them relative to study/)."""
    return {os.path.normpath(f"study/{path}"): props for path, props in
            declared_plots(PROJECT / "study" / "dvc.yaml").items()}


def default_details_folders():
    """The details folders of the quick default's stages (dvc.yaml), where they write their plot tables."""
    for stage in yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"].values():
        for out in stage.get("do", stage).get("outs") or []:
            path = next(iter(out)) if isinstance(out, dict) else out
            if path.startswith("reports/details/"):
                yield from PROJECT.glob(path.replace("${item}", "*"))


def test_every_plot_file_the_default_stages_write_is_declared():
    written = {p.relative_to(PROJECT).as_posix() for folder in default_details_folders() for p in folder.glob("*.csv")
               if p.name != "skipped.csv"}  # the items a stage could not use: a record, not a plot
    assert written, "no plot table in reports/details"
    assert written <= set(declared_plots())
    readme = (PROJECT / "README.md").read_text()
    named = set(re.findall(r"reports/details/[\w@-]+/\w+\.csv", readme))
    assert named <= set(declared_plots()) | set(study_plots())  # every plot README points to is on the page


def test_the_study_s_plots_are_the_files_its_stages_write():
    outs = {next(iter(o)) if isinstance(o, dict) else o
            for stage in yaml.safe_load((PROJECT / "study" / "dvc.yaml").read_text())["stages"].values()
            for o in stage.get("do", stage).get("outs") or []}
    for path in study_plots():
        assert path.startswith("reports/details/") and any(path.startswith(f"{o}/") for o in outs), path


@pytest.mark.slow
def test_the_plots_page_loads_vega_from_itself_and_draws_every_plot(tmp_path):
    """A DVC project with two of the project's plots, configured as the project is (.dvc/config)."""
    chosen = ["reports/details/train_video/confusion.csv", "reports/details/train_fusion_best/learning_curve.csv"]
    for path in chosen:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / path, tmp_path / path)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"plots": [{p: declared_plots()[p]} for p in chosen]}))
    dvc = [str(Path(sys.executable).parent / "dvc")]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    config = ConfigParser()
    config.read(PROJECT / ".dvc" / "config")
    template = config["plots"]["html_template"]
    subprocess.run([*dvc, "config", "plots.html_template", template], cwd=tmp_path, check=True)
    plots_page.write(tmp_path / ".dvc" / template)
    subprocess.run([*dvc, "plots", "show", "-q"], cwd=tmp_path, check=True)

    page = (tmp_path / "dvc_plots" / "index.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)  # no script fetched from anywhere, CDN or file
    assert "window.vegaEmbed=" in page.replace(" ", "") and page.count("vegaEmbed('#") == len(chosen)
    if browser.available():  # drawn: one Vega drawing (an <svg class="marks">) per plot
        page_uri = (tmp_path / "dvc_plots" / "index.html").as_uri()
        dom = subprocess.run(["chromium", *browser.FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                              "--virtual-time-budget=10000", "--dump-dom", page_uri],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        assert dom.count('class="marks"') == len(chosen)


def test_make_plots_shows_the_plots_whose_data_exist_and_names_the_missing(tmp_path, capfd):
    """After `make repro` alone the study's plots have no data: a plain `dvc plots show` then said only "DVC
    failed to load some plots"; the page must still hold every plot whose data exists."""
    made = "reports/details/train_video/confusion.csv"
    (tmp_path / made).parent.mkdir(parents=True)
    (tmp_path / made).write_text("actual,predicted\nangry,angry\nangry,sad\nsad,sad\n")
    (tmp_path / "study").mkdir()
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"plots": [{made: declared_plots()[made]}]}))
    (tmp_path / "study" / "dvc.yaml").write_text(yaml.safe_dump({"plots": [
        {"../reports/details/train_fusion_pretrained/ua_by_fraction.csv": {"x": "fraction", "y": ["scratch_ua"]}},
        {"../reports/details/train_video/confusion.csv": {"x": "actual", "y": "predicted", "title": "again"}},
        {"pair": {"x": "epoch", "y": {"../reports/details/pretrain_sync/learning_curve.csv": ["val_sync_acc"],
                                       "../reports/details/train_video/confusion.csv": ["actual"]}}}]}))
    found, missing = plots_page.plot_targets(tmp_path)
    assert found == [f"dvc.yaml::{made}", "study/dvc.yaml::../reports/details/train_video/confusion.csv"]
    assert missing == {"reports/details/train_fusion_pretrained/ua_by_fraction.csv": "make study",
                       "reports/details/pretrain_sync/learning_curve.csv": "make study"}

    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    assert plots_page.show(tmp_path) == 0
    err = capfd.readouterr().err
    assert "reports/details/train_fusion_pretrained/ua_by_fraction.csv: not made yet (`make study` makes it)" in err
    assert "failed to load" not in err, err
    page = (tmp_path / "dvc_plots" / "index.html").read_text()
    assert page.count("vegaEmbed('#") == 2 and "again" in page
