"""``gen.reports.fp``: synthesised entries of the floating-point units with their latencies."""

import pytest

from ternforge.gen.reports.fp import float_report


@pytest.mark.yosys
def test_float_report_entries():
    report = float_report(["add", "reciprocal"], ["bfloat16"])
    add, reciprocal = report["units"]
    assert (add["op"], add["format"], add["latency"], add["DSP"]) == ("add", "bfloat16", 4, 0)
    assert add["LUT"] > 100 and reciprocal["LUT"] > 0 and reciprocal["latency"] == 6
