"""Griffe extension: show a docstring's doctests (``>>>`` blocks) as Python console code.

The docstrings keep their doctests inline, as ``pytest --doctest-modules`` runs them; rendered as Markdown
they would become nested quotes, and an output line such as ``[0.0001, 0.001]`` a broken link. Each run of
``>>>``/``...`` lines and their output (up to a blank line) is fenced as ``pycon`` for the site only.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    out: list[str] = []
    inside = False
    indent = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if not inside and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            inside = True
        elif inside and not stripped:
            out.append(f"{indent}```")
            inside = False
        out.append(line)
    if inside:
        out.append(f"{indent}```")
    return "\n".join(out)


class FenceDoctests(griffe.Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
