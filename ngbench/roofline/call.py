"""What the roofline formulas see of one operator call (shapes, dtypes, input values, whether it ran device
work), and what they return (`Work`: FLOPs and bytes)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Bytes per element of the dtype names the profilers write: Kineto ("c10::Half", "long int"), ONNX Runtime
# ("float16", "int64").
DTYPE_BYTES = {
    "double": 8, "float": 4, "c10::half": 2, "c10::bfloat16": 2, "long int": 8, "long": 8, "int": 4,
    "short int": 2, "short": 2, "signed char": 1, "unsigned char": 1, "bool": 1, "c10::complex<float>": 8,
    "c10::complex<double>": 16, "c10::float8_e4m3fn": 1, "c10::float8_e5m2": 1, "c10::qint8": 1,
    "c10::quint8": 1, "c10::qint32": 4, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int64": 8,
    "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8,
}
FLOATING = {"double", "float", "c10::half", "c10::bfloat16", "float16", "bfloat16", "float32", "float64"}
SCALAR_TYPE_NAMES = {0: "unsigned char", 1: "signed char", 2: "short int", 3: "int", 4: "long int", 5: "c10::half",
                     6: "float", 7: "double", 11: "bool", 15: "c10::bfloat16"}    # c10::ScalarType codes
SCALAR_TYPE_BYTES = {code: DTYPE_BYTES[name] for code, name in SCALAR_TYPE_NAMES.items()}
BOOL_RESULT = re.compile(r"^(aten::(eq|ne|lt|le|gt|ge|isinf|isnan|isfinite|isin|signbit|logical_\w+)_?|"
                         r"Equal|Less|Greater|LessOrEqual|GreaterOrEqual|Not|And|Or|Xor|IsNaN|IsInf)$")
ELEMENTWISE_RULES = ("elementwise", "activation", "onnx_elementwise", "onnx_activation")
FLOPS_PER_ELEMENT = {"aten::addcmul": 2, "aten::addcdiv": 2, "aten::lerp": 2, "aten::dropout": 0,
                     "aten::native_dropout": 0, "aten::feature_dropout": 0, "Dropout": 0, "aten::where": 0,
                     "Where": 0, "aten::masked_fill": 0, "aten::masked_fill_": 0, "BiasGelu": 2, "BiasAdd": 2}
NORM_FLOPS_PER_ELEMENT = {"layer": 7, "group": 7, "batch": 4, "instance": 7, "rms": 4}
SOFTMAX_FLOPS_PER_ELEMENT = 5        # max, subtract, exp, sum, divide


@dataclass(frozen=True)
class Work:
    """What one operator instance did: FLOPs and bytes moved (None where unknown)."""

    flops: float | None
    bytes: float | None


UNKNOWN = Work(None, None)


@dataclass(frozen=True)
class Tensor:
    shape: tuple[int, ...]
    itemsize: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


@dataclass(frozen=True)
class Call:
    """One operator call as the formulas see it. `launched`: whether it ran device work (None: not visible,
    a CPU run)."""

    op: str
    shapes: tuple
    dtypes: tuple
    values: tuple = ()
    launched: bool | None = None

    def tensor(self, i: int) -> Tensor | None:
        """Input i when it is a tensor of a known dtype."""
        if i >= len(self.dtypes) or i >= len(self.shapes):
            return None
        itemsize = DTYPE_BYTES.get(str(self.dtypes[i]).lower())
        return Tensor(tuple(int(d) for d in self.shapes[i]), itemsize) if itemsize else None

    def tensors(self) -> list[Tensor]:
        return [t for t in (self.tensor(i) for i in range(len(self.dtypes))) if t is not None]

    def value(self, i: int):
        """Input i's value parsed from text: int, float, bool, list of ints, or None (absent / a tensor)."""
        text = str(self.values[i]).strip() if i < len(self.values) else ""
        if text in ("", "None"):
            return None
        if text in ("True", "False"):
            return text == "True"
        if text.startswith("["):
            try:
                return [int(v) for v in text.strip("[]").split(",") if v.strip()]
            except ValueError:
                return None
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text


# ----------------------------------------------------------------------------- shapes
def broadcast(shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    """NumPy broadcasting of `shapes` (None when they do not broadcast)."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        sizes = {s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def per_dimension(value, rank: int) -> list[int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * rank
    if isinstance(value, list) and len(value) in (1, rank):
        return value * rank if len(value) == 1 else value
    return None


def result_itemsize(call: Call) -> int:
    """Element size of an element-wise result: bool for comparisons, else the widest floating input (or the
    widest input), 0-dim tensors joining in only when no other tensor is there (PyTorch's promotion)."""
    if BOOL_RESULT.match(call.op):
        return 1
    typed = [(t, str(call.dtypes[i]).lower()) for i in range(len(call.dtypes)) if (t := call.tensor(i))]
    shaped = [(t, d) for t, d in typed if t.shape] or typed
    floating = [t.itemsize for t, d in shaped if d in FLOATING]
    return max(floating or [t.itemsize for t, _ in shaped])


