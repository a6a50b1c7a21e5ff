"""Per-run figures for summary.json: group totals in every view with their CIs, the reconciliation of the
rebuilt and profiled timelines against clean timing, the kernel classes inside each group, the roofline per
group, the share of device time that reached an operator, and the warnings."""

from __future__ import annotations

import numpy as np

from ngbench.schema import GRAPH_REPLAY_OP, IDLE_OP, UNATTRIBUTED_OP

RATIO_TOLERANCE = 0.05
COVERAGE_TOLERANCE_PCT = 1.0   # warn when more device time than this reached no operator
GEMM_KERNEL_CLASSES = ("gemm", "conv", "attention")
VIEW_COLUMNS = {"wall": "wall_us", "wall_profiled": "wall_profiled_us", "device": "device_us", "host": "host_us"}


# Student-t 0.975 quantiles for 1-30 degrees of freedom: scipy.special.stdtrit(df, 0.975), written out because
# importing scipy.special costs a report 0.3 s (tests/test_summary.py checks every one against scipy)
T_975 = (12.706204736174694, 4.302652729749462, 3.1824463052837078, 2.7764451051977934, 2.5705818356363146,
         2.4469118511449786, 2.364624251592784, 2.306004135204166, 2.262157162798205, 2.228138851986274,
         2.200985160091639, 2.1788128296672284, 2.1603686564627913, 2.144786687917804, 2.131449545559776,
         2.1199052992212546, 2.1098155778333156, 2.1009220402410382, 2.0930240544083087, 2.085963447265864,
         2.0796138447276795, 2.0738730679040254, 2.0686576104190486, 2.0638985616280245, 2.0595385527532972,
         2.0555294386428735, 2.0518305164802846, 2.0484071417952454, 2.045229642132703, 2.0422724563012378)
Z_975 = 1.959963984540054   # the normal quantile the t-quantiles tend to


