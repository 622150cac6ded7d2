"""Rerun one run of each committed reference batch and compare it exactly with its summary.csv.

    python scripts/reproduce.py [results/reference/NAME ...] [--runs N] [--arm NAME ...]

For each reference folder that holds ``spec.resolved.json`` and ``summary.csv`` (a batch made by
``clr-rl compare``), the first N finished runs of each arm are trained again from their resolved configs
into a temporary folder, and their final return and AUC must equal the committed ones exactly (same code,
same versions, same kind of machine: training is deterministic for a seed). Exit status 1 on any
difference: either the code changed results (regenerate the reference in the same change) or the
reference was made by other code.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _references(paths: list[str]) -> list[Path]:
    if paths:
        return [Path(p) for p in paths]
    return sorted(p.parent for p in (ROOT / "results" / "reference").glob("*/spec.resolved.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("references", nargs="*", help="reference folders (default: every batch in results/reference)")
    parser.add_argument("--runs", type=int, default=1, help="runs to retrain per arm (default 1)")
    parser.add_argument("--arm", action="append", help="only this arm (repeatable; default every arm)")
    args = parser.parse_args(argv)

    from clr_rl.run.config import RunConfig
    from clr_rl.run.prepare import prepare
    from clr_rl.run.train import train

    failures = 0
    for ref in _references(args.references):
        resolved = {r["folder"]: r for r in json.loads((ref / "spec.resolved.json").read_text())["runs"]}
        with open(ref / "summary.csv", newline="") as fh:
            finished = [r for r in csv.DictReader(fh)
                        if r["status"] == "finished" and (not args.arm or r["arm"] in args.arm)]
        rows = [r for arm in dict.fromkeys(r["arm"] for r in finished)
                for r in [f for f in finished if f["arm"] == arm][: args.runs]]
        for row in rows:
            config = RunConfig.from_dict({**resolved[row["folder"]], "threads": 1, "device": "cpu"})
            with tempfile.TemporaryDirectory() as tmp:
                record = train(prepare(config), Path(tmp) / "run")
            got = (record.final_eval["mean_return"], record.auc)
            want = (float(row["final_return"]), float(row["auc"]))
            same = got == want
            failures += not same
            print(f"{'same' if same else 'DIFFERENT'}: {ref.name} {row['folder']}: final return {got[0]!r} "
                  f"(committed {want[0]!r}), AUC {got[1]!r} (committed {want[1]!r})", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
