"""What a stage prints: counts and figures, as rich tables a person reads."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console(highlight=False, soft_wrap=True)  # a log line is never folded to an 80-column pipe
notes = Console(stderr=True, highlight=False, soft_wrap=True)  # beside a command's JSON answer on stdout


def print_counts(title: str, counts: dict, column: str = "count") -> None:
    console.print(f"{title}:", markup=False)  # above the table, not folded to its width
    table = Table()
    table.add_column("")
    table.add_column(column, justify="right")
    for key, value in counts.items():
        table.add_row(str(key), str(value))
    console.print(table)


def print_figures(title: str, detail: dict) -> None:
    """Test figures: mean over seeds with the 95 % interval over items and seeds, and the kept model's recall."""
    test, seeds = detail["test"], list(detail["test"]["ua"]["per_seed"])
    figures = ", ".join(f"{m.upper()} {test[m]['mean']:.3f} [{test[m]['low']:.3f}, {test[m]['high']:.3f}]"
                        for m in ("ua", "wa", "f1"))
    console.print(f"{title}: test {figures} (95 % intervals over test items and seeds {', '.join(seeds)})",
                  markup=False)
    model = detail.get("model")
    if model and model.get("recall"):
        print_counts(f"{title}: test recall per class (kept model: seed {model['seed']})",
                     {c: round(r, 3) for c, r in model["recall"].items()}, "recall")
