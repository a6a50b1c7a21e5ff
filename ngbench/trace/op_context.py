"""What surrounds an operator in a trace: the phase of a training step it ran in, and its module scope.

- phase: `backward` for an operator inside (or being) one of the autograd engine's ranges
  `autograd::engine::evaluate_function: <Node>` on its thread; `optimizer` inside an `Optimizer.step#...` or
  `Optimizer.zero_grad#...` range (torch.optim writes them); `forward` otherwise.
- module scope, first found of: what the operator carries itself (`Module Hierarchy`, with_modules=True on
  TorchScript; the `ngbench module` args of a trace.json that ngbench saved), the innermost enclosing
  `ngbench::module <path> [<Class>]` range, or the stack of enclosing `nn.Module: <Class>_<k>` events that
  with_stack=True records for eager modules (path `Sequential_0.Linear_1`, class `Linear`). A backward
  operator takes the scope of the forward operator with its autograd sequence number, so the module-wins
  rule of the taxonomy applies to both phases. Without any of these the scope is empty.
"""

from __future__ import annotations

import re

import numpy as np

from ngbench.trace.kineto import MODULE_EVENT_PREFIX, MODULE_PREFIX

BACKWARD_RANGE = "autograd::engine::evaluate_function: "
OPTIMIZER_RANGE = re.compile(r"^Optimizer\.(step|zero_grad)#")
MODULE_INSTANCE = re.compile(r"_\d+$")
HIERARCHY_PART = re.compile(r"^(?P<name>[^()]*)\((?P<cls>[^()]*)\)$")


def _enclosed(ops, ranges) -> np.ndarray:
    """Whether each op (tid, ts, end) lies inside one of `ranges` (tid, ts, end) of its own thread."""
    from ngbench.trace.attribution import outermost

    inside = np.zeros(len(ops), dtype=bool)
    if ranges.empty or ops.empty:
        return inside
    op_tids, op_ts, op_end = ops["tid"].to_numpy(), ops["ts"].to_numpy(), ops["end"].to_numpy()
    for tid, mine in ranges.groupby("tid"):
        top = outermost(mine.sort_values(["ts", "end"], ascending=[True, False]))
        starts, ends = top["ts"].to_numpy(), top["end"].to_numpy()
        rows = np.flatnonzero(op_tids == tid)
        j = np.searchsorted(starts, op_ts[rows], side="right") - 1
        inside[rows] = (j >= 0) & (op_end[rows] <= ends[np.clip(j, 0, None)])
    return inside


def parse_scope(text: str) -> tuple[str, str]:
    """(module path, module class) of a scope an event carries: `path [Class]` (ngbench) or TorchScript's
    `TOP(Net)::layer1(Sequential)::0(Block)::conv1(Conv2d)`."""
    if not text:
        return "", ""
    if text.endswith("]"):
        path, _, cls = text.rpartition(" [")
        return ("" if path == "<root>" else path), cls[:-1]
    parts = [HIERARCHY_PART.match(part) for part in text.split("::")]
    parts = [p for p in parts if p is not None]
    if not parts:
        return "", ""
    return ".".join(p["name"] for p in parts[1:]), parts[-1]["cls"]


def _sweep(ops, scopes) -> list[tuple[str, str]]:
    """Innermost enclosing scope of each op of one thread (ops and scopes: ts, end, name). Scopes that ended
    are dropped even when a sibling that overlaps them is still open (records of one thread should nest, but
    timestamps can be off by a little)."""
    marks = sorted([(t, 0, -e, n) for t, e, n in zip(scopes["ts"], scopes["end"], scopes["name"])]
                   + [(t, 1, 0.0, i) for i, t in enumerate(ops["ts"])])
    open_scopes: list[tuple[float, str]] = []
    found = [("", "")] * len(ops)
    last: tuple = (None, ("", ""))
    for ts, is_op, negative_end, payload in marks:
        while open_scopes and open_scopes[-1][0] < ts:
            open_scopes.pop()
        if not is_op:
            open_scopes.append((-negative_end, payload))
            continue
        if open_scopes and open_scopes[0][0] < ts:
            open_scopes = [scope for scope in open_scopes if scope[0] >= ts]
        if open_scopes:
            key = tuple(name for _, name in open_scopes)
            if key != last[0]:  # consecutive ops mostly share their scope stack
                last = (key, _scope_of_stack(key))
            found[payload] = last[1]
    return found


