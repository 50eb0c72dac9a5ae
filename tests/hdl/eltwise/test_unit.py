"""The element-wise stages and unit's generated Verilog on Verilator, through the cocotb
testbench: every stage in float32, and the stages with formats of their own in float16 and
bfloat16."""

import json

import pytest
from amaranth.back import verilog

from ternforge.sim import verilator
from ternforge.sim.jobs.eltwise import OPS, EltwiseJob

JOBS = [EltwiseJob(op=op, format="float32", max_length=64) for op in OPS] + [
    EltwiseJob(op="rmsnorm", format="float16", max_length=64),
    EltwiseJob(op="silu", format="bfloat16", max_length=64)]


@pytest.mark.verilator
@pytest.mark.parametrize("job", JOBS, ids=[f"{j.op}-{j.format}" for j in JOBS])
def test_eltwise_on_verilator(job, tmp_path):
    name = job.module_name
    build = verilator.build(verilog.convert(job.component(), name=name), toplevel=name)
    verilator.run(build, toplevel=name, test_module="ternforge.tb.eltwise_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(job.__dict__)})
