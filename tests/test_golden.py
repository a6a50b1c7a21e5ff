"""The trace post-processing gives the tables it gave before it was made fast: the run path
(`KinetoProfiler.result` with calibrated and zero costs, one and two streams, a CPU run, CUDA-graph replays
split) and the analyze path (every hand-made fixture, generated training and inference traces), against the
golden copy in tests/fixtures/golden/ that benchmarks/attribution_golden.py wrote from the code before
(equal; floats within 1e-9 relative). A change meant to alter these outputs rewrites it:
`python benchmarks/attribution_golden.py save tests/fixtures/golden`."""

import sys

import pytest
from conftest import ROOT

GOLDEN = ROOT / "tests" / "fixtures" / "golden"


@pytest.mark.slow
def test_post_processing_outputs_equal_the_golden_copy(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from attribution_golden import cases, check

    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(cases(tmp_path / "names", "small"))
    found = check(GOLDEN, "small", tmp_path / "work")
    assert not found, "\n".join(found[:20])


def test_golden_comparison_sees_a_changed_value():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import pandas as pd
    from attribution_golden import differences

    table = pd.DataFrame({"op": ["a", "b"], "wall_us": [4.947295017162706, 0.0], "kernels": [["k"], []]})
    assert differences(table, table.assign(wall_us=[4.947295017162706 * (1 + 1e-12), 0.0], extra=1)) == []
    assert differences(table, table.assign(wall_us=[4.947294522433253, 0.0])) == [
        ".wall_us[0]: 4.947295017162706 != 4.947294522433253"]
    assert differences(table, table.assign(kernels=[["k"], ["x"]])) == [".kernels[1]: [] != ['x']"]
    assert differences(table, table.iloc[:1]) == [": columns [] missing or rows 2 != 1"]
    assert differences({"groups": {"GEMM": 1.0}}, {"groups": {}}) == [".groups: keys ['GEMM'] missing"]
