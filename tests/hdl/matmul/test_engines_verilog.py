"""The generated Verilog of both engines, on Verilator, through the cocotb testbench."""

import json

import pytest

from ternforge.gen.config import EngineConfig
from ternforge.gen.elaborate import MODULE_NAMES, to_verilog
from ternforge.sim import verilator

POINTS = [
    ("tlmm", EngineConfig(group_size=3, groups_per_cycle=4, rows=4, max_k=512, max_tokens=4)),
    ("tlmm", EngineConfig(group_size=2, groups_per_cycle=3, rows=5, max_k=96, max_tokens=1)),
    ("tlmm", EngineConfig(group_size=4, groups_per_cycle=2, rows=3, max_k=200, max_tokens=3)),
    ("tlmm-lutram", EngineConfig(group_size=3, groups_per_cycle=4, rows=4, max_k=512,
                                 table_tokens=2, max_n=64)),
    ("tlmm-lutram", EngineConfig(group_size=2, groups_per_cycle=2, rows=3, max_k=96,
                                 table_tokens=1, max_n=30)),
    ("tlmm-lutram", EngineConfig(group_size=2, groups_per_cycle=1, rows=17, max_k=40,
                                 table_tokens=1, max_n=40)),
    ("adder", EngineConfig(group_size=3, groups_per_cycle=4, rows=4, max_k=512, max_tokens=4)),
    ("adder", EngineConfig(group_size=2, groups_per_cycle=3, rows=5, max_k=96, max_tokens=1)),
]


def point_id(kind, config):
    engine = config.component(kind)
    return f"{kind}-G{engine.group_size}P{engine.groups_per_cycle}R{engine.rows}T{engine.max_tokens}"


@pytest.mark.verilator
@pytest.mark.parametrize("kind,config", POINTS, ids=[point_id(*point) for point in POINTS])
def test_engine_on_verilator(kind, config, tmp_path):
    toplevel = MODULE_NAMES[kind]
    build = verilator.build(to_verilog(config, kind), toplevel=toplevel)
    verilator.run(build, toplevel=toplevel, test_module="tb.tlmm_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps({"kind": kind, "config": config.__dict__})})
