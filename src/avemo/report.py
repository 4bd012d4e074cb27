"""The results report: the study's tables, filled from this tracking store (`reports/results.md`).

Every cell is the newest finished run of one DVC stage in the store (the stage tag names it), shown
as its mean over seeds with the 95 % interval over test items and seeds; every comparison is a
paired difference on the same test items (an unpaired one where the test sets differ, said so),
with its interval and the verdict the interval earns (stats.py), naming both runs; two runs are
paired only when their class sets, splits and the md5s of the inputs they share agree, and a pair
that is not one is shown refused, with what differs. A cell whose run is not in the store
shows the gap and the exact command that fills it. The study's own numbers (PAPER.md) and the
field's published leave-one-session-out figures stand in their own columns, each with its protocol.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import yaml  # noqa: E402
from mlflow.entities import Run  # noqa: E402

from avemo.handover import CorpusSummary, Explanation, LabelEfficiency, SearchRecord, SearchSummary  # noqa: E402
from avemo.params import Params  # noqa: E402
from avemo.references import compared_references, project_reference  # noqa: E402
from avemo.stats import (  # noqa: E402
    METHOD,
    Comparison,
    Interval,
    NotAPair,
    Predictions,
    compare,
    compare_folds,
    folds_figure,
)
from avemo.tracking import git_commit, tracking_uri  # noqa: E402

#: The study's Table 3 (validation accuracy, %, random 80/20 split after over-sampling, real IEMOCAP).
STUDY = {"cnn": 52.23, "cnn_lstm": 39.77, "cnn_rnn": 54.00, "audio4": 54.00, "fusion4": 51.94, "audio3": 70.25,
         "fusion3": 71.75, "cnn_aug": 51.90}
#: Published audio-only figures on real IEMOCAP, 4 classes (5,531 utterances), 5-fold leave-one-session-out.
FIELD_LOSO = (("emotion2vec + linear head (Ma et al. 2023)", "WA 71.8"), ("WavLM-large (SUPERB / EmoBox)", "WA 70.0"),
              ("wav2vec2-base (SUPERB / EmoBox)", "WA 63.4"), ("spectrogram CNN-LSTM (Satt et al. 2017)", "WA 67, UA 62"))
VARIANT_NAMES = {"full-raw": "DS I", "full-clean": "DS II", "clip3s-raw": "DS III", "clip3s-clean": "DS IV"}
#: The deep families' comparisons with the references (references.REFERENCES): the project's own, then the field's.
REFERENCE_ARMS = {family: [(project_reference(family).name, "reference"), *((r.name, r.label)
                                                                           for r in compared_references(family))]
                  for family in ("audio", "fusion")}


def default_stages(pipeline: Path) -> set[str]:
    """The stage names of the default pipeline as DVC names them (a foreach stage's items as `name@item`): a gap's
    hint says `dvc repro <stage>` for these and `dvc repro study/dvc.yaml:<stage>` for the study's."""
    names = set()
    for name, stage in yaml.safe_load(pipeline.read_text())["stages"].items():
        items = stage.get("foreach")
        names |= {f"{name}@{item}" for item in items} if isinstance(items, (list, dict)) else {name}
    return names


class Store:
    """The finished top-level runs of the store, newest first, by DVC stage: found by their `dvc_stage` tag in any
    experiment, so a new stage's runs are found wherever it logs them (a registration's runs, which carry the
    stage of the run they register, are not that stage's)."""

    def __init__(self, uri: str | None = None, pipeline: Path = Path("dvc.yaml")):
        self.uri = uri or tracking_uri()
        self.default_stages = default_stages(pipeline)
        self.client = mlflow.MlflowClient(self.uri)
        ids = [e.experiment_id for e in self.client.search_experiments()]
        self.by_stage: dict[str, Run] = {}
        for run in self._finished(ids):
            stage, tags = run.data.tags.get("dvc_stage"), run.data.tags
            if stage and "mlflow.parentRunId" not in tags and "training_run_id" not in tags:  # not a registration's
                self.by_stage.setdefault(stage, run)  # record of the training run (it names that run instead)
        self._answers: dict[str, Predictions] = {}

    def _finished(self, ids: list[str]):
        """Every finished run with a DVC stage tag in these experiments, newest first, page by page."""
        token = None
        while ids:
            page = self.client.search_runs(ids, "attributes.status = 'FINISHED' and tags.dvc_stage LIKE '%'",
                                           max_results=5000, order_by=["attributes.start_time DESC"], page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def cell(self, stage: str) -> "Cell":
        return Cell(stage, self.by_stage.get(stage), self)

    def answers(self, run: Run) -> Predictions:
        """The run's test predictions (its `predictions.json` artifact)."""
        if run.info.run_id not in self._answers:
            path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="predictions.json",
                                                       tracking_uri=self.uri)
            self._answers[run.info.run_id] = Predictions.from_dict(json.loads(Path(path).read_text()))
        return self._answers[run.info.run_id]

    def trial_runs(self, parent: Run | None, study: str | None) -> dict[int, Run]:
        """A search's trial runs (the child runs of its parent run, stages/tune_worker.py), by trial number; none when
        the parent run is not that study's."""
        if parent is None or study is None or parent.data.tags.get("optuna.study") != study:
            return {}
        runs = self.client.search_runs([parent.info.experiment_id],
                                       f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=10000,
                                       order_by=["attributes.start_time DESC"])
        by_trial: dict[int, Run] = {}
        for run in runs:
            if run.data.tags.get("optuna.study") == study and (number := run.data.tags.get("optuna.trial")):
                by_trial.setdefault(int(number), run)
        return by_trial


@dataclass
class Cell:
    """One stage's figure (mean over seeds with its interval), or the gap and the command that fills it."""

    stage: str
    run: Run | None
    store: Store

    @property
    def command(self) -> str:
        default = self.stage in self.store.default_stages
        return f"`dvc repro {self.stage}`" if default else f"`dvc repro study/dvc.yaml:{self.stage}`"

    @cached_property
    def figure(self) -> Interval | None:
        if self.run is None:
            return None
        m = self.run.data.metrics
        if "test_ua_mean" not in m:
            return None
        return Interval(m["test_ua_mean"], m.get("test_ua_low", math.nan), m.get("test_ua_high", math.nan))

    def text(self) -> str:
        if self.run is None:
            return f"— (gap: {self.command}, or `make study`)"
        if self.figure is None:
            return f"— (run `{self.run.info.run_id[:8]}` has no test UA)"
        return f"{self.figure.text()} `{self.run.info.run_id[:8]}`"

    def answers(self) -> Predictions | None:
        return None if self.run is None else self.store.answers(self.run)


def verdict_text(c: "Comparison | Refused | None", what: str = "", unpaired: bool = False) -> str:
    if c is None:
        return "—"
    if isinstance(c, Refused):
        return f"{what}— (not a pair: {c.reason})"
    d = c.difference
    text = f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]: **{c.verdict}**"
    if unpaired:
        text += " (unpaired: other test items)"
    if c.note:
        text += f"; {c.note}"
    return f"{what}{text}"


