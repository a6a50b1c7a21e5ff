"""Operator taxonomy: the one place that knows which operator belongs to which group, and which class a
device kernel is by its own name.

The rules are data (`taxonomy.yaml`, ordered named patterns); this module applies them to an op table and
to a kernel table. Classification is done once per distinct key (op, module_type, fused_ops; or kernel
name) and mapped back, so it is cheap even for traces with millions of rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ngbench.schema import IDLE_OP, UNATTRIBUTED_OP

IDLE = "Idle"
OTHER = "Other"
OTHER_KERNEL_CLASS = "other"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern
    group: str
    kind: str


@dataclass(frozen=True)
class Classification:
    kind: str
    group: str
    group_source: str  # module | op | fused | idle | unmapped

    @property
    def is_gemm(self) -> bool:
        return self.group == "GEMM"


@dataclass(frozen=True)
class Taxonomy:
    module_rules: tuple[Rule, ...]
    op_rules: tuple[Rule, ...]
    fused_priority: tuple[str, ...]
    containers: tuple[Rule, ...] = ()
    kernel_rules: tuple[Rule, ...] = ()           # Rule.kind holds the kernel class
    group_kernel_classes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def kernel_rule(self, kernel: str) -> Rule | None:
        """First kernel rule whose pattern matches the kernel's name (None: unmapped, class `other`)."""
        return next((rule for rule in self.kernel_rules if rule.pattern.search(kernel)), None)

    def own_kernel_classes(self, group: str) -> tuple[str, ...]:
        """The kernel classes that are `group`'s own work (taxonomy.yaml `group_kernel_classes`)."""
        return dict(self.group_kernel_classes).get(group, ())
    backward: re.Pattern | None = None

    def is_gemm_op(self, op: str) -> bool:
        """Whether the first op rule that matches `op` is a GEMM rule (the op itself, no module or fused ops)."""
        rule = self.match_op(op)
        return rule is not None and rule.group == "GEMM"

    def is_container(self, name: str) -> bool:
        """Whether a profiler range wraps operators without being one (taxonomy.yaml `containers`)."""
        return any(rule.pattern.search(name) for rule in self.containers)

    def forward_names(self, op: str) -> tuple[str, ...]:
        """The forward aten op names a backward op `autograd::engine::evaluate_function: <X>Backward<k>`
        differentiates (see `backward` in taxonomy.yaml); () for any other op."""
        match = self.backward.match(op) if self.backward is not None else None
        if match is None:
            return ()
        name = re.sub(r"(\d)D", r"\1d", match["forward"])
        name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
        return (f"aten::{name}", f"aten::_{name}")

    def match_op(self, op: str) -> Rule | None:
        """First op rule whose pattern matches `op` (tried as given and with an `aten::` prefix; a backward op
        as the forward op it differentiates)."""
        candidates = self.forward_names(op) or ((op,) if "::" in op else (op, f"aten::{op}"))
        for rule in self.op_rules:
            if any(rule.pattern.search(name) for name in candidates):
                return rule
        return None

    def match_module(self, module_type: str) -> Rule | None:
        if not module_type:
            return None
        return next((r for r in self.module_rules if r.pattern.search(module_type)), None)

    def classify_one(self, op: str, module_type: str = "", fused_ops: tuple[str, ...] = ()) -> Classification:
        """Classify one operator (see the rule order in taxonomy.yaml)."""
        if op == IDLE_OP:
            return Classification("idle", IDLE, "idle")
        op_rule = self.match_op(op) if op != UNATTRIBUTED_OP else None
        if op_rule is not None and op_rule.group == "GEMM":
            return Classification(op_rule.kind, "GEMM", "op")
        if len(fused_ops) > 1:
            return self._classify_fused(fused_ops)
        module_rule = self.match_module(module_type)
        if module_rule is not None:
            return Classification(module_rule.kind, module_rule.group, "module")
        if op_rule is not None:
            return Classification(op_rule.kind, op_rule.group, "op")
        if len(fused_ops) == 1:
            return self._classify_fused(fused_ops)
        return Classification("unmapped", OTHER, "unmapped")

    def _classify_fused(self, fused_ops: tuple[str, ...]) -> Classification:
        matched = [rule for rule in map(self.match_op, fused_ops) if rule is not None]
        if not matched:
            return Classification("unmapped", OTHER, "unmapped")
        rank = {group: i for i, group in enumerate(self.fused_priority)}
        best = min(matched, key=lambda r: rank.get(r.group, len(rank)))
        return Classification(best.kind, best.group, "fused")


