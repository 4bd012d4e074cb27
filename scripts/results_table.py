"""README's results table from the default stages' reports/details/ (`python scripts/results_table.py`):
each figure the mean over seeds with its 95 % interval over test items and seeds."""

import json
from pathlib import Path

from avemo.references import compared_references, project_reference

#: The default pipeline's deep model of each family (dvc.yaml), beside its references (references.REFERENCES).
DEEP = {"audio": ("train_audio_best", "audio, best searched model"), "video": ("train_video", "video 3-D CNN"),
        "fusion": ("train_fusion_best", "audio + video two-stream, best searched")}
ROWS = [row for family, deep in DEEP.items()
        for row in [(f"baseline-{project_reference(family).name}", f"{project_reference(family).description} (reference)"),
                    *((f"baseline-{r.name}", r.description + (" (the field's reference)" if r.field else " (reference)"))
                      for r in compared_references(family)),
                    deep]]

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
