"""Rerun one run of each committed reference batch and compare it exactly with its summary.csv.

    python scripts/reproduce.py [results/reference/NAME ...] [--runs N] [--arm NAME ...]

For each reference folder that holds ``spec.resolved.json`` and ``summary.csv`` (a batch made by
``clr-rl compare``), the first N finished runs of each arm are trained again from their resolved configs
into a temporary folder, and their final return and AUC must equal the committed ones exactly (same code,
same versions, same kind of machine: training is deterministic for a seed). Exit status 1 on any
difference: either the code changed results (regenerate the reference in the same change) or the
reference was made by other code.

Bit-identity is demanded only where it can hold: when the reference records the machine it ran on (the
``versions`` of its committed ``run.json`` or ``tune/*/tuned_lr.json`` files hold every key of
:data:`clr_rl.run.machine.FINGERPRINT_KEYS`: CPU model, torch's CPU capability and BLAS, numpy and its BLAS,
torch) and they equal this machine's, and the run was not resumed (a resumed run is not bit-identical to
an uninterrupted one). Otherwise the check is statistical agreement: the retrained run's final return must
lie within 3 standard deviations of the committed runs of its arm on its env (a loose check that catches a
commit that breaks training, not one that shifts it slightly). Each line says which check it ran.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
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
    from clr_rl.run.machine import FINGERPRINT_KEYS
    from clr_rl.run.prepare import prepare, versions
    from clr_rl.run.train import train

    here = versions()
    failures = 0
    for ref in _references(args.references):
        resolved = {r["folder"]: r for r in json.loads((ref / "spec.resolved.json").read_text())["runs"]}
        with open(ref / "summary.csv", newline="") as fh:
            all_finished = [r for r in csv.DictReader(fh) if r["status"] == "finished"]
        finished = [r for r in all_finished if not args.arm or r["arm"] in args.arm]
        rows = [r for arm in dict.fromkeys(r["arm"] for r in finished)
                for r in [f for f in finished if f["arm"] == arm][: args.runs]]
        fingerprint, resumed = _reference_machine(ref)
        exact = fingerprint is not None and all(fingerprint.get(k) == here.get(k) for k in FINGERPRINT_KEYS)
        print(f"{ref.name}: " + (
            "made on a machine with the same fingerprint: checking bit-identity" if exact else
            "made on another machine (" + (", ".join(f"{k} {fingerprint.get(k)!r} here {here.get(k)!r}"
                                                      for k in FINGERPRINT_KEYS if fingerprint.get(k) != here.get(k))
                                           if fingerprint is not None else "the reference records no machine "
                                           "fingerprint") + "): checking statistical agreement") + "; resumed runs: "
              + (", ".join(sorted(resumed)) or "none" if resumed is not None else
                 "not recorded (no run.json committed; a resumed run is not bit-identical to an uninterrupted one)"),
              flush=True)
        for row in rows:
            config = RunConfig.from_dict({**resolved[row["folder"]], "threads": 1, "device": "cpu"})
            with tempfile.TemporaryDirectory() as tmp:
                record = train(prepare(config), Path(tmp) / "run")
            got = (record.final_eval["mean_return"], record.auc)
            want = (float(row["final_return"]), float(row["auc"]))
            if exact and row["folder"] not in (resumed or set()):
                same, check = got == want, "bit-identity"
            else:
                peers = [float(r["final_return"]) for r in all_finished
                         if r["arm"] == row["arm"] and r["env"] == row["env"]]
                mean = statistics.fmean(peers)
                sd = statistics.stdev(peers) if len(peers) > 1 else 0.0
                same, check = abs(got[0] - mean) <= 3 * sd or got[0] == mean, (
                    f"statistical agreement: within 3 sd of the arm's {len(peers)} committed runs "
                    f"({mean:.2f} +/- {sd:.2f})")
            failures += not same
            print(f"{'same' if same else 'DIFFERENT'} ({check}): {ref.name} {row['folder']}: final return "
                  f"{got[0]!r} (committed {want[0]!r}), AUC {got[1]!r} (committed {want[1]!r})", flush=True)
    return 1 if failures else 0


def _reference_machine(ref: Path) -> tuple[dict[str, str] | None, set[str] | None]:
    """The machine fingerprint a reference records (None: none does), and its resumed runs (None: unknown)."""
    from clr_rl.run.machine import FINGERPRINT_KEYS

    fingerprint = None
    records = sorted(ref.glob("runs/**/run.json"))
    for path in records + sorted(ref.glob("tune/*/tuned_lr.json")):
        try:
            found = json.loads(path.read_text()).get("versions") or {}
        except (OSError, ValueError):
            continue
        if all(k in found for k in FINGERPRINT_KEYS):
            fingerprint = found
            break
    if not records:
        return fingerprint, None
    resumed = set()
    for path in records:
        try:
            if json.loads(path.read_text()).get("resumed_from") is not None:
                resumed.add(str(path.parent.relative_to(ref)))
        except (OSError, ValueError):
            continue
    return fingerprint, resumed


if __name__ == "__main__":
    sys.exit(main())
