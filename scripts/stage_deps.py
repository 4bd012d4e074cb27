"""Each DVC stage's code deps, read from its command's imports: `make deps` writes them, the suite checks them.

A stage's command is `avemo <verb> ...`; what it runs is `avemo.cli` and the verb's module, and every
module of the package those import, at a module's top or inside a function. `make deps` rewrites
the `src/avemo...` entries of each stage's deps in dvc.yaml and study/dvc.yaml to that closure (a
package folder where the stage uses all, or all but one, of its modules); other deps are kept.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SRC = PROJECT / "src"
PIPELINES = (PROJECT / "dvc.yaml", PROJECT / "study" / "dvc.yaml")
WHOLE_PACKAGE = "src/avemo"  # a stage that lists the whole package (register: the registered model ships it)


def module_file(name: str) -> Path | None:
    """The source file of a dotted module name of the package, or None for a name that is not a module."""
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every `avemo...` module a file imports, anywhere in it, with the packages that import pulls in."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name == "avemo" or name.startswith("avemo."):
                parts = name.split(".")
                found |= {".".join(parts[:k]) for k in range(1, len(parts) + 1) if module_file(".".join(parts[:k]))}
    return found


def closure(entry: str) -> set[Path]:
    """The files of every module the entry module imports, directly or not."""
    seen, todo = set(), [entry, "avemo"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += imported_modules(module_file(name))
    return {module_file(n).relative_to(PROJECT) for n in seen}


def verb_of(cmd: str) -> str:
    """The `avemo` verb of a stage's command (global options such as --set skipped)."""
    words = shlex.split(cmd)
    if words[0] != "avemo":
        raise ValueError(f"not an avemo command: {cmd}")
    rest = words[1:]
    while rest[0].startswith("--"):
        rest = rest[2:]
    return rest[0]


def needed(cmd: str) -> set[Path]:
    """The package files a stage's command runs (an empty `__init__.py` runs nothing, and DVC warns of it)."""
    from avemo.cli import BY_NAME

    files = closure("avemo.cli") | closure(f"avemo.stages.{BY_NAME[verb_of(cmd)].module}")
    return {f for f in files if (PROJECT / f).stat().st_size}


def compact(files: set[Path]) -> list[str]:
    """Deps as written: a folder for a package used (almost) whole; ground floor, libraries, then stages."""
    files = {f.as_posix() for f in files}
    out = set(files)
    for package in sorted({str(Path(f).parent) for f in files} - {WHOLE_PACKAGE}):
        members = {p.relative_to(PROJECT).as_posix() for p in (PROJECT / package).glob("*.py") if p.stat().st_size}
        used = members & files
        if len(used) >= max(2, len(members) - 1):
            out = (out - used) | {package}
    floors = (lambda x: x.count("/") == 2, lambda x: x.count("/") > 2 and "/stages" not in x, lambda x: "/stages" in x)
    return [x for floor in floors for x in sorted(filter(floor, out))]


def rewrite(path: Path) -> str:
    """The pipeline file with each stage's `src/avemo...` deps replaced by what its command runs."""
    lines, out, cmd, i = path.read_text().split("\n"), [], None, 0
    while i < len(lines):
        line = lines[i]
        if m := re.match(r"^(\s*)cmd: (?:>-)?\s*(.*)$", line):  # a folded command: its continuation lines
            cmd, j = m.group(2), i + 1
            while j < len(lines) and len(lines[j]) - len(lines[j].lstrip()) > len(m.group(1)) and lines[j].strip():
                cmd, j = f"{cmd} {lines[j].strip()}", j + 1
        if (d := re.match(r"^(\s*)deps:\s*$", line)) and cmd:
            indent, items, i = d.group(1), [], i + 1
            while i < len(lines) and lines[i].startswith(f"{indent}  - "):
                items.append(lines[i])
                i += 1
            whole = any(x.strip() == f"- {WHOLE_PACKAGE}" for x in items)
            code = [WHOLE_PACKAGE] if whole else compact(needed(cmd))
            out += [line, *(x for x in items if "src/avemo" not in x), *(f"{indent}  - {c}" for c in code)]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def main() -> int:
    sys.path.insert(0, str(SRC))
    changed = []
    for path in PIPELINES:
        text = rewrite(path)
        if text != path.read_text():
            path.write_text(text)
            changed.append(path.relative_to(PROJECT).as_posix())
    print(f"stage deps rewritten in {', '.join(changed)}" if changed else "stage deps already complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
