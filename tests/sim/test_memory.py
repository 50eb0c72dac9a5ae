"""DDR inside the simulator: the Verilog memory model, and DMA engines sharing its port
through the interconnect, exact under random stalls on every AXI channel."""

import json

import numpy as np
import pytest
from amaranth.back import verilog as verilog_backend

from tb.memory_tb import TOPLEVEL, design
from ternforge.sim import verilator
from ternforge.sim.memory import MEMORY_VERILOG, plusargs, write_image

DATA_BITS, WORDS = 64, 4096


@pytest.fixture(scope="module")
def build():
    text = verilog_backend.convert(design(2, data_bits=DATA_BITS, words=WORDS), name=TOPLEVEL)
    return verilator.build(text + MEMORY_VERILOG, toplevel=TOPLEVEL)


def _run(build, tmp_path, jobs, **memory):
    image = np.random.default_rng(5).integers(0, 256, WORDS * DATA_BITS // 8,
                                              dtype=np.uint8).tobytes()
    write_image(tmp_path / "image.hex", image, data_bits=DATA_BITS)
    job = {"copies": 2, "data_bits": DATA_BITS, "jobs": jobs,
           "image": str(tmp_path / "image.hex"), "result": str(tmp_path / "result.json")}
    verilator.run(build, toplevel=TOPLEVEL, test_module="tb.memory_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps(job)},
                  plusargs=plusargs(image=tmp_path / "image.hex", **memory))
    return json.loads((tmp_path / "result.json").read_text())["cycles"]


# both engines at once (sources and destinations apart), across 4 KiB boundaries, with
# bursts of 256 words, odd lengths and a single word
JOBS = [[[0, 16384, 700], [40, 30000, 1]], [[6000, 22000, 300], [9000, 25000, 33]]]


@pytest.fixture(scope="module")
def unstalled(build, tmp_path_factory):
    return _run(build, tmp_path_factory.mktemp("unstalled"), JOBS)


@pytest.mark.verilator
def test_two_engines_copy_exactly_without_stalls(unstalled):
    # 1,034 words each way over one port of a word a cycle
    assert 1034 < unstalled < 1600


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.3, 0.7])
def test_nothing_is_lost_under_random_stalls_on_every_channel(build, tmp_path, unstalled,
                                                              stall):
    cycles = _run(build, tmp_path, JOBS, stall=stall, latency=5, seed=int(stall * 10))
    assert cycles > unstalled * (1 + stall)  # the stalls did hold the channels back
