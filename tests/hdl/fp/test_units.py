"""The floating-point units' generated Verilog on Verilator, through the cocotb testbench:
every operator and function in every format."""

import json

import pytest
from amaranth.back import verilog

from ternforge.hdl.fp.format import FLOAT_FORMATS
from ternforge.hdl.fp.parameters import OPERATIONS, FloatUnitParameters
from ternforge.hdl.fp.units import float_unit
from ternforge.sim import verilator

# Random operations per run: the million-pair check is benchmarks/float_bench.py.
COUNTS = {"add": 100_000, "mul": 100_000, "fma": 10_000}
# every operator in every format; the functions (bit-exact in every format in the Amaranth
# simulator, tests/test_float_functions.py) in float16 and float32 here
CASES = [(op, fmt) for op in OPERATIONS for fmt in FLOAT_FORMATS
         if op in ("add", "mul", "fma") or fmt != "bfloat16"]


#: by default every operator in float32 and one further format each for the three
#: arithmetic ones, one function in float16; the rest with ``-m extended``
DEFAULT = {("add", "float16"), ("mul", "bfloat16"), ("fma", "float16"), ("exp", "float16")}


@pytest.mark.verilator
@pytest.mark.parametrize("op, fmt", [
    pytest.param(op, fmt, id=f"{op}-{fmt}", marks=() if fmt == "float32" or (op, fmt) in DEFAULT
                 else pytest.mark.extended) for op, fmt in CASES])
def test_float_unit_on_verilator(op, fmt, tmp_path):
    parameters = FloatUnitParameters(op, fmt)
    name = parameters.module_name
    build = verilator.build(verilog.convert(float_unit(parameters), name=name), toplevel=name)
    verilator.run(build, toplevel=name, test_module="ternforge.tb.float_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(
                      {"op": op, "format": fmt, "count": COUNTS.get(op, 3000)})})
