"""The GEMV/GEMM top's generated Verilog on Verilator, through the cocotb testbench."""

import json

import pytest
from amaranth.back import verilog

from ternforge.gen.config import EngineConfig
from ternforge.gen.elaborate import GEMV_TOP, gemv_top
from ternforge.sim import verilator

CONFIG = EngineConfig(group_size=3, groups_per_cycle=2, rows=4, max_k=256, max_n=128,
                      table_tokens=2)


@pytest.mark.verilator
def test_gemv_top_on_verilator(tmp_path):
    top = gemv_top(CONFIG, data_bits=32, buffer_depth=64)
    build = verilator.build(verilog.convert(top, name=GEMV_TOP), toplevel=GEMV_TOP)
    verilator.run(build, toplevel=GEMV_TOP, test_module="tb.gemv_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps({"config": CONFIG.__dict__,
                                                   "data_bits": 32})})
