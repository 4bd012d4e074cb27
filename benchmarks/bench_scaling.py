"""How the pipeline's cost grows with the corpus, up to IEMOCAP's size, and what `make repro` costs there.

The synthetic corpus at 1x, 4x and 16x the embedded one (16x: IEMOCAP's size), each in a temporary
copy of the project (dvc.yaml, study/dvc.yaml, src/, params.yaml with that size's `synth`), where every
data stage runs as users run it, `dvc repro -s <stage>` in the pipelines' order. Data stages are the
default's whose command is `avemo synth|index|split|audio|video|baseline`, and the study's audio
variants and splits (its reference stages repeat the default's baseline on other labels or folds,
and are projected from it); names, commands and outputs come from the dvc.yaml files. Training: one
epoch of one seed per family (and per audio model of `study.models`), with the command dvc.yaml gives
the family's first `avemo train` stage, less the options that need a search or pre-training first
(`--best`, `--init-*`), fusion from scratch.

Per stage: wall time; the peak RSS of its process tree (dvc, the shell, avemo and its workers,
sampled every 0.2 s: short peaks can be missed), in total and in anonymous memory only (the
memory-mapped outputs count in RSS, but their pages are the page cache's to evict; anonymous pages
are what must fit in RAM; forked workers' shared pages count once per process, so both are upper
bounds); the bytes of its outputs. Each cost is fitted against the corpus size (log-log slopes),
flagged when it grows faster than linearly or would not fit in `MEMORY_GIB` at IEMOCAP's size, and
`make repro` and `make study` on the real IEMOCAP are projected from the largest size measured.

Environment: BENCH_SCALES (default 1,4,16); BENCH_OUT (default benchmarks/results): scaling.json
and scaling.md go there, and results of other sizes already there are kept and fitted with the new
ones (a new folder for a fresh set); BENCH_WORK (default the system temp folder): where the projects
go, about 15 GiB at 16x; BENCH_KEEP=1 keeps them.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

PROJECT = Path(__file__).resolve().parents[1]
DATA_VERBS = ("synth", "index", "split", "audio", "video", "baseline")
STUDY_DATA_VERBS = ("split", "audio")  # the study's references are the default's baseline on other labels or folds
#: Options of `avemo train` that need a search or pre-training first.
NEEDS_UPSTREAM = ("--best", "--init-audio", "--init-video", "--init-pretrained")
#: One epoch, one seed, nothing loaded from other stages: only the epoch's cost.
TRAIN_ONE_EPOCH = {"train": {"loop": {"epochs": 1}, "video": {"epochs": 1}, "fusion": {"epochs": 1}, "seeds": [0],
                             "fusion_init": "scratch"}}
#: The real corpus (the issue's figures; labelled = the four standard classes, about 7 h of them;
#: video: 151 dialogues of about 5 minutes at 29.97 frames/s).
IEMOCAP = {"dialogues": 151, "utterances": 10_039, "labelled": 5_531, "hours": 12.0, "labelled_hours": 7.0,
           "video_frames": round(151 * 300 * 29.97)}
#: What each kind of stage's cost follows, for the projection to IEMOCAP.
COST_FOLLOWS = {"index": "utterances", "split": "utterances", "audio": "labelled_hours", "video": "video_frames",
                "baseline": "labelled_hours", "train": "labelled"}
MEMORY_GIB = 24
SUPERLINEAR = 1.15  # a log-log slope above this, between the two largest sizes, is flagged
SAMPLE_S = 0.2


def synth_at(scale: int, base: dict) -> dict:
    """`synth` for a corpus `scale` times the embedded one: dialogues first twice as long (IEMOCAP's
    have about 66 turns, the embedded ones 35), then more dialogues a session (IEMOCAP: about 30)."""
    longer = min(scale, 2)
    return {**base, "turns_per_dialogue": base["turns_per_dialogue"] * longer,
            "dialogues_per_session": base["dialogues_per_session"] * scale // longer}


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def make_project(root: Path, params: dict) -> None:
    """A copy of the project as a git repo: dvc.yaml, src/, DVC's config, the given params."""
    root.mkdir(parents=True)
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    (root / "study").mkdir()
    shutil.copy(PROJECT / "study" / "dvc.yaml", root / "study" / "dvc.yaml")
    shutil.copytree(PROJECT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(PROJECT / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    shutil.copy(PROJECT / ".gitignore", root / ".gitignore")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=bench@avemo", "-c", "user.name=bench", "commit", "-q", "-m", "bench"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)


def stage_env() -> dict[str, str]:
    """This venv first on PATH (the stages call `avemo`), the project's own MLflow store, no telemetry."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return env | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", "DO_NOT_TRACK": "1",
                  "MLFLOW_DISABLE_TELEMETRY": "true", "DVC_NO_ANALYTICS": "1"}


def stages(root: Path) -> list[dict]:
    """Every stage of the copy's pipelines, resolved: name (as `dvc repro` takes it), command, outputs (from the
    project root), counts files; the default's first, in their order."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        found = [{"name": s.name if s.path_in_repo == "dvc.yaml" else f"{s.path_in_repo}:{s.name}",  # from the root
                  "study": s.path_in_repo != "dvc.yaml", "cmd": s.cmd,
                  "outs": [o.fs_path for o in s.outs], "counts": [o.fs_path for o in s.outs if o.fs_path.endswith(".json")]}
                 for s in repo.index.stages if s.path_in_repo in ("dvc.yaml", "study/dvc.yaml") and s.cmd]
    return sorted(found, key=lambda stage: stage["study"])


