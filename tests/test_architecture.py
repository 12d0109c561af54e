"""The layout's rules (DESIGN.md, Layout), checked on the source: import direction and who prints.

- No cycle between btc's subpackages, counting imports inside functions, and the arrows go the
  documented way: commands → {data, models, engine, bench, report}; engine → {data, models};
  bench → {models, engine}; report → runfolder; data and models import none of the others.
- Only `btc/cli.py` and `btc/commands/` print: no other module calls print(), touches
  sys.stdout / sys.stderr, or imports / creates a rich Console.
- Only `btc/runfolder.py` spells a run folder's file names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "btc"
MODULES = sorted(ROOT.rglob("*.py"))

# what each node may import (nodes: subpackages and the top-level modules of btc)
BASE = {"errors", "io", "progress", "download", "lazy", "__init__"}
ALLOWED = {
    "data": BASE,
    "models": BASE,
    "runfolder": BASE,
    "engine": BASE | {"data", "models", "runfolder"},
    "bench": BASE | {"models", "engine", "data", "runfolder"},
    "report": BASE | {"runfolder"},
    "commands": BASE | {"data", "models", "engine", "bench", "report", "runfolder"},
    "cli": BASE | {"commands", "engine", "runfolder"},
    "__main__": {"cli"},
    "errors": set(),
    "io": {"errors"},
    "progress": set(),
    "__init__": set(),
    "download": {"errors", "progress", "__init__"},
}


def node_of(module: str) -> str:
    """`btc.engine.train` → engine; `btc.runfolder` → runfolder; `btc` → __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every btc module `path` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "btc"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "btc":
                found.add(target)
                found |= {f"{target}.{alias.name}" for alias in node.names
                          if (ROOT.parent / f"{target}.{alias.name}".replace(".", "/")).exists()}
    return found


def dependency_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        source = node_of(module_name(path))
        for target in imported_modules(path):
            dest = node_of(target)
            if dest != source:
                graph.setdefault(source, set()).add(dest)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_imports_inside_functions_are_seen(tmp_path):
    module = ROOT / "engine" / "train.py"
    assert any(m.startswith("btc.engine.memory_format") for m in imported_modules(module)), \
        "the memory-format import inside Trainer._memory_format must be found"


def test_no_import_cycle_between_subpackages():
    cycle = find_cycle(dependency_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_imports_follow_the_documented_arrows():
    wrong = []
    for path in MODULES:
        source = node_of(module_name(path))
        for target in imported_modules(path):
            dest = node_of(target)
            if dest != source and dest not in ALLOWED.get(source, set()):
                wrong.append(f"{path.relative_to(ROOT.parent)} imports {target}")
    assert not wrong, "\n".join(wrong)


# --------------------------------------------------------------------------- who prints

PRINTERS = {ROOT / "cli.py", ROOT / "__main__.py"} | set((ROOT / "commands").rglob("*.py"))


def printing_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append(f"line {node.lineno}: print()")
        elif isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") \
                and isinstance(node.value, ast.Name) and node.value.id == "sys":
            found.append(f"line {node.lineno}: sys.{node.attr}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names]
            module = getattr(node, "module", None) or ""
            if module.startswith("rich.console") or "rich.console" in names or "Console" in names \
                    or module == "typer" and "echo" in names:
                found.append(f"line {node.lineno}: imports a console")
        elif isinstance(node, ast.Name) and node.id == "Console":
            found.append(f"line {node.lineno}: Console")
        elif isinstance(node, ast.Attribute) and node.attr in ("echo", "secho") \
                and isinstance(node.value, ast.Name) and node.value.id in ("typer", "click"):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_the_print_finder_finds_prints(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import sys\nfrom rich.console import Console\nprint(1)\nsys.stderr.write('x')\n")
    assert len(printing_calls(probe)) >= 3


@pytest.mark.parametrize("path", [p for p in MODULES if p not in PRINTERS],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_parts_never_print(path):
    assert not printing_calls(path), f"{path.relative_to(ROOT.parent)} prints: {printing_calls(path)}"


# --------------------------------------------------------------------------- one owner of run files

RUN_FILE_NAMES = ("metrics.json", "predictions.csv", "history.csv", "cv.json", "folds.csv",
                  "checkpoint-best.pt", "checkpoint-last.pt", "split.csv", '"fold-', "'fold-")


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "runfolder.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_runfolder_spells_run_file_names(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    literals = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                and id(n) not in docstrings]
    hits = [f"line {n.lineno}: {n.value!r}" for n in literals
            if any(name.strip("\"'") in n.value and (not name.startswith(("\"", "'")) or n.value.startswith("fold-"))
                   for name in RUN_FILE_NAMES)]
    assert not hits, f"{path.relative_to(ROOT.parent)} spells run file names: {hits}"
