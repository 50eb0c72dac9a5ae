"""The attention unit (engine, KV-cache reader and appender) and the generated top (with its
sequencer) as Verilog on Verilator, through the cocotb testbench."""

import json

import pytest
from amaranth.back import verilog

from ternforge.gen.accelerator import accelerator_parameters
from ternforge.gen.config import DesignConfig
from ternforge.hdl.accelerator.model import preset
from ternforge.sim import verilator
from ternforge.sim.jobs.attention import AttentionJob

ACCELERATOR_07B = accelerator_parameters(DesignConfig(), preset("bitnet-0.7b"))

# the build `ternforge run attention` makes for prefill at D = 16 (tests/gen/cli/
# test_attention.py), and the generated top (sequencer and unit: one start a layer) with
# eight lanes over D = 16 and wide tiles of 2 rows (the shape of a decode unit) on a 256-bit
# port, whose word is one beat: a row's key beats then its value beats, a beat a cycle (the
# others take a key beat and a value beat a cycle); its lanes' parts of E = 2 elements make
# the accumulation wait after each key (3 cycles at 2 rows, 6 at one)
JOBS = [AttentionJob.from_dict(dict(format="float32", head_dim=16, rows=8, cols=8,
                                    max_keys=1024, lanes=2, data_bits=512)),
        AttentionJob.from_dict(dict(format="float32", head_dim=16, rows=2, cols=32,
                                    max_keys=1024, lanes=8, data_bits=256, sequenced=True)),
        # the unit of the 0.7B accelerator's default design (tiles of one query row by 64
        # keys, eight lanes, D = 96, on its 512-bit bus)
        AttentionJob(ACCELERATOR_07B.attention)]


@pytest.mark.verilator
@pytest.mark.parametrize("job", JOBS, ids=[j.module_name for j in JOBS])
def test_attention_on_verilator(job, tmp_path):
    name = job.module_name
    build = verilator.build(verilog.convert(job.component(), name=name), toplevel=name)
    verilator.run(build, toplevel=name, test_module="ternforge.tb.attention_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(job.to_dict())})
