"""Clean timing: inferences with no profiler attached, and the statistics users quote.

A block runs until it has both `min_iters` inferences and `min_time_s` seconds (MLPerf-style minimum
duration). On CUDA each inference is bracketed by CUDA events on the current stream (flows whose runtime
uses a stream of its own are timed on the host clock around infer() + synchronize()); on the CPU a
monotonic clock is read. The garbage collector is off inside a block, so a collection does not land in
one inference.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass

MAX_BLOCK_ITERS = 100_000
MIN_BLOCKS = 3                 # a capped plan keeps at least this many blocks (a spread for the CI, drift)
MIN_WARMUP = 2                 # the first inference pays one-time costs; the second is the estimate
WARMUP_SHARE = 0.25            # warm-up stops early (after MIN_WARMUP) once it has used this much of max_time_s
PROBE_CALLS = 200              # host_probe: calls per loop, and loops (about 1.5 ms in all on the 2-core machine;
PROBE_LOOPS = 5                # idle there, 30 probes' medians varied with a CV of 0.09-0.15 at 5 loops, 0.27 at 3)


@contextmanager
def gc_paused():
    """The cyclic garbage collector off inside the block (restored after), after one collection. Nested inside
    another gc_paused (the collector already off) it does nothing: the outer one has collected, and a second
    full collection would cost a traversal of every object for no garbage."""
    enabled = gc.isenabled()
    if enabled:
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_block(infer: Callable[[], object], synchronize: Callable[[], None], use_cuda_events: bool,
               min_iters: int, min_time_s: float = 0.0) -> list[float]:
    """Latency of each inference in microseconds, until both `min_iters` and `min_time_s` are reached."""
    latencies: list[float] = []
    with gc_paused():
        began = time.perf_counter()   # after the collection: a long one must not eat the block's min_time_s
        while len(latencies) < min_iters or (time.perf_counter() - began < min_time_s
                                             and len(latencies) < MAX_BLOCK_ITERS):
            latencies.append(_one(infer, synchronize, use_cuda_events))
    return latencies


@dataclass(frozen=True)
class Sampling:
    """How many inferences a run measures: `iters` clean and `profile_iters` profiled over `blocks` blocks,
    with `profile_warmup` unmarked profiled ones before each profiled block."""

    iters: int
    profile_iters: int
    blocks: int
    profile_warmup: int
    capped: bool = False

    @property
    def inferences(self) -> int:
        return self.iters + self.profile_iters + self.blocks * self.profile_warmup

    def to_json(self) -> dict:
        return asdict(self)


def plan_sampling(wanted: Sampling, inference_s: float | None, max_time_s: float | None) -> Sampling:
    """`wanted` (the config's), or fewer inferences where `wanted` would take longer than `max_time_s` at
    `inference_s` each (as pytest-benchmark's max_time with its min_rounds, the floors win over the cap):
    blocks down to MIN_BLOCKS (never more than wanted), one unmarked profiled inference per block, and the
    clean and profiled ones cut in the config's proportion, at least one of each per block. `min_time_s`
    still applies to the clean ones (it only adds inferences when they are short)."""
    if not max_time_s or not inference_s or wanted.inferences * inference_s <= max_time_s:
        return wanted
    affordable = int(max_time_s // inference_s)
    warmup = min(wanted.profile_warmup, 1)
    per_block = 2 + warmup
    blocks = min(wanted.blocks, max(MIN_BLOCKS, affordable // per_block))
    spare = max(affordable - blocks * per_block, 0)
    extra_clean = min(wanted.iters - blocks, round(spare * wanted.iters / (wanted.iters + wanted.profile_iters)))
    extra_profiled = min(wanted.profile_iters - blocks, spare - extra_clean)
    return Sampling(iters=blocks + max(extra_clean, 0), profile_iters=blocks + max(extra_profiled, 0),
                    blocks=blocks, profile_warmup=warmup, capped=True)


def warm_up(infer: Callable[[], object], synchronize: Callable[[], None], count: int,
            max_time_s: float | None) -> list[float]:
    """Up to `count` untimed inferences; each one's seconds. With `max_time_s`, stops early once MIN_WARMUP
    are done and they have used WARMUP_SHARE of it (an inference of many seconds needs no third warm-up)."""
    seconds: list[float] = []
    for _ in range(count):
        began = time.perf_counter()
        infer()
        synchronize()
        seconds.append(time.perf_counter() - began)
        if max_time_s and len(seconds) >= MIN_WARMUP and sum(seconds) >= WARMUP_SHARE * max_time_s:
            break
    return seconds


def _one(infer, synchronize, use_cuda_events: bool) -> float:
    if use_cuda_events:
        import torch

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        infer()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1000.0
    begin = time.perf_counter_ns()
    infer()
    synchronize()
    return (time.perf_counter_ns() - begin) / 1000.0


def host_probe(calls: int = PROBE_CALLS, repeats: int = PROBE_LOOPS) -> dict[str, float]:
    """The host's speed now: µs per call of a one-element CPU tensor add (PyTorch's dispatch, the host work
    that the profiler's records ride on), over `repeats` loops of `calls`: `host_probe_us` the median over the
    loops (the speed while the probe ran), `host_probe_mean_us` the mean (which also counts loops the scheduler
    cut into: with three busy processes beside it on the 2-core machine, the median of 30 probes' medians went
    from 1.32 to 1.37 µs, of their means from 1.40 to 1.65).
    Run beside each profiled block and at calibration, outside both, so that the price of a record can be set
    against how fast the host was (docs/measurement.md: on a slower host the same records cost more)."""
    import statistics

    import torch

    a, out = torch.ones(1), torch.empty(1)
    per_call = []
    with torch.inference_mode():
        for _ in range(repeats):
            began = time.perf_counter_ns()
            for _ in range(calls):
                torch.add(a, a, out=out)
            per_call.append((time.perf_counter_ns() - began) / 1000.0 / calls)
    return {"host_probe_us": round(statistics.median(per_call), 4),
            "host_probe_mean_us": round(statistics.fmean(per_call), 4)}


def _median_ci_ranks(n: int, confidence: float) -> tuple[int, int]:
    """The 1-based ranks of the order statistics median_ci takes: binomial quantiles, clipped to 1..n."""
    from scipy.stats import binom

    tail = (1.0 - confidence) / 2.0
    lo = int(binom.ppf(tail, n, 0.5))                      # 0-based rank of the lower bound
    hi = int(binom.ppf(1.0 - tail, n, 0.5))
    return max(lo, 1), min(hi + 1, n)


def median_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median: order statistics at binomial ranks. With fewer
    than 6 values no pair of them reaches 95%: it is then their range, whose confidence median_ci_coverage gives."""
    import numpy as np

    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    if n == 0:
        return float("nan"), float("nan")
    lo, hi = _median_ci_ranks(n, confidence)
    return float(ordered[lo - 1]), float(ordered[hi - 1])


# From this many values on, median_ci's 95% interval lies inside their range; below it, it is the range.
RANGE_ONLY = 6


def median_ci_coverage(n: int, confidence: float = 0.95) -> float:
    """The probability that median_ci's interval of `n` values holds the true median (exact, for any continuous
    distribution): at least `confidence` from RANGE_ONLY values on; below, the range's 1 - 2 * 0.5^n (0.5 for 2
    values, 0.75 for 3, 0.9375 for 5; without scipy, for the report); 0 for one value."""
    if n < 2:
        return 0.0
    if n < RANGE_ONLY:
        return 1.0 - 2.0 * 0.5 ** n
    from scipy.stats import binom

    lo, hi = _median_ci_ranks(n, confidence)
    return float(binom.cdf(hi - 1, n, 0.5) - binom.cdf(lo - 1, n, 0.5))


def latency_stats(latencies_us) -> dict:
    """Median, p10, p90, mean, coefficient of variation and the median's 95% CI (ms), as users quote them."""
    import numpy as np

    values = np.asarray(latencies_us, dtype=float) / 1000.0
    mean = float(values.mean())
    return {
        "median_ms": float(np.median(values)),
        "p10_ms": float(np.percentile(values, 10)),
        "p90_ms": float(np.percentile(values, 90)),
        "mean_ms": mean,
        "cv": float(values.std() / mean) if mean > 0 else 0.0,
        "ci95_ms": list(median_ci(values)),
        "ci95_coverage": round(median_ci_coverage(len(values)), 4),   # below 0.95 with fewer than 6 inferences
        "iters": int(len(values)),
    }


def host_state() -> dict:
    """What the host was doing: load averages, the CPUs this process may run on, their current clock."""
    import os

    state: dict = {}
    try:
        state["load_avg"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        cpus = sorted(os.sched_getaffinity(0))
        state["affinity"] = cpus
        freqs = []
        for cpu in cpus[:64]:
            path = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq"
            if os.path.exists(path):
                with open(path) as handle:
                    freqs.append(int(handle.read().strip()) / 1000.0)
        if freqs:
            state["cpu_mhz"] = {"min": min(freqs), "max": max(freqs), "mean": round(sum(freqs) / len(freqs), 1)}
    except (AttributeError, OSError, ValueError):
        pass
    return state


def pin_cpus(cpus) -> list[int] | None:
    """Restrict this process to `cpus` (a list of CPU numbers) where the OS allows it; returns the new set."""
    import os

    if not cpus:
        return None
    try:
        os.sched_setaffinity(0, {int(c) for c in cpus})
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