@dataclass(frozen=True)
class Refused:
    """Two runs that a comparison cannot put side by side, and why."""

    reason: str


#: Tags two paired runs must agree on (besides the md5 of every input file both read).
PAIRED_TAGS = ("class_set", "split_scheme", "split_fold")


def pairing_problem(a: Run, b: Run, paired: bool) -> str | None:
    """What makes two runs' test answers not a pair: another class set, another split (paired only), or another
    version of an input file that both read (the `data.<path>` md5 tags)."""
    ta, tb = a.data.tags, b.data.tags
    keys = PAIRED_TAGS if paired else PAIRED_TAGS[:1]
    keys += tuple(sorted(k for k in ta if k.startswith("data.") and k in tb))
    for key in keys:
        if key in ta and key in tb and ta[key] != tb[key]:
            return f"`{key}` is {ta[key][:12]} in `{a.info.run_id[:8]}`, {tb[key][:12]} in `{b.info.run_id[:8]}`"
    return None


def vs(a: Cell, b: Cell, paired: bool = True) -> "Comparison | Refused | None":
    """a minus b in test UA, when both runs exist and are a pair; the comparison's note names both runs."""
    if a.run is None or b.run is None:
        return None
    problem = pairing_problem(a.run, b.run, paired)
    if problem:
        return Refused(problem)
    try:
        c = compare(a.answers(), b.answers(), paired=paired)
    except NotAPair as exc:
        return Refused(str(exc))
    runs = f"`{a.run.info.run_id[:8]}` - `{b.run.info.run_id[:8]}`"
    return Comparison(c.difference, c.verdict, c.margin, f"{runs}; {c.note}" if c.note else runs, c.per_seed, c.parts)


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _run_id(run: Run | None) -> str:
    return f"`{run.info.run_id[:8]}`" if run else "— (not in this store)"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(*header), _row(*["---"] * len(header)), *(_row(*r) for r in rows)]


