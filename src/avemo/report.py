"""The results report: the study's tables filled from our own MLflow runs (`reports/results.md`).

Every number comes from an MLflow run (a stage's parent run: mean and sd over its seeds, or
its single run) found by its DVC stage tag and, where a table compares settings, by its
logged params; the cell names the run. Runs of earlier `dvc exp run`s count too: the store
keeps them all, so `dvc exp run -S labels.set=paper3` fills the 3-class column. A cell with no
run shows the gap and the command that fills it. The study's own numbers (PAPER.md) stand in
their own column: a random, speaker-dependent split of real IEMOCAP, not comparable with ours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
from mlflow.entities import Run  # noqa: E402

from avemo.tracking import git_commit, tracking_uri  # noqa: E402

#: The study's Table 3 (validation accuracy, %, random 80/20 split after over-sampling, real IEMOCAP).
STUDY = {"cnn": 52.23, "cnn_lstm": 39.77, "cnn_rnn": 54.00, "audio4": 54.00, "fusion4": 51.94, "audio3": 70.25,
         "fusion3": 71.75, "cnn_aug": 51.90, "cnn_lstm_aug": 39.65}
MODELS = ("cnn", "cnn_lstm", "cnn_rnn")
VARIANTS = (("full-raw", "DS I"), ("full-clean", "DS II"), ("clip3s-raw", "DS III"), ("clip3s-clean", "DS IV"))
EXPERIMENTS = ("avemo-audio", "avemo-video", "avemo-fusion", "avemo-pretrain")


@dataclass
class Figure:
    """One cell: a metric's mean (and sd over seeds) from a run, or the reason there is none."""

    run: Run | None
    metric: str = "test_ua"
    missing: str = ""

    def value(self, metric: str | None = None) -> float | None:
        if self.run is None:
            return None
        m, data = metric or self.metric, self.run.data.metrics
        return data.get(f"{m}_mean", data.get(m))

    def sd(self, metric: str | None = None) -> float | None:
        return None if self.run is None else self.run.data.metrics.get(f"{metric or self.metric}_sd")

    def text(self, metric: str | None = None) -> str:
        if self.run is None:
            return f"— ({self.missing})"
        value, sd = self.value(metric), self.sd(metric)
        if value is None:
            return f"— (run {self.run.info.run_id[:8]} has no {metric or self.metric})"
        spread = f" ± {sd:.3f}" if sd is not None else ""
        return f"{value:.3f}{spread} (run `{self.run.info.run_id[:8]}`)"


class Runs:
    """The finished top-level runs of the project's experiments, newest first, with lookups by stage and params.

    `scope` holds tags every lookup must match unless it names them itself (the split the report is about),
    so a LOSO fold or a random-split experiment never stands in for the headline figure."""

    def __init__(self, uri: str | None = None, scope: dict[str, str] | None = None):
        self.scope = scope or {}
        self.client = mlflow.MlflowClient(uri or tracking_uri())
        ids = [e.experiment_id for name in EXPERIMENTS if (e := self.client.get_experiment_by_name(name))]
        self.runs = [r for r in self.client.search_runs(ids, "attributes.status = 'FINISHED'", max_results=5000,
                                                         order_by=["attributes.start_time DESC"])
                     if "mlflow.parentRunId" not in r.data.tags] if ids else []

    def find(self, stage: str, how: str, params: dict[str, str] | None = None,
             tags: dict[str, str] | None = None) -> Figure:
        """The newest run of a DVC stage whose params and tags match (`{"train.augment.enabled": "True"}`);
        `how` says how to get one when there is none."""
        tags = {**self.scope, **(tags or {})}
        for run in self.runs:
            if run.data.tags.get("dvc_stage") == stage and all(
                    run.data.params.get(k) == v for k, v in (params or {}).items()) and all(
                    run.data.tags.get(k) == v for k, v in tags.items()):
                return Figure(run)
        return Figure(None, missing=how)


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(*header), _row(*["---"] * len(header)), *(_row(*r) for r in rows)]


