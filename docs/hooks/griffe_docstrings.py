"""Griffe extension: docstrings as the site shows them, without changing them in the code.

- Doctests: the docstrings keep them inline, as ``pytest --doctest-modules`` runs them; rendered as Markdown
  they would become nested quotes, and an output line such as ``[0.0001, 0.001]`` a broken link. Each run of
  ``>>>``/``...`` lines and their output (up to a blank line) is fenced as ``pycon``.
- Sphinx roles (``:class:`Setting```, ``:func:`prepare```), which Markdown would print as they are, become
  code spans.
"""

from __future__ import annotations

import re
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


_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def markdown_docstring(text: str) -> str:
    return _ROLE.sub(r"`\1`", fence_doctests(text) if ">>>" in text else text)


class MarkdownDocstrings(griffe.Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
