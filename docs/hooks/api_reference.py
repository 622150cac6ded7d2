"""MkDocs hook: the API reference page of the lazily exported names (``api/python-api.md``).

``clr_rl/__init__.py`` loads the harness's Python API on first use: ``_API`` maps each such name to the
module that defines it. mkdocstrings needs that module path, so this page is written from ``_API`` when the
site is built: when a module moves, ``_API`` changes and the page follows, with no path written in ``docs/``.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

PAGE = "api/python-api.md"


def _lazy_api() -> dict[str, str]:
    """Name -> defining module, for every name ``clr_rl`` exports lazily: the one place the paths come from.

    The checkout beside ``mkdocs.yml`` comes first on the path, whatever clr_rl the environment has installed.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import clr_rl

    return dict(clr_rl._API)


def render() -> str:
    by_module: dict[str, list[str]] = {}
    for name, module in _lazy_api().items():
        by_module.setdefault(module, []).append(name)
    lines = ["# Python API: runs, batches, the setup phase", "",
             "The functions behind the command line, importable from `clr_rl` (loaded on first use, so that "
             "`import clr_rl` stays light): `from clr_rl import compare, train, RunConfig`. Each section is the "
             "module that defines them (this page is generated from `clr_rl._API`).", ""]
    for module, names in by_module.items():
        doc = (importlib.import_module(module).__doc__ or "").strip().splitlines()
        summary = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc[0]) if doc else ""  # Sphinx roles as code spans
        lines += [f"## {', '.join(f'`{n}`' for n in names)}", "", summary, ""]
        for name in names:
            lines += [f"::: {module}.{name}", "    options:", "      heading_level: 3", ""]
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files
