import json, sys, math
import numpy as np
d = json.load(open(sys.argv[1])); rows = d["rows"]
bins = np.logspace(-6, -1, 21)
print(d["env"], d["seed"], len(rows))
print(f"{'lr<':>9} {'n':>5} {'loss':>8} {'ret':>8} {'dq':>8} {'qrms':>8} {'dq/qrms':>8} {'dq/adv':>8} {'flip':>6} {'qmax':>8}")
for lo, hi in zip(bins[:-1], bins[1:]):
    r = [x for x in rows if lo <= x["lr"] < hi]
    if not r: continue
    m = lambda k: np.nanmedian([x.get(k, math.nan) for x in r]) if any(k in x for x in r) else math.nan
    p = [x for x in r if "dq" in x]
    rel = np.median([x["dq"] / max(x["qrms"], 1e-9) for x in p]) if p else math.nan
    rela = np.median([x["dq"] / max(x["adv"], 1e-9) for x in p]) if p else math.nan
    print(f"{hi:9.2e} {len(r):5d} {m('loss'):8.3g} {m('ret'):8.4g} {m('dq'):8.3g} {m('qrms'):8.3g} {rel:8.3g} {rela:8.3g} {m('flip'):6.3f} {m('qmax'):8.3g}")