def data_stages(all_stages: list[dict]) -> list[dict]:
    return [s for s in all_stages if verb(s["cmd"]) in (STUDY_DATA_VERBS if s["study"] else DATA_VERBS)]


def verb(cmd: str) -> str:
    """The `avemo` verb of a command, past its global options (`--set k=v`); "" for another command."""
    from scripts.stage_deps import verb_of

    try:
        return verb_of(cmd)
    except (ValueError, IndexError):
        return ""


def tree_memory(root: psutil.Process) -> tuple[int, int]:
    """(RSS, anonymous RSS) summed over a process and its descendants, in bytes."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    total = anonymous = 0
    for proc in procs:
        try:
            memory = proc.memory_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += memory.rss
        anonymous += memory.rss - memory.shared
    return total, anonymous


def run_measured(cmd: list[str], cwd: Path, log: Path) -> dict:
    """Run a command to its end: wall seconds and the peak memory of its process tree; raise if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = peak_anonymous = 0
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=stage_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        watched = psutil.Process(proc.pid)
        try:
            while proc.poll() is None:
                total, anonymous = tree_memory(watched)
                peak, peak_anonymous = max(peak, total), max(peak_anonymous, anonymous)
                time.sleep(SAMPLE_S)
        except BaseException:  # interrupted: stop the stage and its workers too, not only dvc
            os.killpg(proc.pid, signal.SIGTERM)
            raise
        wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); the end of {log}:\n{log.read_text()[-3000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(peak / 2**20),
            "peak_anon_mib": round(peak_anonymous / 2**20)}


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def training_command(cmd: str, kind: str | None = None) -> list[str]:
    """A training stage's command without the options that need other stages' outputs (and with another audio
    model kind)."""
    words, out = shlex.split(cmd), []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in NEEDS_UPSTREAM:
            skip = True
        else:
            out.append(word)
    return out[:1] + (["--set", f"models.audio.kind={kind}"] if kind else []) + out[1:]


def option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def first_trainings(all_stages: list[dict], audio_kinds: list[str]) -> dict[str, tuple[dict, str | None]]:
    """The first `avemo train` stage of each family in the default pipeline; audio once per model kind."""
    found: dict[str, tuple[dict, str | None]] = {}
    for stage in (s for s in all_stages if not s["study"] and verb(s["cmd"]) == "train"):
        family = option(shlex.split(stage["cmd"]), "--family")
        for kind in (audio_kinds if family == "audio" else [None]):
            found.setdefault(f"audio:{kind}" if kind else family, (stage, kind))
    return found


def epoch_speed(root: Path, details: Path) -> dict:
    """Items/s of the epoch and the training items, from the runs the stage recorded in the copy's MLflow store."""
    import mlflow

    record = json.loads((details / "details.json").read_text())
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    speed = client.get_metric_history(record["model"]["mlflow_run_id"], "items_per_s")[-1].value  # the seed's run
    items = int(client.get_run(record["mlflow_run_id"]).data.tags["items_train"])
    return {"items_train": items, "items_per_s": round(speed, 1), "epoch_s": round(items / speed, 2)}


def corpus_measures(root: Path, params: dict) -> dict:
    """Dialogues, utterances, hours (index's metrics) and the dialogue videos' frames of the copy's corpus."""
    import cv2

    summary = json.loads((root / "reports" / "corpus.json").read_text())
    videos = sorted((root / params["corpus"]["root"]).glob("Session*/dialog/avi/DivX/*.avi"))
    frames = 0
    for avi in videos:
        capture = cv2.VideoCapture(str(avi))
        frames += int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
    return {"dialogues": len(videos), "utterances": summary["utterances"], "labelled": summary["labelled"],
            "hours": summary["hours"], "labelled_hours": summary["labelled_hours"], "video_frames": frames,
            "raw_bytes": size_of(root / params["corpus"]["root"])}


def measure_scale(scale: int, work: Path, out: Path, save) -> dict:
    """Every data stage and one epoch per family on the corpus `scale` times the embedded one."""
    base = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params = merge(base, {"synth": synth_at(scale, base["synth"])} | TRAIN_ONE_EPOCH)
    root = work / f"avemo-scale-{scale}x"
    shutil.rmtree(root, ignore_errors=True)
    make_project(root, params)
    result = {"synth": params["synth"], "stages": {}, "training": {}}
    try:
        all_stages = stages(root)
        for stage in data_stages(all_stages):
            print(f"{scale}x: {stage['name']}", flush=True)
            record = run_measured([str(Path(sys.executable).parent / "dvc"), "repro", "-s", stage["name"]], root,
                                  out / "logs" / f"{scale}x-{stage['name'].replace('/', '_')}.log")
            record |= {"verb": verb(stage["cmd"]), "study": stage["study"],
                       "out_bytes": sum(size_of(root / o) for o in stage["outs"]),
                       "items": stage_items(root, stage)}
            result["stages"][stage["name"]] = record
            if stage["name"] == "index":
                result["corpus"] = corpus_measures(root, params)
            save(scale, result)
        result["disk_bytes"] = {"data/processed": size_of(root / "data" / "processed"),
                                "DVC cache": size_of(root / ".dvc" / "cache")}
        for family, (stage, kind) in first_trainings(all_stages, params["study"]["models"]).items():
            print(f"{scale}x: one {family} epoch", flush=True)
            words = training_command(stage["cmd"], kind)
            record = run_measured([str(Path(sys.executable).parent / words[0]), *words[1:]], root,
                                  out / "logs" / f"{scale}x-train-{family.replace(':', '-')}.log")
            result["training"][family] = record | epoch_speed(root, root / option(words, "--details"))
            save(scale, result)
    finally:
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(root, ignore_errors=True)
    return result


def stage_items(root: Path, stage: dict) -> int | None:
    """What the stage counts as its items, from its own counts file: audio items, video clips, utterances (None:
    no count; the report then takes the corpus's utterances, labelled ones for the baselines)."""
    for path in stage["counts"]:
        metrics = json.loads(Path(path).read_text())
        for key in ("items", "clips_in", "utterances"):
            if key in metrics:
                return int(metrics[key])
    return None


# --- fits, flags, projection ------------------------------------------------------------------

def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y on log x: 1 is linear growth, 2 quadratic; None below two sizes."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(points) < 2:
        return None
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx else None


def growth(results: dict, key: str, pick) -> dict:
    """Per stage (or family): the values by size, the slope over all sizes and between the two largest."""
    scales = sorted(results, key=int)
    names = {n for s in scales for n in pick(results[s])}
    rows = {}
    for name in names:
        present = [s for s in scales if name in pick(results[s])]
        xs = [results[s]["corpus"]["utterances"] for s in present]
        ys = [pick(results[s])[name][key] for s in present]
        rows[name] = {"values": dict(zip(present, ys)), "slope": slope(xs, ys), "slope_last": slope(xs[-2:], ys[-2:])}
    return rows


def to_iemocap(value: float, unit_here: float, unit_there: float, exponent: float | None) -> float:
    """A cost at one size carried to IEMOCAP's by its fitted growth, never assumed better than linear."""
    return value * (unit_there / unit_here) ** max(exponent or 1.0, 1.0)


def epoch_budget(params: dict, kinds: list[str]) -> dict[str, dict[str, float]]:
    """Training epochs per pipeline and model (`audio:<kind>`, `video`, `fusion`), from params.yaml: every seed,
    search trial (at its full trial budget, at the hand-set audio kind: pruning cuts it), fold, label share and
    pre-training epoch. A pre-training pair and a label-efficiency item are costed as a fusion item."""
    t, tune, pre, study = params["train"], params["tune"], params["pretrain"], params["study"]
    seeds, folds, efficiency = len(t["seeds"]), len(study["loso_folds"]), pre["efficiency"]
    epochs = {f: t.get(f, {}).get("epochs", t["loop"]["epochs"]) for f in ("audio", "video", "fusion")}
    hand_set = f"audio:{params['models']['audio']['kind']}"
    repro = {hand_set: epochs["audio"] * seeds + tune["audio"]["trials"] * tune["audio"]["epochs"],
             "video": epochs["video"] * seeds,
             "fusion": epochs["fusion"] * seeds + tune["fusion"]["trials"] * tune["fusion"]["epochs"]}
    study_epochs = {f"audio:{kind}": epochs["audio"] * seeds * len(study["grid_variants"]) for kind in kinds}
    study_epochs[hand_set] += epochs["audio"] * seeds * (3 + folds)  # augmentation, random split, 3 classes, folds
    study_epochs["video"] = epochs["video"] * seeds * (1 + folds)  # 3 classes, folds
    study_epochs["fusion"] = (epochs["fusion"] * seeds * (1 + folds) + pre["loop"]["epochs"]
                              + 2 * seeds * sum(efficiency["fractions"]) * efficiency["loop"]["epochs"])
    return {"make repro": repro, "make study": study_epochs}


def projection(results: dict) -> dict:
    """`make repro` and `make study` on the real IEMOCAP on this machine, from the largest size measured: each
    data stage by what its cost follows, training by the epochs params.yaml asks for. `synth` still makes the
    embedded corpus (a stage of dvc.yaml whatever corpus.root says): its smallest-size time, scaled to 1x. The
    study's references (3 classes, every fold) are costed as the default's reference of their family."""
    scales = sorted(results, key=int)
    largest = results[scales[-1]]
    smallest = scales[0]
    corpus = largest["corpus"]
    time_growth = growth(results, "wall_s", lambda r: r["stages"])
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    rows: dict[str, dict[str, float]] = {"make repro": {}, "make study": {}}
    for name, record in largest["stages"].items():
        pipeline = "make study" if record.get("study") else "make repro"
        if record["verb"] == "synth":
            rows[pipeline][name] = results[smallest]["stages"][name]["wall_s"] / int(smallest)
            continue
        follows = COST_FOLLOWS[record["verb"]]
        rows[pipeline][name] = to_iemocap(record["wall_s"], corpus[follows], IEMOCAP[follows],
                                          time_growth[name]["slope_last"])
    references = [v for k, v in rows["make repro"].items() if k.startswith("baseline")]
    if references:
        n = 3 + 2 * len(params["study"]["loso_folds"])
        rows["make study"][f"references: 3 classes, every fold ({n} stages)"] = n * sum(references) / len(references)
    budget = epoch_budget(params, params["study"]["models"])
    epoch_growth = growth(results, "epoch_s", lambda r: r["training"])
    for model, record in largest["training"].items():
        epoch = to_iemocap(record["epoch_s"], corpus["labelled"], IEMOCAP["labelled"],
                           epoch_growth[model]["slope_last"])
        for pipeline, epochs in budget.items():
            if epochs.get(model):
                rows[pipeline][f"training: {model} ({epochs[model]:g} epochs)"] = epoch * epochs[model]
    return {"from_scale": scales[-1], "seconds": {p: {k: round(v, 1) for k, v in r.items()} for p, r in rows.items()},
            "total_s": {p: round(sum(r.values()), 1) for p, r in rows.items()}}


def memory_at_iemocap(results: dict, name: str, pick) -> float:
    """A stage's peak anonymous memory (GiB) carried to IEMOCAP's labelled hours, at least linearly."""
    rows = growth(results, "peak_anon_mib", pick)[name]
    scale = max(rows["values"], key=int)
    corpus = results[scale]["corpus"]
    mib = to_iemocap(rows["values"][scale], corpus["labelled_hours"], IEMOCAP["labelled_hours"], rows["slope_last"])
    return mib / 1024


# --- report ---------------------------------------------------------------------------------------

def machine() -> dict:
    from importlib.metadata import version

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True)
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
              if line.startswith("model name")]
    return {"date": time.strftime("%Y-%m-%d"), "commit": commit.stdout.strip(),
            "cpu": models[0] if models else platform.machine(), "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "torch": version("torch")}


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(results: dict, info: dict) -> str:
    scales = sorted(results, key=int)
    head = " | ".join(f"{s}x" for s in scales)
    lines = [f"Command: `BENCH_SCALES={','.join(scales)} python -m benchmarks bench_scaling`; {info['date']}, "
             f"{info['commit']}, {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
             f"torch {info['torch']}.", "",
             "| size | dialogues | turns a dialogue | utterances | labelled (4 classes) | hours | labelled hours "
             "| video frames | raw corpus GiB |", "|---|---|---|---|---|---|---|---|---|"]
    for s in scales:
        c, synth = results[s]["corpus"], results[s]["synth"]
        lines.append(f"| {s}x | {c['dialogues']} | {synth['turns_per_dialogue']} | {c['utterances']:,} "
                     f"| {c['labelled']:,} | {c['hours']:.2f} | {c['labelled_hours']:.2f} | {c['video_frames']:,} "
                     f"| {c['raw_bytes'] / 2**30:.2f} |")
    i = IEMOCAP
    lines += [f"| IEMOCAP | {i['dialogues']} | ~66 | {i['utterances']:,} | {i['labelled']:,} | ~{i['hours']:g} "
              f"| ~{i['labelled_hours']:g} | ~{i['video_frames']:,} | |", ""]
    lines += stage_table(results, scales, head) + [""] + memory_table(results, scales, head) + [""]
    lines += training_table(results, scales, head) + [""] + projection_table(projection(results))
    return "\n".join(lines) + "\n"


def stage_table(results: dict, scales: list[str], head: str) -> list[str]:
    largest = results[scales[-1]]
    corpus = largest["corpus"]
    rows = growth(results, "wall_s", lambda r: r["stages"])
    lines = [f"Wall time, s (`dvc repro -s <stage>`, dvc's own start and hashing included); slope: log-log "
             f"against utterances, over all sizes / the two largest; costs per unit at {scales[-1]}x.", "",
             f"| stage | {head} | slope | slope (largest two) | items | ms per item | s per hour of audio "
             f"| µs per video frame | flag |", "|---|" + "---|" * (len(scales) + 7)]
    for name, record in largest["stages"].items():
        row = rows[name]
        wall = record["wall_s"]
        flag = "super-linear" if (row["slope_last"] or 0) > SUPERLINEAR and wall > 10 else ""
        items = record["items"] or corpus["labelled" if record["verb"] == "baseline" else "utterances"]
        lines.append(f"| {name} | " + " | ".join(fmt(row["values"].get(s), 1) for s in scales)
                     + f" | {fmt(row['slope'])} | {fmt(row['slope_last'])} | {items:,} | {1000 * wall / items:.1f} "
                     f"| {wall / corpus['hours']:.1f} | {1e6 * wall / corpus['video_frames']:.1f} | {flag} |")
    return lines


def memory_table(results: dict, scales: list[str], head: str) -> list[str]:
    largest = results[scales[-1]]
    peaks = growth(results, "peak_rss_mib", lambda r: r["stages"])
    anon = growth(results, "peak_anon_mib", lambda r: r["stages"])
    lines = [f"Peak memory of the stage's process tree, MiB: RSS (anonymous); its outputs, MiB; anonymous memory "
             f"carried to IEMOCAP's labelled hours from {scales[-1]}x, at least linearly (from a small size an "
             f"over-estimate: the interpreter's and libraries' memory is scaled too), flagged above {MEMORY_GIB} GiB.",
             "",
             f"| stage | {head} | outputs {scales[-1]}x | anonymous at IEMOCAP, GiB | flag |",
             "|---|" + "---|" * (len(scales) + 3)]
    for name, record in largest["stages"].items():
        at_iemocap = memory_at_iemocap(results, name, lambda r: r["stages"])
        lines.append(f"| {name} | " + " | ".join(
            f"{peaks[name]['values'].get(s, 0):,} ({anon[name]['values'].get(s, 0):,})" for s in scales)
                     + f" | {record['out_bytes'] / 2**20:,.0f} | {at_iemocap:.2f} | "
                     + ("does not fit" if at_iemocap > MEMORY_GIB else "") + " |")
    lines += ["", "Disk after the data stages, GiB (DVC caches a copy of every output):", "",
              f"| | {head} |", "|---|" + "---|" * len(scales),
              "| raw corpus | " + " | ".join(f"{results[s]['corpus']['raw_bytes'] / 2**30:.2f}" for s in scales) + " |"]
    for place in ("data/processed", "DVC cache"):
        lines.append(f"| {place} | " + " | ".join(fmt(results[s].get("disk_bytes", {}).get(place, 0) / 2**30)
                                                  for s in scales) + " |")
    return lines


def training_table(results: dict, scales: list[str], head: str) -> list[str]:
    epochs = growth(results, "epoch_s", lambda r: r["training"])
    lines = ["One training epoch (one seed; the training pass alone, from the run's items/s; the stage's wall time "
             "in brackets), s.", "", f"| family | {head} | slope | items/s at {scales[-1]}x | train items at "
             f"{scales[-1]}x |", "|---|" + "---|" * (len(scales) + 3)]
    largest = results[scales[-1]]["training"]
    for family, record in largest.items():
        cells = [f"{results[s]['training'][family]['epoch_s']:.1f} ({results[s]['training'][family]['wall_s']:.0f})"
                 if family in results[s]["training"] else "-" for s in scales]
        lines.append(f"| {family} | " + " | ".join(cells) + f" | {fmt(epochs[family]['slope'])} "
                     f"| {record['items_per_s']} | {record['items_train']:,} |")
    return lines


def projection_table(projected: dict) -> list[str]:
    lines = [f"Projected on the real IEMOCAP on this machine, from {projected['from_scale']}x (each data stage by "
             f"what its cost follows: {', '.join(f'{k}: {v}' for k, v in COST_FOLLOWS.items())}; training passes "
             "only, searches at their full trial budget; `make study` comes after `make repro`; `explain` not "
             "costed):", "", "| pipeline | part | s |", "|---|---|---|"]
    for pipeline, parts in projected["seconds"].items():
        lines += [f"| {pipeline} | {name} | {seconds:,.0f} |" for name, seconds in parts.items()]
        total = projected["total_s"][pipeline]
        lines.append(f"| {pipeline} | **total** | **{total:,.0f} s = {total / 3600:.1f} h** |")
    return lines


def main() -> None:
    scales = [int(s) for s in os.environ.get("BENCH_SCALES", "1,4,16").split(",")]
    out = Path(os.environ.get("BENCH_OUT", PROJECT / "benchmarks" / "results"))
    work = Path(os.environ.get("BENCH_WORK", tempfile.gettempdir()))
    out.mkdir(parents=True, exist_ok=True)
    store = out / "scaling.json"
    results = json.loads(store.read_text())["scales"] if store.exists() else {}
    info = machine()

    def save(scale: int, result: dict) -> None:
        results[str(scale)] = result
        store.write_text(json.dumps({"machine": info, "scales": results}, indent=2))

    for scale in scales:
        measure_scale(scale, work, out, save)
        (out / "scaling.md").write_text(markdown({s: r for s, r in results.items() if "corpus" in r}, info))
    print((out / "scaling.md").read_text())


if __name__ == "__main__":
    main()