def t_975(df):
    """The Student-t 0.975 quantile at integer degrees of freedom `df` >= 1 (vectorised): T_975 up to 30, beyond
    it the Cornish-Fisher expansion in 1/df (Abramowitz & Stegun 26.7.5, four terms; relative error < 2e-8)."""
    df = np.asarray(df, dtype=float)
    z = Z_975
    terms = ((z**3 + z) / 4, (5 * z**5 + 16 * z**3 + 3 * z) / 96, (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
             (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160)
    far = np.maximum(df, len(T_975) + 1)
    expansion = z + sum(g / far ** (k + 1) for k, g in enumerate(terms))
    near = np.asarray(T_975)[np.clip(df.astype(int), 1, len(T_975)) - 1]
    return np.where(df <= len(T_975), near, expansion)


def t_half_width(std, count):
    """Half-width of the 95% Student-t confidence interval of a mean, from the sample standard deviation
    (ddof=1) and the sample size; vectorised over arrays, 0 where there are fewer than two values."""
    std, count = np.asarray(std, dtype=float), np.asarray(count, dtype=float)
    several = count >= 2
    safe = np.where(several, count, 2.0)
    half = t_975(safe - 1) * np.nan_to_num(std) / np.sqrt(safe)
    return np.where(several, half, 0.0)


def t_interval(values) -> list[float]:
    """95% Student-t confidence interval of the mean of `values` ([v, v] for a single value)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        mean = float(values.mean()) if len(values) else float("nan")
        return [mean, mean]
    half = float(t_half_width(values.std(ddof=1), len(values)))
    return [float(values.mean() - half), float(values.mean() + half)]


def paper_us(ops, device_is_host: bool):
    """The seed artifact's accounting per row: host time + device time of each top-level operator (host time
    alone where the device is the host); idle time and kernels launched outside every operator do not count."""
    pseudo = ops["op"].isin([IDLE_OP, UNATTRIBUTED_OP])
    both = ops["host_us"] if device_is_host else ops["host_us"] + ops["device_us"]
    return both.where(~pseudo, 0.0)


def group_totals(ops, device_is_host: bool = False) -> dict:
    """Per group, per inference over the kept iterations: ms and % in each view (wall, wall_profiled,
    device, host, paper), the wall share's 95% CI across iterations, and op instances per iteration."""
    ops = ops.assign(paper_us=paper_us(ops, device_is_host))
    iterations = ops["iteration"].nunique()
    columns = {**VIEW_COLUMNS, "paper": "paper_us"}
    sums = ops.groupby("op_group")[list(columns.values())].sum()
    totals = sums.sum()
    per_iteration = ops.groupby(["iteration", "op_group"])["wall_us"].sum().unstack(fill_value=0.0)
    shares = 100.0 * per_iteration.div(per_iteration.sum(axis=1), axis=0)
    counts = ops.groupby("op_group").size()
    result = {}
    for group, row in sums.iterrows():
        entry = {}
        for view, column in columns.items():
            entry[f"{view}_ms"] = float(row[column]) / iterations / 1000.0
            entry[f"{view}_pct"] = float(100.0 * row[column] / totals[column]) if totals[column] else 0.0
        entry["wall_pct_ci95"] = t_interval(shares[group]) if group in shares else [0.0, 0.0]
        entry["ops"] = int(counts[group] // iterations)
        result[str(group)] = entry
    return result


def gemm_kinds(ops) -> dict:
    """Inside GEMM, per kind (matmul, conv, attention, int8_matmul...): wall ms per inference."""
    iterations = ops["iteration"].nunique()
    gemm = ops[ops["op_group"] == "GEMM"]
    return {str(k): float(v) / iterations / 1000.0 for k, v in gemm.groupby("kind")["wall_us"].sum().items()}


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def reconciliation(iterations, clean_blocks_us: list[list[float]], probes: list[dict] | None = None) -> dict:
    """Rebuilt and profiled iteration times against clean timing, block by block (clean and profiled blocks
    alternate, so host drift cancels out of each block's ratio); the ratios are medians over blocks. With
    `probes` (the host's speed measured before each profiled block, measure.timing.host_probe), each block
    carries its own."""
    kept = iterations[~iterations["stalled"]]
    per_block = []
    for block, clean in enumerate(clean_blocks_us):
        mine = kept[kept["block"] == block]
        if mine.empty or not clean:
            continue
        clean_median = float(np.median(clean))
        per_block.append({"block": block, "clean_ms": clean_median / 1000.0,
                          "rebuilt_ms": float(mine["rebuilt_us"].median()) / 1000.0,
                          "profiled_ms": float(mine["profiled_us"].median()) / 1000.0,
                          "reconstructed_over_clean": _ratio(float(mine["rebuilt_us"].median()), clean_median),
                          "profiled_over_clean": _ratio(float(mine["profiled_us"].median()), clean_median),
                          **(probes[block] if probes and block < len(probes) else {})})
    clean_medians = [b["clean_ms"] for b in per_block]
    window = float(kept["rebuilt_us"].sum())
    return {
        "reconstructed_over_clean": float(np.median([b["reconstructed_over_clean"] for b in per_block]))
        if per_block else float("nan"),
        "profiled_over_clean": float(np.median([b["profiled_over_clean"] for b in per_block]))
        if per_block else float("nan"),
        "by_block": per_block,
        "clean_drift": _ratio(max(clean_medians), min(clean_medians)) - 1.0 if clean_medians else float("nan"),
        "device_busy_share": _ratio(float(kept["busy_us"].sum()), window),
        "device_busy_share_profiled": _ratio(float(kept["busy_profiled_us"].sum()), float(kept["profiled_us"].sum())),
        "stalled_iterations": int(iterations["stalled"].sum()),
        "profiled_iterations": int(len(iterations)),
        "record_cost_ms": float(kept["record_cost_us"].median()) / 1000.0 if len(kept) else 0.0,
        "blocking_waits": int(kept["waits"].median()) if len(kept) else 0,
    }


def halves(by_block: list[dict], key: str = "clean_ms") -> float | None:
    """How well a cell repeats itself within its run: the median of `key` over its even blocks over that over
    its odd ones (clean latency by default: the host's own noise, the floor under the ±5% check); None under
    four blocks."""
    if len(by_block) < 4:
        return None
    even, odd = by_block[0::2], by_block[1::2]
    return _ratio(float(np.median([b[key] for b in even])), float(np.median([b[key] for b in odd])))


def warnings_for(recon: dict, unmatched_ops: int) -> list[str]:
    out = []
    ratio = recon["reconstructed_over_clean"]
    if abs(ratio - 1.0) > RATIO_TOLERANCE:
        out.append(f"the rebuilt timeline is {100 * (ratio - 1):+.1f}% off the clean latency "
                   "(reconstructed/clean): wall shares carry that much unexplained time")
    if recon["stalled_iterations"]:
        out.append(f"{recon['stalled_iterations']} of {recon['profiled_iterations']} profiled iterations stalled "
                   "and were left out")
    if recon["clean_drift"] > 0.10:
        out.append(f"clean latency drifted {100 * recon['clean_drift']:.0f}% between blocks (a noisy host)")
    if unmatched_ops:
        out.append(f"{unmatched_ops} ops of the timed pass had no counterpart in the annotation pass "
                   "(no module/shape for them)")
    return out


def _ms(us: float, iterations: int) -> float:
    return float(us) / max(iterations, 1) / 1000.0


def kernel_class_totals(kernels, iterations: int, taxonomy=None) -> dict:
    """Device time per inference by kernel class, in all and inside each op group, and the part of a group's
    time in classes that are not its own (taxonomy.yaml `group_kernel_classes`): "GEMM: 11.7 ms, of which
    layout 4.8 ms". `gemm_class_pct` is the GEMM share by the kernels' own names (gemm, conv, attention)."""
    from ngbench.taxonomy import load_taxonomy

    taxonomy = taxonomy or load_taxonomy()
    if kernels.empty:
        return {}
    kernels = kernels.assign(op_group=kernels["op_group"].fillna("Other"))
    by_class = kernels.groupby("kernel_class")["device_us"].sum().sort_values(ascending=False)
    groups = {}
    for group, rows in kernels.groupby("op_group"):
        mine = rows.groupby("kernel_class")["device_us"].sum().sort_values(ascending=False)
        own = taxonomy.own_kernel_classes(str(group))
        foreign = mine[~mine.index.isin(own)] if own else mine.iloc[:0]
        total = float(mine.sum())
        groups[str(group)] = {
            "device_ms": _ms(total, iterations),
            "by_class_ms": {str(k): _ms(v, iterations) for k, v in mine.items()},
            "own_classes": list(own),
            "other_class_ms": {str(k): _ms(v, iterations) for k, v in foreign.items()},
            "other_class_pct": 100.0 * float(foreign.sum()) / total if total else 0.0,
        }
    total = float(by_class.sum())
    return {"device_ms": _ms(total, iterations), "by_class_ms": {str(k): _ms(v, iterations) for k, v in by_class.items()},
            "gemm_class_pct": 100.0 * float(by_class.reindex(GEMM_KERNEL_CLASSES).fillna(0.0).sum()) / total
            if total else 0.0,
            "groups": groups}


def roofline_totals(ops, iterations: int, bandwidth_gbs: float | None, peak_tflops: float | None) -> dict:
    """Per op group, over its operators with device time: FLOPs and bytes per inference, achieved bandwidth
    and FLOP/s over the device time of the operators whose bytes (FLOPs) are known, as % of the measured
    bandwidth (`memory_roofline_pct`) and of the precision's peak (`compute_peak_pct`), and the share of the
    group's device time that has known bytes (`bytes_known_pct`)."""
    busy = ops[ops["device_us"] > 0]
    result = {}
    for group, rows in busy.groupby("op_group"):
        with_bytes, with_flops = rows[rows["bytes"].notna()], rows[rows["flops"].notna()]
        bytes_s, flops_s = float(with_bytes["device_us"].sum()) / 1e6, float(with_flops["device_us"].sum()) / 1e6
        gbs = float(with_bytes["bytes"].sum()) / bytes_s / 1e9 if bytes_s else None
        tflops = float(with_flops["flops"].sum()) / flops_s / 1e12 if flops_s else None
        result[str(group)] = {
            "device_ms": _ms(rows["device_us"].sum(), iterations),
            "gbytes": float(with_bytes["bytes"].sum()) / max(iterations, 1) / 1e9,
            "gflops": float(with_flops["flops"].sum()) / max(iterations, 1) / 1e9,
            "bytes_known_pct": 100.0 * bytes_s * 1e6 / float(rows["device_us"].sum()),
            "flops_known_pct": 100.0 * flops_s * 1e6 / float(rows["device_us"].sum()),
            "achieved_gbs": gbs,
            "memory_roofline_pct": 100.0 * gbs / bandwidth_gbs if gbs is not None and bandwidth_gbs else None,
            "achieved_tflops": tflops,
            "compute_peak_pct": 100.0 * tflops / peak_tflops if tflops is not None and peak_tflops else None,
        }
    return result


def coverage(ops) -> dict:
    """The share of device time that reached an operator: all of it but the `[unattributed kernels]` rows
    (launched outside every operator) and the `[cuda graph replay]` rows (replayed CUDA-graph kernels that
    could not be matched to the operators that captured them)."""
    total = float(ops["device_us"].sum())
    unattributed = float(ops.loc[ops["op"] == UNATTRIBUTED_OP, "device_us"].sum())
    replay = float(ops.loc[ops["op"] == GRAPH_REPLAY_OP, "device_us"].sum())
    iterations = ops["iteration"].nunique()
    return {"device_pct": 100.0 * (total - unattributed - replay) / total if total else 100.0,
            "unattributed_ms": _ms(unattributed, iterations), "graph_replay_ms": _ms(replay, iterations)}


def coverage_warnings(result: dict) -> list[str]:
    missing = 100.0 - result["device_pct"]
    if missing <= COVERAGE_TOLERANCE_PCT:
        return []
    return [f"{missing:.1f}% of device time reached no operator ({result['graph_replay_ms']:.3f} ms of CUDA-graph "
            f"replays, {result['unattributed_ms']:.3f} ms launched outside every operator per inference)"]


def roofline_block(ops, iterations: int, device: str, precision: str, quant: str, environment: dict) -> dict:
    """The roofline block of summary.json: the device's spec, the roofs used, and the per-group figures."""
    from ngbench.roofline.specs import device_spec, peak_name

    spec = device_spec(environment.get("gpu", "")) if str(device).startswith("cuda") else None
    peak = peak_name(precision, quant)
    measured = (environment.get("bandwidth") or {}).get("gbs")
    bandwidth = measured or (spec or {}).get("memory_gbs")
    peak_tflops = (spec or {}).get("peak_tflops", {}).get(peak)
    return {"device": (spec or {}).get("name"), "spec": spec, "peak": peak, "peak_tflops": peak_tflops,
            "bandwidth_gbs": bandwidth, "bandwidth_source": "measured" if measured else "spec" if bandwidth else None,
            "groups": roofline_totals(ops, iterations, bandwidth, peak_tflops)}


def inside_operators(ops, kernels, device: str, precision: str, quant: str, environment: dict) -> dict:
    """The summary's blocks about what happens inside the operators, from the classified op rows (with FLOPs and
    bytes) and the kernel rows (with their class): kernel_classes, unmapped_kernels, roofline, coverage."""
    from ngbench.taxonomy import unmapped_kernels

    iterations = int(ops["iteration"].nunique())
    return {"kernel_classes": kernel_class_totals(kernels, iterations), "unmapped_kernels": unmapped_kernels(kernels),
            "roofline": roofline_block(ops, iterations, device, precision, quant, environment),
            "coverage": coverage(ops)}
