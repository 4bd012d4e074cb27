"""`report`: reports/results.md, the study's tables filled from this tracking store.

A view of the store: every cell is a run of it, the study's cells included once `make study` has
run them; a gap names the command that fills it. DVC renders it again when a default stage writes a
new run (its details.json, a dep, names the run), and `make study` renders it after the study's runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", type=Path, required=True, help="reports/corpus.json")
    p.add_argument("--tune", type=Path, action="append", default=[], help="reports/tune/<family>.json")
    p.add_argument("--study-tune", type=Path, nargs="*",
                   default=[Path("reports/tune/study-audio.json"), Path("reports/tune/study-fusion.json")],
                   help="the study's searches (study/dvc.yaml), when they have run")
    p.add_argument("--nested-tune", type=Path, nargs="*",
                   help="the searches inside each leave-one-session-out fold, when they have run (default: "
                        "reports/tune/loso-audio-<fold>.json for each fold of study.search.loso.folds)")
    p.add_argument("--label-efficiency", type=Path, default=Path("reports/label_efficiency.json"),
                   help="the study's label-efficiency summary, when it has run")
    p.add_argument("--explanation", type=Path, default=Path("reports/details/explain/explain.json"),
                   help="the explain stage's numbers, when it has run")
    p.add_argument("--out", type=Path, required=True, help="the report (reports/results.md)")
    p.add_argument("--figures", type=Path, required=True, help="folder for its figures")


def run(args: argparse.Namespace, params: Params) -> None:
    from avemo.handover import CorpusSummary, Explanation, LabelEfficiency, SearchRecord, SearchSummary
    from avemo.report import build_report
    from avemo.stages.show import console

    choices = [path for path in [*args.tune, *args.study_tune] if path.exists()]
    tune = {path.stem: SearchSummary.read(path) for path in choices}
    # a search's record (history, importances, rank correlations) lies in its figures folder, named after its
    # choice file: reports/tune/<stem>/search.json
    records = {path.stem: SearchRecord.read(record) for path in choices
               if (record := path.with_suffix("") / "search.json").exists()}
    nested_paths = args.nested_tune if args.nested_tune is not None else [
        Path(f"reports/tune/loso-audio-{k}.json") for k in params.study.search.loso.folds]
    nested = {int(path.stem.rsplit("-", 1)[1]): SearchSummary.read(path) for path in nested_paths if path.exists()}
    efficiency = LabelEfficiency.read(args.label_efficiency) if args.label_efficiency.exists() else None
    explanation = Explanation.read(args.explanation) if args.explanation.exists() else None
    text = build_report(args.out, args.figures, params, CorpusSummary.read(args.corpus), tune, efficiency,
                        explanation, records=records, nested=nested)
    gaps = text.count("(gap:")
    console.print(f"report: {args.out} (figures in {args.figures}); "
                  + (f"{gaps} cell(s) wait for their runs: `make study` fills them" if gaps else "no gap"), markup=False)