def build_report(out: Path, figures: Path, params: Params, corpus: CorpusSummary, tune: dict[str, SearchSummary],
                 label_efficiency: LabelEfficiency | None = None, explanation: Explanation | None = None,
                 uri: str | None = None, records: dict[str, SearchRecord] | None = None,
                 nested: dict[int, SearchSummary] | None = None) -> str:
    """Write results.md (and its figures); return the text. `tune`: each search's choice file by name, `records`
    their records (tuning/history.py), `nested`: the choice of each fold's own search by fold."""
    store = Store(uri)
    lines = header(params, corpus)
    lines += audio_grid(store, params)
    lines += augmentation(store)
    lines += modalities(store, params, figures)
    lines += efficiency(store, label_efficiency)
    lines += protocol(store)
    lines += loso(store, params, nested or {})
    lines += search(store, tune, records or {})
    lines += explained(store, explanation, params)
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def header(params: Params, corpus: CorpusSummary) -> list[str]:
    return [f"# Results on `{params.corpus.root}`", "",
            f"Corpus: {corpus.utterances} utterances, {corpus.labelled} in the class set "
            f"`{params.labels.set}` ({', '.join(corpus.classes)}), {corpus.hours} h. Split: "
            f"speaker-independent, test Session {params.split.test_session}, validation Session "
            f"{params.split.val_session} (leave-one-session-out in section 6). Code: git `{git_commit()[:10]}`; "
            "every cell names its MLflow run (the tags hold the md5 of each input file, and the versions and "
            "threads that made it).", "",
            "Figures are test UA (unweighted accuracy: mean recall over the classes), the mean over the seeds "
            f"{list(params.train.seeds)}, with its 95 % interval `[low, high]` over the test items and the seeds, "
            "each counted once (docs/statistics.md: " + METHOD + "). A comparison is the paired difference on the "
            "same test items and seeds, with its interval and the two runs it compares; its verdict comes from the "
            "interval alone: **better** or **worse** when it excludes 0, **no difference shown** otherwise. Two runs "
            "are compared only when their class sets, splits and shared inputs (md5) agree. With 3 seeds that "
            "disagree the interval is wide (t tails on 2 degrees of freedom): an open verdict is what 3 seeds can "
            "say, measured in docs/statistics.md. **The study's column** is its single-run validation accuracy (WA, %) "
            "on a random 80/20 split of real IEMOCAP made after over-sampling (copies of one clip on both sides): "
            "neither speaker-independent nor from this corpus, shown for orientation only.", ""]


def audio_grid(store: Store, params: Params) -> list[str]:
    lines = ["## 1. Audio models x dataset variants (test UA)", ""]
    models, variants = list(params.study.models), list(params.study.grid_variants)
    cells = {(m, v): store.cell(f"train_audio@{m}-{v}") for m in models for v in variants}
    rows = [[m, *(cells[m, v].text() for v in variants), f"{STUDY[m]:.2f}" if m in STUDY else "—"] for m in models]
    lines += _table(["model", *(f"{VARIANT_NAMES[v]} `{v}`" for v in variants), "study (WA %, best variant)"], rows)
    lines += ["", "What the variants change, per model (difference in test UA):", ""]
    contrasts = (("full-clean", "full-raw", True), ("clip3s-clean", "clip3s-raw", True),
                 ("clip3s-raw", "full-raw", False))

    def contrast(m: str, a: str, b: str, paired: bool) -> str:
        if (m, a) not in cells or (m, b) not in cells:
            return "— (not in `study.grid_variants`)"
        return verdict_text(vs(cells[m, a], cells[m, b], paired=paired), unpaired=not paired)

    rows = [[m, *(contrast(m, *c) for c in contrasts)] for m in models]
    lines += _table(["model", "clean-up, full utterances (DS II - DS I)", "clean-up, 3 s clips (DS IV - DS III)",
                     "3 s clips vs full utterances (DS III - DS I)"], rows)
    return lines + ["", "The study found full utterances without clean-up (DS I) best; the rows above test that on "
                        "this corpus. A clip-level figure counts each 3 s clip as a test item.", ""]


