"""README's results table from the default stages' reports/details/ (`python scripts/results_table.py`):
each figure the mean over seeds with its 95 % interval over test items and seeds."""

import json
from pathlib import Path

ROWS = [("baseline-audio", "logistic regression on log-mel statistics (reference)"),
        ("baseline-egemaps", "logistic regression on openSMILE eGeMAPS (the field's reference)"),
        ("baseline-egemaps_svm", "SVM (RBF) on openSMILE eGeMAPS (the field's reference)"),
        ("train_audio_best", "audio, best searched model"),
        ("baseline-video", "logistic regression on face statistics (reference)"),
        ("train_video", "video 3-D CNN"),
        ("baseline-fusion", "logistic regression on both (reference)"),
        ("baseline-egemaps_fusion", "logistic regression on eGeMAPS and face statistics (reference)"),
        ("train_fusion_best", "audio + video two-stream, best searched")]


def cell(figure: dict) -> str:
    return f"{figure['mean']:.3f} [{figure['low']:.3f}, {figure['high']:.3f}]"


print("| stage | what | seeds | test UA | test WA | macro F1 | MLflow run |")
print("|---|---|---|---|---|---|---|")
for stage, what in ROWS:
    path = Path("reports/details") / stage / "details.json"
    if not path.exists():
        print(f"| `{stage}` | {what} | | not run: `dvc repro` | | | |")
        continue
    detail = json.loads(path.read_text())
    test = detail["test"]
    seeds = ", ".join(test["ua"]["per_seed"]) or "-"
    print(f"| `{stage}` | {what} | {seeds} | {cell(test['ua'])} | {cell(test['wa'])} | {cell(test['f1'])} "
          f"| `{detail['mlflow_run_id'][:8]}` |")
