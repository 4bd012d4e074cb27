"""`avemo study` (`make study`): every experiment the report has a cell for, then the report.

The study is DVC stages (study/dvc.yaml: the audio grid, augmentation, the random split, three
classes, leave-one-session-out, the label-efficiency grid), so DVC runs what is missing, in order,
and skips what is done: a stopped study resumes where it stopped (an interrupted training
continues from its last epoch). This command shows the progress over the stages DVC has to run,
then renders the report again from the tracking store (forced: the report's deps are the
default's outputs, which the study leaves as they were; its new runs are in the store).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from avemo.params import Params

STUDY = "study/dvc.yaml"
REPORT = "dvc.yaml:report"
RUNNING = re.compile(r"^Running stage '([^']+)'")


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry", action="store_true", help="list the stages that would run, run nothing")


def run(args: argparse.Namespace, params: Params) -> None:
    from avemo.stages.show import console

    pending = stages_to_run(STUDY)
    if args.dry:
        console.print(f"study: {len(pending)} stage(s) to run: " + (", ".join(pending) or "none"), markup=False)
        return
    console.print(f"study: {len(pending)} stage(s) to run (the rest of {STUDY} is up to date)", markup=False)
    if pending:
        repro_with_progress(STUDY, pending)
    default = stages_to_run("dvc.yaml")
    repro_with_progress("dvc.yaml", default)
    if not {"report", REPORT} & set(default):  # a view of the store, which now holds the study's runs
        repro_with_progress(REPORT, [REPORT], force=True)


def stages_to_run(target: str) -> list[str]:
    """The stages of a target (and upstream) that are not up to date, as `dvc status` sees them now.

    Not `dvc repro --dry`: it stops at the first stage whose inputs an earlier stage has yet to
    make (a fresh study). A stage downstream of one that will re-run is counted once it starts.
    """
    import json

    status = subprocess.run(["dvc", "status", "--json", "--with-deps", target], capture_output=True, text=True)
    if status.returncode:
        raise RuntimeError(f"dvc status {target} failed:\n{status.stdout}{status.stderr}")
    return list(json.loads(status.stdout or "{}"))


def repro_with_progress(target: str, pending: list[str], force: bool = False) -> None:
    """`dvc repro target` (with `force`: that stage alone, run whatever its status), its output passed
    through, with a bar over the stages it runs."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task(f"{target}: starting", total=len(pending))
        proc = subprocess.Popen(["dvc", "repro", *(["--force", "--single-item"] if force else []), target],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        started = 0
        for line in proc.stdout:
            bar.console.print(line.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
            if m := RUNNING.match(line):
                bar.update(task, completed=started, total=max(len(pending), started + 1),
                           description=f"{target}: {m.group(1)}")
                started += 1
        if proc.wait():
            raise RuntimeError(f"dvc repro {target} failed (exit {proc.returncode}); run `make study` again to resume")
        bar.update(task, completed=started, total=started, description=f"{target}: done")
    sys.stdout.flush()