def augmentation(store: Store) -> list[str]:
    off, on = store.cell("train_audio_best"), store.cell("train_audio_aug")
    lines = ["## 2. Augmentation, the kept audio params (test UA)", "",
             "The same params and seeds with only `train.augment.enabled` changed (the study's 10-row frequency "
             "shift and ±10° rotation, on the training split only).", ""]
    lines += _table(["augmentation", "ours", "study (CNN, WA %)"], [
        ["off (`train_audio_best`)", off.text(), f"{STUDY['cnn']:.2f}"],
        ["on (`train_audio_aug`)", on.text(), f"{STUDY['cnn_aug']:.2f}"],
        ["on - off", verdict_text(vs(on, off)), "-0.33 (one run)"]])
    return lines + [""]


def modalities(store: Store, params: Params, figures: Path) -> list[str]:
    lines = ["## 3. Modalities, with a linear reference per modality (test UA)", "",
             "Reference: logistic regression on summary statistics of the same clips (log-mel band means and sds; "
             "face-pixel means and sds over time), same split. A deep model earns its cost only above it.", ""]
    three = params.study.three_classes
    sets = [(params.labels.set, "", "baseline@", "4"), (three, "_3class", "baseline_3class@", "3")]
    rows, headline = [], []
    for label_set, suffix, reference, n in sets:
        audio, video = store.cell(f"train_audio{'_best' if not suffix else suffix}"), store.cell(f"train_video{suffix}")
        fusion = store.cell(f"train_fusion{'_best' if not suffix else suffix}")
        for name, cell, family, study_key in (("audio", audio, "audio", "audio"), ("video", video, "video", ""),
                                              ("audio + video", fusion, "fusion", "fusion")):
            ref = store.cell(f"{reference}{family}")
            if not suffix:
                headline.append((name, cell, ref))
            rows.append([name, f"`{label_set}`", cell.text(), ref.text(), verdict_text(vs(cell, ref)),
                         f"{STUDY[study_key + n]:.2f}" if study_key + n in STUDY else "—"])
        for name, cell, family in (("audio", audio, "audio"), ("audio + video", fusion, "fusion")):
            for other in compared_references(family):
                ref = store.cell(f"{reference}{other.name}")
                rows.append([f"{name} vs {other.label}", f"`{label_set}`", cell.text(), ref.text(),
                             verdict_text(vs(cell, ref)), ""])
        best_branch = max((audio, video), key=lambda c: c.figure.estimate if c.figure else -1)
        rows.append([f"audio + video vs its better branch ({best_branch.stage})", f"`{label_set}`", "", "",
                     verdict_text(vs(fusion, best_branch)), ""])
    lines += _table(["model", "classes", "ours", "reference (logistic regression)", "ours - reference", "study (WA %)"],
                    rows)
    _modalities_figure(headline, figures / "modalities.png")
    return lines + ["", f"![modalities]({figures.name}/modalities.png)", ""]


def efficiency(store: Store, summary: LabelEfficiency | None) -> list[str]:
    lines = ["## 4. Label efficiency: fusion from scratch vs from sync pre-trained encoders (test UA)", ""]
    run = store.by_stage.get("train_fusion_pretrained")
    if run is None or not summary or summary.mlflow_run_id != run.info.run_id:
        return lines + ["— (gap: `dvc repro study/dvc.yaml:train_fusion_pretrained`, or `make study`)", ""]
    rows = []
    for fraction, c in summary.fractions.items():
        rows.append([f"{float(fraction):.0%} ({c.scratch.labels} clips)", Interval(**c.scratch.ua).text(),
                     Interval(**c.pretrained.ua).text(), verdict_text(Comparison.from_dict(c.gain))])
    lines += _table(["labels", "scratch", "pre-trained", "pre-trained - scratch"], rows)
    return lines + ["", f"Run `{run.info.run_id[:8]}`; the curve: `dvc plots show` "
                        "(reports/details/train_fusion_pretrained/ua_by_fraction.csv).", ""]


def protocol(store: Store) -> list[str]:
    fixed, random = store.cell("train_audio_best"), store.cell("train_audio_random")
    lines = ["## 5. Protocol: the study's random split vs speaker-independent (same params and seeds, test UA)", ""]
    lines += _table(["split", "ours"], [["speaker-independent (test Session 5)", fixed.text()],
                                        ["random, speaker-dependent (the study's)", random.text()],
                                        ["random - speaker-independent", verdict_text(vs(random, fixed, paired=False),
                                                                                      unpaired=True)]])
    return lines + ["", "The random split puts every speaker in training, validation and test; what it adds is what "
                        "speaker leakage is worth here. Its test items are other clips, so the difference is unpaired.",
                    ""]


