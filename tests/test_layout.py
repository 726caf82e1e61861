"""The package's rooms: no import cycles, and a lower room never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import s3aads_pandas

PACKAGE = Path(s3aads_pandas.__file__).parent
#: Each room, and the rooms below it that it may import.
LEVELS = {
    "errors": 0,
    "progress": 0,
    "storage": 1,
    "config": 2,
    "tables": 3,
    "frames": 4,
    "notebook": 5,
    "aio": 5,
    "local": 5,
    "dask": 6,
    "cli": 7,
    "__main__": 8,
    "__init__": 8,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imports(path: Path) -> set[str]:
    """Every s3aads_pandas module that ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("s3aads_pandas"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
                found.add(candidate if is_module else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("s3aads_pandas")}
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_lower_room_imports_a_higher_one_and_no_cycles() -> None:
    graph = {module_name(path): imports(path) - {module_name(path)} for path in PACKAGE.rglob("*.py")}
    for module, targets in graph.items():
        for target in targets:
            assert LEVELS[room(target)] <= LEVELS[room(module)], f"{module} imports the higher {target}"

    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        assert module not in visiting, f"import cycle: {' -> '.join([*visiting, module])}"
        if module in done or module not in graph:
            return
        visiting.append(module)
        for target in sorted(graph[module]):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_every_room_is_a_folder_or_a_listed_module() -> None:
    entries = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p.is_dir() and p.name != "__pycache__")}
    assert entries == set(LEVELS)
