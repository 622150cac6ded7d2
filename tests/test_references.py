"""The committed reference results: every folder made by ``clr-rl compare`` holds the files a reader needs
(spec, summary, report with its figures, statistics, notes), and the README's "What we found" table says what
their reports say (issue 11's acceptance). Files read back; no training."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCES = sorted(p.parent for p in (ROOT / "results" / "reference").glob("*/spec.resolved.json"))


def _found_table() -> list[dict[str, str]]:
    """The rows of the README's "What we found" table; a row with an empty first cell continues the one above."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## What we found"):text.index("## Two commands on a fresh machine")]
    rows, reference = [], ""
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| reference "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0]:
            found = re.search(r"`([^`]+)`", cells[0])
            assert found, line
            reference = found.group(1)
        rows.append({"reference": reference, "arm": cells[2].split(" (")[0], "verdict": cells[3], "p": cells[4]})
    return rows


def test_reference_batches_exist() -> None:
    assert {p.name for p in REFERENCES} >= {"classic-demo", "theory-schedules", "mujoco-ppo"}


@pytest.mark.parametrize("folder", REFERENCES, ids=lambda p: p.name)
def test_reference_folder_holds_spec_summary_report_figures_stats_and_notes(folder: Path) -> None:
    for name in ("spec.toml", "summary.csv", "NOTES.md", "report/report.md", "report/stats.json"):
        assert (folder / name).is_file(), f"{folder.name}: {name} missing"
    report = (folder / "report" / "report.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", report)
    assert len(figures) >= 5  # learning curves per env, aggregates, P(improvement), profiles, sample efficiency
    for name in figures:
        assert (folder / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{folder.name}: {name}"
    with open(folder / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    stats = json.loads((folder / "report" / "stats.json").read_text())
    assert rows and all(r["status"] in ("finished", "diverged", "failed") for r in rows)
    assert stats["missing"] == []  # every planned run entered the report


def test_readme_found_table_matches_the_reports() -> None:
    rows = _found_table()
    compared: dict[tuple[str, str], Any] = {}
    for folder in REFERENCES:
        stats = json.loads((folder / "report" / "stats.json").read_text())
        for arm, c in stats["comparisons"].items():
            compared[(folder.name, arm)] = c
    assert {(r["reference"], r["arm"]) for r in rows} == set(compared)  # every verdict, and nothing else
    for r in rows:
        c = compared[(r["reference"], r["arm"])]
        lo, hi = c["decision_ci"]
        assert (r["verdict"], r["p"]) == (c["verdict"], f"{c['estimate']:.2f} [{lo:.2f}, {hi:.2f}]"), r