#: the leave-one-session-out row of the audio model searched inside each fold (study/dvc.yaml tune_audio_loso)
NESTED = "audio, searched in its fold"
#: the final-fit rows (study/dvc.yaml train_audio_joined_loso, baseline_refit_loso): the audio network joined with
#: eGeMAPS + logistic regression (avemo/joined.py), and the field's references, each fit on train + val
JOINED, REFIT = "audio joined with eGeMAPS + logistic regression", ", fit on train + val"
REFIT_REFERENCES = [(r.name, r.label) for r in compared_references("audio")]


def loso(store: Store, params: Params, nested: dict[int, SearchSummary]) -> list[str]:
    """Per fold, the mean over the five folds and a t-interval over the folds; fold 4 is the fixed split."""
    folds = list(params.study.loso_folds)
    lines = ["## 6. Leave-one-session-out (5 folds, test UA): the field's protocol", "",
             "Fold k tests Session k+1 and validates on the session before it. The default search never shapes a "
             "fold: folds 0-3 train the hand-set recipe of params.yaml, not its choice (that search validates on "
             f"Session 4, fold 3's test session). The row *{NESTED}* is the nested protocol: each fold's own audio "
             "search (`tune_audio_loso@k`) over that fold's training sessions, ranked and confirmed on its validation "
             "session, its choice trained over the seeds and tested once on the fold's test session, which chose "
             "nothing. The hand-set recipe was itself set in earlier rounds by looking at this "
             "corpus's fixed split (validation Session 4, test Session 5: docs/recipe.md), so on the embedded corpus "
             "no fold is wholly free of it; on real IEMOCAP it was set on none of its sessions. Fold 4 (test Session "
             "5, validate Session 4) is the fixed split itself: its cells are the headline stages' runs. The rows "
             f"*{REFIT.removeprefix(', ')}* are final fits: once every choice is made, the model learns from the "
             "validation session too (`train.refit`), so four sessions' speakers instead of three; the "
             f"*{JOINED}* multiplies the hand-set network's class probabilities with those of the field's reference "
             "fit on the same items (a product of experts, no weight fitted), and is compared with the field's "
             "references fit on the same sessions. Mean over the folds with a 95 % t-interval over the folds "
             "(sessions are the unit); deep minus reference paired by fold.", ""]
    rows, per_model = [], {}
    references = {"audio": REFERENCE_ARMS["audio"], "audio + video": REFERENCE_ARMS["fusion"]}
    columns = [*folds, 4]  # fold 4, the fixed split, is every row's last column
    nested_stages = [f"train_audio_loso_searched@{k}" for k in columns]  # outside study.search.loso.folds: a gap
    for family, train_stage, headline in (("audio", "train_audio_loso@", "train_audio_best"),
                                          ("audio + video", "train_fusion_loso@", "train_fusion_best")):
        arms = [(family, [f"{train_stage}{k}" for k in folds] + [headline])]
        if family == "audio":
            arms.append((NESTED, nested_stages))
        arms += [(f"{family} {label}", [f"baseline_loso@{key}-{k}" for k in folds] + [f"baseline@{key}"])
                 for key, label in references[family]]
        if family == "audio":
            arms.append((JOINED + REFIT, [f"train_audio_joined_loso@{k}" for k in columns]))
            arms += [(f"audio {label}{REFIT}", [f"baseline_refit_loso@{key}-{k}" for k in columns])
                     for key, label in REFIT_REFERENCES]
        for label, stages in arms:
            cells = [store.cell(stage) for stage in stages]
            values = [c.figure.estimate for c in cells if c.figure]
            mean = folds_figure(values).text() if len(values) == len(cells) else f"— ({len(values)} of {len(cells)} folds run)"
            per_model[label] = values if len(values) == len(cells) else None
            rows.append([label, *(c.text() for c in cells), mean])
    lines += _table(["model", *(f"fold {k} (Session {k + 1})" for k in columns), "mean over folds"], rows)
    lines += [""]
    for family in ("audio", "audio + video"):
        deep = per_model.get(family)
        for _, label in references[family]:
            ref = per_model.get(f"{family} {label}")
            if deep and ref:
                lines.append(f"- {family} minus {'its reference' if label == 'reference' else label}, paired by "
                             f"fold: {verdict_text(compare_folds(deep, ref))}")
    if joined := per_model.get(JOINED + REFIT):
        against = [(f"{label}{REFIT}", per_model.get(f"audio {label}{REFIT}")) for _, label in REFIT_REFERENCES]
        against += [("the audio network fit on train (what the join and the fourth session bought together)",
                     per_model.get("audio"))]
        lines += [f"- {JOINED}{REFIT}, minus {name}, paired by fold: {verdict_text(compare_folds(joined, other))}"
                  for name, other in against if other]
    if searched := per_model.get(NESTED):
        against = [("the hand-set recipe", per_model.get("audio"))] + [
            (label if label != "reference" else "the reference", per_model.get(f"audio {label}"))
            for _, label in references["audio"]]
        lines += [f"- {NESTED} minus {name}, paired by fold: {verdict_text(compare_folds(searched, other))}"
                  for name, other in against if other]
    elif params.study.search.loso.folds:
        lines.append(f"- {NESTED}: — (gap: `dvc repro study/dvc.yaml:train_audio_loso_searched`, or `make study`)")
    nested = {k: r for k, r in nested.items() if r.stage in store.by_stage}  # a fresh clone: files, no runs
    if nested:
        lines += ["", "What each fold's own search chose (its validation session only; the confirmation is the "
                      "search's rule of section 7):", ""]
        lines += _table(["fold", "trials", "hand-set (selection half)", "best found", "best - hand-set, confirmed",
                         "trained"], [nested_row(k, nested[k]) for k in sorted(nested)])
    lines += ["", "Published figures on real IEMOCAP under this protocol (4 classes, 5,531 utterances, mean over the "
                  "5 folds; audio only; not this corpus):", ""]
    lines += _table(["model", "figure"], [list(f) for f in FIELD_LOSO])
    return lines + [""]


