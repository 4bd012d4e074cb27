"""DVC's plots page without a network: the `--html-template` of `dvc plots show`, carrying Vega itself.

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline it stays blank.
vl-convert-python (a dependency) bundles the three libraries; this template inlines that bundle
and keeps DVC's `{plot_divs}` placeholder but not `{scripts}`, where DVC would put its CDN tags.
.dvc/config points `dvc plots show` at it; `make install` writes it (`python -m avemo.plots_page`).
"""

from __future__ import annotations

import sys
from pathlib import Path

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


if __name__ == "__main__":
    print(f"plots page template: {write(Path(sys.argv[1]) if len(sys.argv) > 1 else TEMPLATE)}")
