"""The MAC-array engines' generated Verilog on Verilator, through the cocotb testbench: every
architecture and variant at two sizes and operand widths."""

import json

import pytest
from amaranth.back import verilog

from ternforge.sim.jobs.mac import MacConfig
from ternforge.hdl.mac.array import MAC_ARCHITECTURES, VARIANTS
from ternforge.sim import verilator

POINTS = [dict(size=4, width=8, signed=True, max_k=300),
          dict(size=2, width=16, signed=False, max_k=1024)]
CONFIGS = [MacConfig(arch=arch, variant=variant, **point) for point in POINTS
           for arch in MAC_ARCHITECTURES for variant in VARIANTS]


def config_id(config):
    kind = "int" if config.signed else "uint"
    return f"{config.arch}-{config.variant}-{config.size}x{kind}{config.width}"


@pytest.mark.verilator
@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_mac_array_on_verilator(config, tmp_path):
    name = config.module_name
    build = verilator.build(verilog.convert(config.component(), name=name), toplevel=name)
    verilator.run(build, toplevel=name, test_module="tb.mac_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(config.__dict__)})