def nested_row(fold: int, r: SearchSummary) -> list[str]:
    return [str(fold), trial_counts(r), f"{r.hand_set.val_ua:.3f}" if r.hand_set else "—",
            f"{r.best.val_ua:.3f} (trial {r.best.trial})",
            verdict_text(Comparison.from_dict(r.confirmation.comparison)) if r.confirmation else "— (hand-set best)",
            "hand-set" if r.hand_set and r.chosen.trial == r.hand_set.trial else f"trial {r.chosen.trial}"]


def trial_counts(r: SearchSummary) -> str:
    return f"{r.trials.complete} complete, {r.trials.pruned} pruned, {r.trials.fail} failed"


def search(store: Store, tune: dict[str, SearchSummary], records: dict[str, SearchRecord]) -> list[str]:
    lines = ["## 7. The search: what it tried and what it chose (validation UA, the objective)", "",
             "Trials are ranked on a selection half of the validation utterances (per speaker and class). What chose "
             "the best trial never judges it: its configuration and the hand-set one are trained again with fresh "
             "seeds (`tune.confirm_seeds`) and compared on the other half, which ranked no trial; the final models "
             "train the best trial only if that comparison says **better**.", ""]
    # a study search counts once its run is in this store (a fresh clone has its committed file, not its run)
    waiting = [f for f, (stage, *_) in SEARCHED.items() if f not in tune or stage not in store.by_stage]
    tune = {f: r for f, r in tune.items() if f not in waiting}
    gaps = [f"{f}: — (gap: `dvc repro study/dvc.yaml:{SEARCHED[f][0]}`, or `make study`)" for f in waiting]
    if not tune:
        return lines + ["— (gap: `dvc repro tune_audio tune_fusion`)", *gaps, ""]
    rows = []
    for family, r in tune.items():
        confirmation = r.confirmation
        done = (f"{trial_counts(r)} of {r.budget.trials} x {r.budget.epochs_per_trial} epochs"
                + (" (time limit reached)" if r.time_limit_reached else "")
                + ("" if r.searched_enough else " — **searched too little to choose**"))
        confirmed = (verdict_text(Comparison.from_dict(confirmation.comparison)) +
                     f" ({len(confirmation.items)} items, seeds {confirmation.seeds})"
                     if confirmation else "— (the hand-set params ranked best: nothing to confirm)")
        rows.append([family, done, f"{r.hand_set.val_ua:.3f}" if r.hand_set else "— (the space cannot express it)",
                     f"{r.best.val_ua:.3f} (trial {r.best.trial}, {r.selection_items or '?'} items)",
                     confirmed, r.chosen.why, _run_id(store.by_stage.get(r.stage))])
    lines += _table(["search", "trials", "hand-set (selection half)", "best found (selection half)",
                     "best - hand-set, fresh seeds, confirmation half", "the final models train", "MLflow parent run"],
                    rows)
    lines += ["", *(f"{g}\n" for g in gaps)]
    for family, r in tune.items():
        lines += search_details(store, family, r, records.get(family))
    return lines


