"""Every file committed under reports/ is some stage's output: a leftover that no stage writes any more (an old
variant's skip table) would be read as current."""

import os
import subprocess

from tests.conftest import PROJECT


def declared_outputs() -> set[str]:
    """The outs of every stage of both pipelines, as DVC resolves them (foreach and matrix items included),
    relative to the project."""
    from dvc.repo import Repo

    with Repo(str(PROJECT)) as repo:
        return {os.path.relpath(out.fs_path, PROJECT) for stage in repo.index.stages for out in stage.outs}


def test_every_committed_report_is_a_stage_output():
    outs = declared_outputs()
    committed = subprocess.run(["git", "ls-files", "reports"], cwd=PROJECT, capture_output=True, text=True,
                               check=True).stdout.split()
    assert committed

    def declared(path: str) -> bool:  # the out itself, or a file a stage writes into its declared folder
        return any(path == out or path.startswith(out + "/") for out in outs)

    for path in committed:
        if os.path.basename(path) == ".gitignore":  # DVC's own: each line keeps one cached out of git
            folder = os.path.dirname(path)
            lines = (PROJECT / path).read_text().split()
            assert all(declared(f"{folder}{line}") for line in lines), f"{path}: names no stage's out"
        else:
            assert declared(path), f"{path}: committed, but no stage of dvc.yaml or study/dvc.yaml writes it"
