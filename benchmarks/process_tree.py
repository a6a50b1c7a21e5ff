"""The memory of a process and all its descendants (forked workers, drawing processes), from /proc (Linux), for
the benchmarks' peak-memory figures.

Two sums over the tree: RSS counts a page shared by several processes (a fork's copy-on-write pages, the
libraries they map) once in each, so it is an upper bound; PSS counts such a page in shares, so that the
processes' PSS add up to the memory the tree holds. Both are sampled: a peak between two samples is missed.
"""

from __future__ import annotations

import threading
from pathlib import Path

PROC = Path("/proc")


def descendants(root: int) -> list[int]:
    """`root` and every live process below it."""
    parents = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:   # ended while we looked
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])   # the field after the state
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    return sorted(tree)


def _kib(path: Path, field: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def memory_mb(pids: list[int]) -> tuple[float, float]:
    """(Σ RSS, Σ PSS) in MB of the processes `pids` now (those that ended count 0)."""
    rss = pss = 0
    for pid in pids:
        try:
            rss += _kib(PROC / str(pid) / "status", "VmRSS:")
            pss += _kib(PROC / str(pid) / "smaps_rollup", "Pss:")
        except OSError:
            continue
    return rss / 1024.0, pss / 1024.0


def tree_memory_mb(root: int) -> tuple[float, float]:
    """(Σ RSS, Σ PSS) in MB of `root` and its descendants now."""
    return memory_mb(descendants(root))


class PeakSampler:
    """Samples the memory of `root` and its descendants every `interval_s` on a thread until stop(), keeping
    the peaks; the descendants are looked for every `rescan` samples (a scan of /proc costs more than a sample,
    and the sampling shares the CPUs with what it measures)."""

    def __init__(self, root: int, interval_s: float = 0.1, rescan: int = 3):
        self.root, self.interval_s, self.rescan = root, interval_s, rescan
        self.peak_rss_mb = self.peak_pss_mb = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pids = [self.root]
        while not self._stop.is_set():
            if self.samples % self.rescan == 0:
                pids = descendants(self.root)
            rss, pss = memory_mb(pids)
            self.peak_rss_mb, self.peak_pss_mb = max(self.peak_rss_mb, rss), max(self.peak_pss_mb, pss)
            self.samples += 1
            self._stop.wait(self.interval_s)

    def stop(self) -> PeakSampler:
        self._stop.set()
        self._thread.join()
        return self