#: The study's searches (study/dvc.yaml): the search stage, the stage that trains its choice over the seeds, and the
#: stage that trains the hand-set recipe beside it with the same seeds, for the test comparison.
SEARCHED = {"study-audio": ("tune_audio_study", "train_audio_searched", "train_audio_handset"),
            "study-fusion": ("tune_fusion_study", "train_fusion_searched", "train_fusion_handset")}


def search_details(store: Store, family: str, r: SearchSummary, record: SearchRecord | None) -> list[str]:
    """One search: what it searched, how it went (history, importances, whether early epochs rank as the last),
    its accuracy-size front and compact pick (with each front trial's measured latency where its MLflow run has
    it), and (a study search) what its choice bought on test over the hand-set recipe."""
    lines = [f"**{family}: the space.** " + ("; ".join(f"`{k}` {_space_text(v)}" for k, v in r.space.items())
                                            if r.space else "— (not recorded by this run)"), ""]
    parent = store.by_stage.get(r.stage)  # the search's MLflow parent run
    if record:
        lines += search_history(family, record, parent)
    if r.front:
        trials = store.trial_runs(parent, r.study)

        def latency(trial: int) -> str:
            m = trials[trial].data.metrics if trial in trials else {}
            return f"{m['latency_ms']:.2f} ms" if "latency_ms" in m else "—"

        lines += [f"**{family}: the front** (completed trials no other beats on both validation UA and parameter "
                  "count, smallest first; each trial's selection-half answers minus the best's, one seed each, so the "
                  "interval counts the items only). The front and the compact pick are on parameter count, the same "
                  "on every run and machine; the latency beside them is a measurement of the machine that ran the "
                  "search (one 3 s clip, its CPU), read from the trial's MLflow run, and moves between runs and "
                  "machines:", ""]
        lines += _table(["trial", "validation UA (selection half)", "parameters", "latency, one 3 s clip (measured)",
                         "minus the best"],
                        [[str(t.trial), f"{t.val_ua:.3f}", f"{t.parameters:,}", latency(t.trial),
                          verdict_text(replace(Comparison.from_dict(t.vs_best), note=""))] for t in r.front])
        if c := r.compact:
            measured = latency(c.trial)
            lines += ["", f"**{family}: the compact pick** is trial {c.trial} ({c.parameters:,} parameters, "
                          f"validation UA {c.val_ua:.3f}" + ("" if measured == "—" else f", {measured} measured")
                      + f"): {c.why}.", ""]
    if family in SEARCHED:
        searched, hand = (store.cell(stage) for stage in SEARCHED[family][1:])
        lines += [f"**{family}: what the search bought on test** (its choice and the hand-set recipe, each trained "
                  "over the seeds, paired on the test items):", ""]
        lines += _table(["arm", "test UA"], [[f"the search's choice (`{searched.stage}`)", searched.text()],
                                             [f"the hand-set recipe (`{hand.stage}`)", hand.text()],
                                             ["choice - hand-set", verdict_text(vs(searched, hand))]])
        lines += [""]
    return lines


def search_history(family: str, record: SearchRecord, parent: Run | None) -> list[str]:
    """The best value as trials were added, the importances, and the rank correlation at the pruner's epoch."""
    grew = ", ".join(f"{b.best_value:.3f} after {b.trials} (trial {b.best_trial})" for b in record.best_after)
    lines = [f"**{family}: the history.** Best validation UA (selection half) as trials were added: {grew}. "
             f"Its time is the `search_seconds` of its MLflow parent run {_run_id(parent)} (a measurement of "
             "the machine, not in this report).", ""]
    if record.importances:
        lines += [f"**{family}: what mattered** (Optuna's fANOVA importances over the completed trials, seed 0): "
                  + ", ".join(f"`{k}` {v:.2f}" for k, v in record.importances.items()) + ".", ""]
    ranking = record.ranking
    judged = next((row for row in ranking.by_epoch if row.epoch == ranking.judged_from_epoch), None)
    if judged and judged.rho is not None:
        lines += [f"**{family}: do early epochs rank as the last?** Spearman's rho between the validation UA at the "
                  f"first epoch the pruner judges (epoch {judged.epoch + 1} of {ranking.epochs}) and at the "
                  f"last, over the {judged.trials} completed trials: {judged.rho:.2f}; by epoch: "
                  + ", ".join(f"{row.epoch + 1}: {row.rho:.2f}" for row in ranking.by_epoch
                              if row.rho is not None) + ".", ""]
    return lines


