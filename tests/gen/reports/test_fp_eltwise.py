"""``report fp`` and ``report eltwise``: synthesised entries with their cycle models, and bad
input."""

import pytest

from cli_support import invoke
from ternforge.boards import get_board
from ternforge.gen.reports.eltwise import eltwise_report
from ternforge.gen.reports.fp import float_report


@pytest.mark.yosys
def test_float_report_entries():
    report = float_report(["add", "reciprocal"], ["bfloat16"])
    add, reciprocal = report["units"]
    assert (add["op"], add["format"], add["latency"], add["DSP"]) == ("add", "bfloat16", 4, 0)
    assert add["LUT"] > 100 and reciprocal["LUT"] > 0 and reciprocal["latency"] == 6


@pytest.mark.yosys
def test_eltwise_report_entries():
    board = get_board("kv260")
    report = eltwise_report(board, format="bfloat16", hidden=16, ops=("residual", "quant"))
    residual, quant = report["stages"]
    assert residual["decode_cycles"] == 16 + residual["latency"]
    assert quant["buffer_bits"] == 16 * 16 and quant["LUT"] > residual["LUT"] > 0
    assert quant["prefill_us"] == round(quant["prefill_cycles"] / 250e6 * 1e6, 3)


def test_report_eltwise_rejects_a_bad_hidden_size(capsys, tmp_path):
    code, _, err = invoke(capsys, "report", "eltwise", "--hidden", "1", "--out",
                          str(tmp_path / "r.json"))
    assert (code, err) == (2, "ternforge: Maximum length must be an integer from 2 to 65536, "
                              "not 1\n")
    assert not (tmp_path / "r.json").exists()
