"""The MAC-array engines' generated Verilog on Verilator, through the cocotb testbench: every
architecture and variant at two sizes and operand widths."""

import json
from dataclasses import asdict

import pytest
from amaranth.back import verilog

from ternforge.hdl.mac.array import mac_array
from ternforge.hdl.mac.parameters import ARCHITECTURES, VARIANTS, MacArrayParameters
from ternforge.sim import verilator

POINTS = [dict(size=4, width=8, signed=True, max_k=300),
          dict(size=2, width=16, signed=False, max_k=1024)]
ENGINES = [MacArrayParameters(arch=arch, variant=variant, **point) for point in POINTS
           for arch in ARCHITECTURES for variant in VARIANTS]


def engine_id(parameters):
    kind = "int" if parameters.signed else "uint"
    return f"{parameters.arch}-{parameters.variant}-{parameters.size}x{kind}{parameters.width}"


@pytest.mark.verilator
@pytest.mark.parametrize("parameters", ENGINES, ids=[engine_id(p) for p in ENGINES])
def test_mac_array_on_verilator(parameters, tmp_path):
    name = parameters.module_name
    build = verilator.build(verilog.convert(mac_array(parameters), name=name), toplevel=name)
    verilator.run(build, toplevel=name, test_module="tb.mac_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(asdict(parameters))})
