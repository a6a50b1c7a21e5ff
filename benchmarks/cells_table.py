"""Print one line per cell of a sweep (or run) directory: clean latency with its CI, the rebuilt and profiled
iteration against it, drift, stalls and the top groups. A quick look at device results before the report.

  python benchmarks/cells_table.py outputs/sweeps/fidelity
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    rows = []
    for path in sorted(Path(argv[0]).rglob("summary.json")):
        s = json.loads(path.read_text())
        if s.get("status") != "ok":
            rows.append(f"{path.parent.name[:60]:60s} FAILED {s.get('error', '')[:100]}")
            continue
        r, c = s["reconciliation"], s["clean"]
        top = sorted(((g, v["wall_pct"]) for g, v in s["groups"].items()), key=lambda kv: -kv[1])[:3]
        rows.append(f"{s['model']:12s} {s['precision']:5s} b{s['batch_size']:<2d} clean {c['median_ms']:8.3f} "
                    f"[{c['ci95_ms'][0]:.3f},{c['ci95_ms'][1]:.3f}] n={c['iters']:<4d} rebuilt/clean "
                    f"{r['reconstructed_over_clean']:.3f} profiled/clean {r['profiled_over_clean']:.3f} "
                    f"drift {r['clean_drift']:.2f} stalled {r['stalled_iterations']} busy "
                    f"{r['device_busy_share']:.2f} | " + " ".join(f"{g}:{p:.1f}" for g, p in top))
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
