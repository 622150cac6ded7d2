"""MkDocs hook: writes ``reference/modules.md``, the module map, from the code itself.

The layers and their order come from the import-linter contract in ``pyproject.toml`` (the one
``lint-imports`` checks), each module's line from the first line of its docstring, and its size
from the file: the map cannot drift from the package.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PAGE = "reference/modules.md"


def _layers() -> list[list[str]]:
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    return [[m.strip() for m in layer.split("|")] for layer in contract["layers"]]


def _modules(dotted: str) -> list[Path]:
    path = ROOT / Path(*dotted.split("."))
    if path.is_dir():
        return sorted(p for p in path.glob("*.py") if p.name != "__init__.py")
    return [path.with_suffix(".py")]


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.strip().splitlines()[0].replace("|", "\\|") if doc.strip() else ""


def render() -> str:
    sys.path.insert(0, str(ROOT))
    out = ["# Module map", "",
           "Generated from the code when the site is built: the layers in the order of the import-linter contract "
           "(`[tool.importlinter]` in `pyproject.toml`, checked by `lint-imports` in `make test`), top to bottom; "
           "each imports only the layers below it. Modules in one row of a layer marked `|` are independent of "
           "each other.", ""]
    for i, layer in enumerate(_layers(), 1):
        out += [f"## {i}. {' | '.join(f'`{m}`' for m in layer)}", "", "| module | lines | what it owns |",
                "|---|---|---|"]
        for dotted in layer:
            for path in _modules(dotted):
                name = str(path.relative_to(ROOT / "clr_rl").with_suffix("")).replace("/", ".")
                out.append(f"| `{name}` | {len(path.read_text().splitlines())} | {_summary(path)} |")
        out.append("")
    return "\n".join(out) + "\n"


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files