def _space_text(spec) -> str:
    if isinstance(spec, list):
        return "{" + ", ".join(str(v) for v in spec) + "}"
    return f"[{spec['low']}, {spec['high']}]" + (" (log)" if spec.get("log") else "")


def _modalities_figure(rows: list[tuple[str, Cell, Cell]], path: Path) -> None:
    """Table 3 as bars: each modality's model beside its linear reference, with the 95 % intervals."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = range(len(rows))
    for offset, index, label in ((-0.2, 1, "deep model"), (0.2, 2, "logistic regression")):
        figures = [r[index].figure for r in rows]
        values = [f.estimate if f else 0 for f in figures]
        errors = [[f.estimate - f.low if f else 0 for f in figures], [f.high - f.estimate if f else 0 for f in figures]]
        ax.bar([i + offset for i in x], values, width=0.4, label=label, yerr=errors, capsize=3)
    ax.set_xticks(list(x), [r[0] for r in rows])
    ax.set_ylim(0, 1)
    ax.set_ylabel("test UA (95 % interval)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


METHOD_NAMES = {"occlusion": "occlusion", "integrated_gradients": "integrated gradients", "grad_cam": "Grad-CAM"}


def explained(store: Store, summary: Explanation | None, params: Params) -> list[str]:
    """What the kept models look at, and whether each explanation passed its deletion check (docs/explain.md)."""
    lines = ["## 8. Why a prediction: what the kept models look at, and whether the explanation is faithful", ""]
    runs = summary.mlflow_run_ids if summary else {}
    if not summary or any(store.by_stage.get(stage) is None or store.by_stage[stage].info.run_id != runs.get(family)
                          for family, stage in (("audio", "train_audio_best"), ("video", "train_video"),
                                                ("fusion", "train_fusion_best"))):
        return lines + ["— (gap: `dvc repro explain`, which `make repro` runs)", ""]
    lines += [f"On {summary.clips} of the {summary.test_clips} test clips (a class-balanced sample). A method's "
              "deletion check removes its most important units first and random ones second; it passes when the "
              "class probability falls faster, by the lower end of a 95 % interval over the clips above 0.01. "
              "A method that fails is reported, not drawn.", ""]
    rows = []
    for family, explanation in (("audio", summary.audio), ("video", summary.video)):
        for key, check in explanation.faithfulness.items():
            method, unit = key.split("/")
            low, high = check.gain_low, check.gain_high
            rows.append([family, METHOD_NAMES.get(method, method), unit,
                         f"{check.gain:+.3f} [{low:+.3f}, {high:+.3f}]" if low is not None else f"{check.gain:+.3f}",
                         "**passed**" if check.passed else "**failed**: not drawn"])
    lines += _table(["model", "method", "unit", "faster fall than random (AUC gain)", "faithful"], rows)
    top = summary.audio.top_bands
    shares = ", ".join(f"{METHOD_NAMES.get(m, m)} {v:.0%}" for m, v in top.share.items() if v is not None)
    lines += ["", f"**The study's crop question.** The highest {top.fraction:.0%} of the mel bands carry {shares} "
                  f"of the audio model's band importance; removing all of them lowers the probability of the "
                  f"predicted class by {top.drop:.2f} on average (the study cropped them away).", ""]
    fusion = summary.fusion
    per_class = ", ".join(f"{c} {v.audio_share:.0%}" for c, v in fusion.per_class.items()
                          if v.audio_share is not None)
    lines += [f"**Fusion.** The audio branch's share of the decision (two-player Shapley values, a removed modality "
              f"drawn from training clips): {fusion.audio_share:.0%} overall; by class: {per_class}.", ""]
    lines += ["Figures: `reports/details/explain/` (and the `explain/` artifacts of each model's MLflow run): "
              "`audio/bands.png`, `audio/moments.png`, `video/face_regions.png`, `video/frames.png`, "
              "`fusion/modality_shares.png`, and the deletion curves. What they cannot say: docs/explain.md.", ""]
    return lines