def build_report(out: Path, figures: Path, params: dict, corpus: dict, tune: dict[str, dict], uri: str | None = None) -> str:
    """Write results.md (and its figures); return the text."""
    runs = Runs(uri, {"split_scheme": params["split"]["scheme"], "split_fold": str(params["train"]["fold"])})
    augment = {"train.augment.enabled": str(params["train"]["augment"]["enabled"])}
    label_set = params["labels"]["set"]
    lines = [f"# Results on `{params['corpus']['root']}`", "",
             f"Corpus: `{params['corpus']['root']}`: {corpus.get('utterances', '?')} utterances, "
             f"{corpus.get('labelled', '?')} in the class set `{label_set}` ({', '.join(corpus.get('classes', []))}), "
             f"{corpus.get('hours', '?')} h. Split: `{params['split']['scheme']}` (test Session "
             f"{params['split']['test_session']}, validation Session {params['split']['val_session']}: "
             "speaker-independent). Code: git `" + git_commit()[:10] + "`; every cell names its MLflow run, whose tags "
             "hold the md5 of each input file and the versions and threads that made it.",
             "", "Figures are test UA (unweighted accuracy, mean recall over classes); `±` is the standard deviation "
             f"over the seeds `{params['train']['seeds']}` where the stage ran several. A difference smaller than "
             "the spread is not a win. **The study's column** is its single-run validation accuracy (WA, %) on a "
             "random 80/20 split of real IEMOCAP made after over-sampling (copies of a clip on both sides): it is "
             "neither speaker-independent nor from this corpus, and is shown for orientation only.", ""]
    more = "add to `train.audio_models` / `train.variants`"

    lines += ["## 1. Audio models x dataset variants (test UA, one seed unless marked)", ""]
    rows = []
    for model in MODELS:
        cells = [runs.find(f"train_audio@{model}-{v}", f"not run: {more}").text() for v, _ in VARIANTS]
        rows.append([model, *cells, f"{STUDY[model]:.2f}"])
    lines += _table(["model", *(f"{name} `{v}`" for v, name in VARIANTS), "study (WA %, best variant)"], rows) + [""]

    lines += ["## 2. Augmentation, best audio model (test UA)", ""]
    how = "run `dvc exp run -S train.augment.enabled=true` (trains train_audio_best with the study's augmentation)"
    lines += _table(["augmentation", "ours", "study (CNN, WA %)"], [
        ["off", runs.find("train_audio_best", "not run", {"train.augment.enabled": "False"}).text(),
         f"{STUDY['cnn']:.2f}"],
        ["on (10-row shift, ±10° rotation)", runs.find("train_audio_best", how, {"train.augment.enabled": "True"}).text(),
         f"{STUDY['cnn_aug']:.2f}"]]) + [""]

    lines += ["## 3. Modalities, with a linear reference per modality (test UA)", "",
              "Reference: logistic regression on summary statistics of the same clips (log-mel band means and sds; "
              "face-pixel means and sds over time), same split. A deep model earns its cost only above it.", ""]
    other = "paper3" if label_set != "paper3" else "standard4"
    modalities = [("audio (best searched model)", "train_audio_best", "baseline_audio", "audio"),
                  ("video (3-D CNN on faces)", "train_video", "baseline_video", ""),
                  ("audio + video (two-stream)", "train_fusion_best", "baseline_fusion", "fusion")]
    rows, headline = [], []
    for labels in (label_set, other):
        how = "not run" if labels == label_set else f"run `dvc exp run -S labels.set={labels}`"
        classes = "3" if labels == "paper3" else "4"
        for name, stage, reference, study in modalities:
            cell = runs.find(stage, how, {"labels.set": labels, **augment})
            ref = runs.find(reference, how, tags={"class_set": labels})
            if labels == label_set:
                headline.append((name.split(" (")[0], cell, ref))
            rows.append([name, f"`{labels}`", cell.text(), ref.text(),
                         f"{STUDY[study + classes]:.2f}" if study + classes in STUDY else "—"])
    efficiency = _efficiency(runs)
    pretrained = efficiency.get("fractions", {}).get("1.0", {}).get("pretrained")
    rows.append(["audio + video, sync pre-trained", f"`{label_set}`",
                 _cell_text(pretrained, efficiency["run"]) if pretrained else "— (train_fusion_pretrained not run)",
                 "—", "—"])
    lines += _table(["model", "classes", "ours", "reference (logistic regression)", "study (WA %)"], rows)
    _modalities_figure(headline, figures / "modalities.png")
    lines += ["", f"![modalities]({figures.name}/modalities.png)", ""]

    lines += ["## 4. Label efficiency: fusion from scratch vs from sync pre-trained encoders (test UA)", ""]
    if efficiency:
        rows = [[f"{float(f):.0%} ({c['scratch']['labels']} clips)", _cell_text(c["scratch"], efficiency["run"]),
                 _cell_text(c["pretrained"], efficiency["run"]), f"{c['gain_ua']:+.3f}", c["verdict"]]
                for f, c in efficiency["fractions"].items()]
        lines += _table(["labels", "scratch", "pre-trained", "gain", "verdict"], rows)
        _efficiency_figure(efficiency, figures / "label_efficiency.png")
        lines += ["", f"![label efficiency]({figures.name}/label_efficiency.png)"]
    else:
        lines += ["— (train_fusion_pretrained not run: `dvc repro train_fusion_pretrained`)"]
    lines += [""]

    lines += ["## 5. Protocol: the study's random split vs speaker-independent (same model and data, test UA)", ""]
    lines += _table(["split", "ours"], [
        ["speaker-independent (`fixed`)", runs.find("train_audio@cnn-full-raw", "not run",
                                                   tags={"split_scheme": "fixed", "split_fold": "0"}).text()],
        ["random, speaker-dependent (the study's)", runs.find(
            "train_audio_random", "not run: `dvc repro train_audio_random`", tags={"split_scheme": "random", "split_fold": "0"}).text()]])
    lines += ["", "Same model, params, seed and audio variant (`train_audio@cnn-full-raw` and `train_audio_random`); "
              "the random split puts every speaker in training, validation and test. What it adds is what speaker "
              "leakage is worth here (one seed each).", ""]

    lines += ["## 6. Leave-one-session-out (5 folds, the best audio and fusion models, test UA)", ""]
    rows = []
    for stage, name in (("train_audio_best", "audio (best searched)"), ("train_fusion_best", "audio + video")):
        folds = [runs.find(stage, f"run `dvc exp run -S split.scheme=loso -S train.fold={k}`",
                           tags={"split_scheme": "loso", "split_fold": str(k)}) for k in range(5)]
        values = [c.value() for c in folds if c.value() is not None]
        summary = f"{sum(values) / len(values):.3f} over {len(values)} fold(s)" if values else "—"
        rows.append([name, *(c.text() for c in folds), summary])
    lines += _table(["model", *(f"fold {k} (test Session {k + 1})" for k in range(5)), "mean"], rows)
    lines += ["", "Off in the quick default: each fold re-runs the split, the searches and the trainings "
              "(about a default pipeline's time per fold).", ""]

    lines += ["## 7. The search: best params found vs the hand-set ones (validation UA, the objective)", ""]
    rows = []
    for family, result in tune.items():
        hand_set = result.get("hand_set_value_val_ua")
        rows.append([family, f"{hand_set:.3f}" if hand_set is not None else "— (the space cannot express it)",
                     f"{result['best_value_val_ua']:.3f} (trial {result['best_trial']})",
                     ", ".join(f"`{k}`={_short(v)}" for k, v in result["best_params"].items()),
                     f"`{result['mlflow_parent_run_id'][:8]}`"])
    lines += _table(["search", "hand-set", "best found", "best params", "MLflow parent run"], rows) if rows else \
        ["— (no search ran: `dvc repro tune_audio tune_fusion`)"]
    lines += [""]
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell_text(cell: dict, run_id: str) -> str:
    ua = cell["test_ua"]
    spread = f" ± {ua['sd']:.3f}" if ua.get("sd") is not None else ""
    return f"{ua['mean']:.3f}{spread} (run `{run_id[:8]}`)"