def _rules(entries: list[dict] | None, group: str | None = None) -> tuple[Rule, ...]:
    return tuple(
        Rule(e["name"], re.compile(e["pattern"]), e["group"] if group is None else group, e.get("kind", e["name"]))
        for e in entries or ()
    )


@cache
def load_taxonomy(path: str | None = None) -> Taxonomy:
    """Read the taxonomy table (the packaged taxonomy.yaml unless `path` is given)."""
    import yaml

    if path is None:
        text = resources.files("ngbench").joinpath("taxonomy.yaml").read_text()
    else:
        with open(path) as handle:
            text = handle.read()
    # libyaml's loader where PyYAML has it: the same data, ~10x faster than the pure-Python one (~0.1 s)
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    kernel_rules = tuple(Rule(e["name"], re.compile(e["pattern"]), "", e["class"]) for e in data.get("kernel_rules") or ())
    unknown = {rule.kind for rule in kernel_rules} - set(data.get("kernel_classes") or ())
    if unknown:
        raise ValueError(f"taxonomy kernel_rules use classes not listed in kernel_classes: {sorted(unknown)}")
    own = tuple((group, tuple(classes)) for group, classes in (data.get("group_kernel_classes") or {}).items())
    backward = (data.get("backward") or {}).get("pattern")
    return Taxonomy(_rules(data["module_rules"]), _rules(data["op_rules"]), tuple(data["fused_priority"]),
                    _rules(data.get("containers"), group=""), kernel_rules, own,
                    re.compile(backward) if backward else None)


def classify(ops, taxonomy: Taxonomy | None = None):
    """Return `ops` with the columns kind, group, group_source and is_gemm added."""
    taxonomy = taxonomy or load_taxonomy()
    ops = ops.copy()
    fused = [tuple(v) if v is not None else () for v in ops.get("fused_ops", [()] * len(ops))]
    module_types = ops["module_type"].fillna("").tolist() if "module_type" in ops else [""] * len(ops)
    keys = list(zip(ops["op"].tolist(), module_types, fused))   # lists: iterating a str column is slow
    memo = {key: taxonomy.classify_one(*key) for key in set(keys)}
    results = [memo[key] for key in keys]
    ops["kind"] = [r.kind for r in results]
    ops["op_group"] = [r.group for r in results]
    ops["group_source"] = [r.group_source for r in results]
    ops["is_gemm"] = [r.is_gemm for r in results]
    return ops


def unmapped_ops(classified) -> dict[str, int]:
    """Native names that no rule maps (they are counted as Other), with their instance counts."""
    rows = classified[classified["group_source"] == "unmapped"]
    return {str(k): int(v) for k, v in rows["op"].value_counts().items()}


def classify_kernels(kernels, taxonomy: Taxonomy | None = None):
    """Return the kernel table with `kernel_class` (by each kernel's own name) and `kernel_rule` ('' where no
    rule matched: the kernel is `other` and unmapped)."""
    taxonomy = taxonomy or load_taxonomy()
    kernels = kernels.copy()
    names = kernels["kernel"].astype(str).tolist()
    memo = {name: taxonomy.kernel_rule(name) for name in set(names)}
    kernels["kernel_class"] = [memo[n].kind if memo[n] is not None else OTHER_KERNEL_CLASS for n in names]
    kernels["kernel_rule"] = [memo[n].name if memo[n] is not None else "" for n in names]
    return kernels


def unmapped_kernels(classified) -> dict[str, int]:
    """Kernel names that no kernel rule maps (they are class `other`), with their instance counts."""
    rows = classified[classified["kernel_rule"] == ""]
    return {str(k): int(v) for k, v in rows["kernel"].value_counts().items()}