def _scope_of_stack(names: tuple[str, ...]) -> tuple[str, str]:
    innermost = names[-1]
    if innermost.startswith(MODULE_PREFIX):
        return parse_scope(innermost[len(MODULE_PREFIX):])
    stack = [n[len(MODULE_EVENT_PREFIX):] for n in names if n.startswith(MODULE_EVENT_PREFIX)]
    return ".".join(stack), MODULE_INSTANCE.sub("", stack[-1])


class OpContext:
    """The ranges of one trace's event table that give operators their phase and module scope; `apply`
    adds phase, module and module_type to a window's operators (tid, ts, end, seq_nr, scope)."""

    def __init__(self, events):
        names, cats = events["name"], events["cat"]
        is_op = cats == "cpu_op"
        self.backward = events[is_op & names.str.startswith(BACKWARD_RANGE)]
        self.optimizer = events[cats.isin(("cpu_op", "user_annotation")) & names.str.match(OPTIMIZER_RANGE)]
        self.scopes = events[((cats == "user_annotation") & names.str.startswith(MODULE_PREFIX))
                             | ((cats == "python_function") & names.str.startswith(MODULE_EVENT_PREFIX))]
        self.forward_ops = events[is_op & (events["seq_nr"] >= 0) & ~names.str.startswith(BACKWARD_RANGE)]

    def phases(self, ops) -> np.ndarray:
        """The phase of each op row (tid, ts, end)."""
        phase = np.full(len(ops), "forward", dtype=object)
        phase[_enclosed(ops, self.optimizer)] = "optimizer"
        phase[_enclosed(ops, self.backward)] = "backward"
        return phase

    def scopes_of(self, ops) -> list[tuple[str, str]]:
        """(module, module_type) of each op row from what it carries or what encloses it on its thread."""
        found = [parse_scope(t) for t in ops["scope"].fillna("")] if "scope" in ops else [("", "")] * len(ops)
        missing = np.array([not cls for _, cls in found], dtype=bool)
        if self.scopes.empty or not missing.any():
            return found
        ops = ops.reset_index(drop=True)
        for tid, mine in ops[missing].groupby("tid"):
            scopes = self.scopes
            on_thread = scopes[(scopes["tid"] == tid) & (scopes["end"] >= mine["ts"].min())
                               & (scopes["ts"] <= mine["end"].max())]
            for index, scope in zip(mine.index, _sweep(mine, on_thread)):
                found[index] = scope
        return found

    def backward_scopes(self, ops, phase: np.ndarray, found: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Backward ops without a scope take that of the forward operator with their autograd sequence number."""
        wanted = {int(s) for s, p, (_, cls) in zip(ops["seq_nr"], phase, found) if p == "backward" and not cls and s >= 0}
        if not wanted:
            return found
        forward = self.forward_ops[self.forward_ops["seq_nr"].isin(wanted)]
        forward = forward[self.phases(forward) == "forward"]
        by_seq = {int(seq): scope for seq, scope in zip(forward["seq_nr"], self.scopes_of(forward)) if scope[1]}
        return [by_seq.get(int(s), scope) if p == "backward" and not scope[1] else scope
                for s, p, scope in zip(ops["seq_nr"], phase, found)]

    def apply(self, ops):
        """`ops` with the columns phase, module and module_type."""
        phase = self.phases(ops)
        found = self.scopes_of(ops)
        if "seq_nr" in ops:
            found = self.backward_scopes(ops, phase, found)
        return ops.assign(phase=phase, module=[m for m, _ in found], module_type=[c for _, c in found])
