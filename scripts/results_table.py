"""README's results table, from reports/metrics/ (`python scripts/results_table.py`): mean +- sd over seeds."""

import json
from pathlib import Path

ROWS = [("baseline_audio", "logistic regression on log-mel statistics (reference)"),
        ("train_audio-cnn-full-raw", "audio CNN, hand-set params (one seed)"),
        ("train_audio_best", "audio, best searched model"),
        ("baseline_video", "logistic regression on face statistics (reference)"),
        ("train_video", "video 3-D CNN"),
        ("baseline_fusion", "logistic regression on both (reference)"),
        ("train_fusion_best", "audio + video two-stream, best searched")]


def cell(figure: dict) -> str:
    return f"{figure['mean']:.3f}" + (f" ± {figure['sd']:.3f}" if figure.get("sd") is not None else "")


print("| stage | what | seeds | test UA | test WA | macro F1 | MLflow run |")
print("|---|---|---|---|---|---|---|")
for stage, what in ROWS:
    path = Path("reports/metrics") / f"{stage}.json"
    if not path.exists():
        print(f"| `{stage}` | {what} | | not run | | | |")
        continue
    m = json.loads(path.read_text())
    seeds = ", ".join(map(str, m["seeds"])) or "—"
    print(f"| `{stage}` | {what} | {seeds} | {cell(m['test_ua'])} | {cell(m['test_wa'])} | {cell(m['test_f1_macro'])} "
          f"| `{m['mlflow_run_id'][:8]}` |")
