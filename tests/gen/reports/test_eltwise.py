"""``gen.reports.eltwise``: synthesised entries of the element-wise stages with their cycle
models, and a bad hidden size refused by ``report eltwise``."""

import pytest

from cli_support import invoke
from ternforge.boards import get_board
from ternforge.gen.reports.eltwise import eltwise_report


@pytest.mark.yosys
def test_eltwise_report_entries():
    board = get_board("kv260")
    report = eltwise_report(board, format="bfloat16", hidden=16, ops=("residual", "quant"))
    residual, quant = report["stages"]
    assert residual["decode_cycles"] == 16 + residual["latency"]
    assert quant["buffer_bits"] == 16 * 16 and quant["LUT"] > residual["LUT"] > 0
    assert quant["prefill_us"] == round(quant["prefill_cycles"] / board.clock_hz * 1e6, 3)


def test_report_eltwise_rejects_a_bad_hidden_size(capsys, tmp_path):
    code, _, err = invoke(capsys, "report", "eltwise", "--hidden", "1", "--out",
                          str(tmp_path / "r.json"))
    assert (code, err) == (2, "ternforge: Hidden size must be an integer from 2 to 65536, "
                              "not 1\n")
    assert not (tmp_path / "r.json").exists()