def _efficiency(runs: Runs) -> dict:
    """The label-efficiency stage's figures, from its run's `efficiency.json` artifact-free metrics file."""
    figure = runs.find("train_fusion_pretrained", "not run")
    if figure.run is None:
        return {}
    path = Path("reports/metrics/train_fusion_pretrained.json")
    if not path.exists():
        return {}
    summary = json.loads(path.read_text())
    if summary.get("mlflow_run_id") != figure.run.info.run_id:
        return {}
    return {**summary, "run": figure.run.info.run_id}


def _modalities_figure(rows: list[tuple[str, Figure, Figure]], path: Path) -> None:
    """Table 3 as bars: each modality's model (mean ± sd over seeds) beside its linear reference; a gap stays empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = range(len(rows))
    for offset, index, label in ((-0.2, 1, "deep model"), (0.2, 2, "logistic regression")):
        values = [r[index].value() for r in rows]
        ax.bar([i + offset for i in x], [v if v is not None else 0 for v in values], width=0.4, label=label,
               yerr=[r[index].sd() or 0 for r in rows], capsize=3)
    ax.set_xticks(list(x), [r[0] for r in rows])
    ax.set_ylim(0, 1)
    ax.set_ylabel("test UA")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _efficiency_figure(efficiency: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fractions = [float(f) for f in efficiency["fractions"]]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for arm in ("scratch", "pretrained"):
        mean = [c[arm]["test_ua"]["mean"] for c in efficiency["fractions"].values()]
        sd = [c[arm]["test_ua"]["sd"] or 0 for c in efficiency["fractions"].values()]
        ax.errorbar(fractions, mean, yerr=sd, marker="o", capsize=3, label=arm)
    ax.set_xscale("log")
    ax.set_xticks(fractions, [f"{f:.0%}" for f in fractions])
    ax.set_xlabel("share of training labels")
    ax.set_ylabel("test UA (mean ± sd over seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
