"""`make exps`: `dvc exp show` that fits 160 columns, the headline figures and the knobs that differ.

A plain `dvc exp show` prints all 360-odd columns (every metric of every stage, every knob of
params.yaml, every dependency's hash), so every cell reads "…" at any width, and DVC's config has
no default for its columns. This asks DVC for the knobs that vary across the experiments shown
(`--only-changed`) and the three trained models' test UA with its interval (`--keep`), as CSV, and
prints them with short headers (`audio UA [95 %]`), one interval per cell. Arguments go to `dvc exp
show` (`-A`, `-n 5`, `--sort-by ...`); README gives the recipe for any other column.

`--dry -S KEY=VALUE ...` (`make exp-dry`) lists what `dvc exp run -S ...` would run. DVC 3.67's own
`dvc exp run --dry` always fails on this pipeline ("failed to reproduce 'index': No such file ...
.dvc/tmp/exps/standalone/..."): a dry run makes its temporary copy of the project without checking
out any data (executor/base.py skips the checkout when dry), then hashes the first stage's
dependencies there. This applies the changes to params.yaml with DVC's own `-S` parser, runs
`dvc repro --dry` in the workspace (where the data is), and puts params.yaml back byte for byte.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

#: The headline: each trained model's test UA (reports/metrics/<stage>.json), shown as "ua [ua_low, ua_high]".
HEADLINE = {"train_audio_best": "audio", "train_video": "video", "train_fusion_best": "fusion"}
KEEP = rf"^reports/metrics/({'|'.join(HEADLINE)})\.json:(ua|ua_low|ua_high)$"
WIDTH = 160
KNOB_WIDTH = 24


def exp_csv(args: list[str]) -> str:
    """`dvc exp show --csv` of the changed knobs and the headline metrics (DVC's own selection)."""
    dvc = Path(sys.executable).parent / "dvc"
    proc = subprocess.run([str(dvc) if dvc.exists() else "dvc", "exp", "show", "--csv", "--only-changed", "--keep",
                           KEEP, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc exp show failed: {proc.stderr.strip()}")
    return proc.stdout


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): the experiment, when it ran, each model's UA [interval], then the knobs that differ.

    Dependencies' hashes (a column named by a path) are left out: the knobs say what changed.
    """
    rows = list(csv.DictReader(io.StringIO(text)))
    columns = list(rows[0]) if rows else []
    knobs = [c for c in columns if "/" not in c and c not in ("Experiment", "rev", "typ", "Created", "parent")]
    headers = ["experiment", "created", *(f"{name} UA [95 %]" for name in HEADLINE.values()), *knobs]
    out = []
    for row in rows:
        name = row.get("Experiment") or row.get("rev", "")
        if row.get("typ") in ("branch_commit", "branch_base"):
            name = f"└ {name}"
        cells = [name, (row.get("Created") or "-")[:16].replace("T", " ")]
        for stage in HEADLINE:
            cells.append(interval(*(row.get(f"reports/metrics/{stage}.json:{k}", "") for k in ("ua", "ua_low",
                                                                                               "ua_high"))))
        out.append(cells + [row.get(k) or "-" for k in knobs])
    return headers, out


def interval(ua: str, low: str, high: str) -> str:
    """"0.917 [0.866, 0.964]"; DVC's own mark where a figure is not a number ("!": its file is missing)."""
    try:
        return f"{float(ua):.3f} [{float(low):.3f}, {float(high):.3f}]"
    except ValueError:
        return ua or "-"


def render(headers: list[str], rows: list[list[str]], width: int = WIDTH) -> str:
    """A plain table no wider than `width`: the experiment and the figures whole, each knob cut to 24
    characters ("…"), and the knobs that do not fit named below it."""
    def cut(text: str, n: int) -> str:
        return text if len(text) <= n else text[:n - 1] + "…"

    columns = [[h, *(r[k] for r in rows)] for k, h in enumerate(headers)]
    widths = [max(map(len, c)) for c in columns[:5]]
    used, shown = sum(widths) + 2 * (len(widths) - 1), 5
    for column in columns[5:]:
        w = min(max(map(len, column)), KNOB_WIDTH)
        if used + 2 + w > width:
            break
        widths.append(w)
        used, shown = used + 2 + w, shown + 1
    lines = ["  ".join(cut(c[i], w).ljust(w) for c, w in zip(columns, widths)).rstrip()
             for i in range(len(rows) + 1)]
    if shown < len(headers):
        lines.append(cut(f"not shown (wider than {width} columns): {', '.join(headers[shown:])}", width))
    return "\n".join(lines) + "\n"


def dry_run(args: list[str], params: Path = Path("params.yaml")) -> int:
    """What `dvc exp run -S ... [targets]` would run, from `dvc repro --dry`; params.yaml left as it was."""
    from dvc.utils.hydra import apply_overrides

    sets, targets, rest = [], [], list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("-S", "--set-param"):
            if not rest:
                raise ValueError(f"{arg}: expected KEY=VALUE, e.g. -S train.loop.epochs=3")
            sets.append(rest.pop(0))
        else:
            targets.append(arg)
    original = params.read_bytes()
    try:
        if sets:
            apply_overrides(params, sets)
        dvc = Path(sys.executable).parent / "dvc"
        return subprocess.run([str(dvc) if dvc.exists() else "dvc", "repro", "--dry", *targets]).returncode
    finally:
        params.write_bytes(original)


def main(args: list[str]) -> int:
    try:
        if args[:1] == ["--dry"]:
            return dry_run(args[1:])
        headers, rows = table(exp_csv(args))
    except (RuntimeError, ValueError) as exc:
        print(f"exps: {exc}", file=sys.stderr)
        return 1
    print(render(headers, rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
