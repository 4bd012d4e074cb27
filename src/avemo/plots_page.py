"""DVC's plots page without a network, and with every plot whose data exists (`make plots`).

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline it stays blank.
vl-convert-python (a dependency) bundles the three libraries; this template inlines that bundle
and keeps DVC's `{plot_divs}` placeholder but not `{scripts}`, where DVC would put its CDN tags.
.dvc/config points `dvc plots show` at it; `make install` writes it (`python -m avemo.plots_page`).

A plain `dvc plots show` after `make repro` alone meets plots of study/dvc.yaml whose data only
`make study` makes, and says only "DVC failed to load some plots". `python -m avemo.plots_page
--show` (`make plots`) passes DVC the plots whose files exist, by their `<dvc.yaml>::<id>` (so
each keeps its template and title), and names the others with the command that makes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

#: .dvc/config's plots.html_template, relative to .dvc/ as DVC reads it.
TEMPLATE = Path(".dvc") / "plots_page.html"

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>avemo: DVC plots</title>
    <script>(function () {{ {bundle} }})();</script>
    <style>body {{ font-family: sans-serif; }} table {{ border-spacing: 15px; }}</style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def bundle() -> str:
    """Vega, Vega-Lite (the newest 5.x: DVC's plot specs are Vega-Lite 5) and Vega-Embed as globals."""
    import vl_convert

    version = max((v for v in vl_convert.get_vegalite_versions() if v.startswith("5.")),
                  key=lambda v: tuple(map(int, v.split("."))))
    return vl_convert.javascript_bundle(vl_version=version)


def write(path: Path = TEMPLATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PAGE.format(bundle=bundle()), encoding="utf8")
    return path


#: The pipelines whose plots the page shows, and the command that makes their data.
PIPELINES = {Path("dvc.yaml"): "make repro", Path("study") / "dvc.yaml": "make study"}


def plot_targets(root: Path = Path(".")) -> tuple[list[str], dict[str, str]]:
    """(DVC targets of the plots whose data files all exist, {missing file: the command that makes it}).

    A plot's files are its id, or the files of its `y` when that maps files to columns; both are
    relative to the folder of the dvc.yaml that declares them (study/'s read `../reports/...`).
    """
    found, missing = [], {}
    for pipeline, maker in PIPELINES.items():
        if not (root / pipeline).is_file():
            continue
        for entry in yaml.safe_load((root / pipeline).read_text()).get("plots") or []:
            plot_id, props = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            y = (props or {}).get("y")
            files = [os.path.normpath(pipeline.parent / f) for f in (y if isinstance(y, dict) else [plot_id])]
            absent = [f for f in files if not (root / f).is_file()]
            if absent:
                missing.update(dict.fromkeys(absent, maker))
            else:
                found.append(f"{pipeline.as_posix()}::{plot_id}")
    return found, missing


def show(root: Path = Path(".")) -> int:
    """`dvc plots show` of the plots whose data exist; the missing ones named. DVC's exit status."""
    found, missing = plot_targets(root)
    for path, maker in missing.items():
        print(f"plots: {path}: not made yet (`{maker}` makes it); left off the page", file=sys.stderr)
    if not found:
        print("plots: no plot's data exists yet: run `make repro` first", file=sys.stderr)
        return 1
    dvc = Path(sys.executable).parent / "dvc"
    return subprocess.run([str(dvc) if dvc.exists() else "dvc", "plots", "show", *found], cwd=root).returncode


if __name__ == "__main__":
    if sys.argv[1:] == ["--show"]:
        sys.exit(show())
    print(f"plots page template: {write(Path(sys.argv[1]) if len(sys.argv) > 1 else TEMPLATE)}")
