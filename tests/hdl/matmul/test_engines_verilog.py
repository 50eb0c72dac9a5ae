"""The generated Verilog of both engines, on Verilator, through the cocotb testbench."""

import json
from dataclasses import asdict

import pytest
from amaranth.back import verilog

from ternforge.gen.elaborate import MODULE_NAMES
from ternforge.hdl.matmul.engines import matmul_engine
from ternforge.hdl.matmul.parameters import TlmmParameters
from ternforge.sim import verilator

POINTS = [
    TlmmParameters(kind="tlmm", group_size=3, groups_per_cycle=4, rows=4, max_k=512,
                   max_tokens=4),
    TlmmParameters(kind="tlmm", group_size=2, groups_per_cycle=3, rows=5, max_k=96,
                   max_tokens=1),
    TlmmParameters(kind="tlmm", group_size=4, groups_per_cycle=2, rows=3, max_k=200,
                   max_tokens=3),
    TlmmParameters(kind="tlmm-lutram", group_size=3, groups_per_cycle=4, rows=4, max_k=512,
                   max_tokens=2, max_n=64),
    TlmmParameters(kind="tlmm-lutram", group_size=2, groups_per_cycle=2, rows=3, max_k=96,
                   max_tokens=1, max_n=30),
    TlmmParameters(kind="tlmm-lutram", group_size=2, groups_per_cycle=1, rows=17, max_k=40,
                   max_tokens=1, max_n=40),
    TlmmParameters(kind="adder", group_size=3, groups_per_cycle=4, rows=4, max_k=512,
                   max_tokens=4),
    TlmmParameters(kind="adder", group_size=2, groups_per_cycle=3, rows=5, max_k=96,
                   max_tokens=1),
]


def point_id(p):
    return f"{p.kind}-G{p.group_size}P{p.groups_per_cycle}R{p.rows}T{p.max_tokens}"


@pytest.mark.verilator
@pytest.mark.parametrize("parameters", POINTS, ids=[point_id(point) for point in POINTS])
def test_engine_on_verilator(parameters, tmp_path):
    toplevel = MODULE_NAMES[parameters.kind]
    build = verilator.build(verilog.convert(matmul_engine(parameters), name=toplevel),
                            toplevel=toplevel)
    verilator.run(build, toplevel=toplevel, test_module="tb.tlmm_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(asdict(parameters))})
