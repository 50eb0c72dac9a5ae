"""DDR inside the simulator: the Verilog memory model, and DMA engines sharing its port
through the interconnect, exact under random stalls on every AXI channel and, without stalls,
as fast as the copy unit's cycle model."""

import pytest

from ternforge.tb.memory_tb import build as build_copies
from ternforge.tb.memory_tb import run
from ternforge.hdl.accelerator.parameters import CopyUnitParameters
from ternforge.hdl.common.timing import MemoryTiming

DATA_BITS, WORDS = 64, 4096
#: the testbench's cycle between a command's handshake and the engine taking it
DRIVER_CYCLES = 1


@pytest.fixture(scope="module")
def build():
    return build_copies(2, data_bits=DATA_BITS, words=WORDS)


# both engines at once (sources and destinations apart), across 4 KiB boundaries, with
# bursts of 256 words, odd lengths and a single word
JOBS = [[[0, 16384, 700], [40, 30000, 1]], [[6000, 22000, 300], [9000, 25000, 33]]]


@pytest.fixture(scope="module")
def unstalled(build, tmp_path_factory):
    return run(build, tmp_path_factory.mktemp("unstalled"), JOBS, data_bits=DATA_BITS,
               words=WORDS)


@pytest.mark.verilator
def test_two_engines_copy_exactly_without_stalls(unstalled):
    # 1,034 words each way over one port of a word a cycle
    assert 1034 < unstalled < 1600


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.3, 0.7])
def test_nothing_is_lost_under_random_stalls_on_every_channel(build, tmp_path, unstalled,
                                                              stall):
    cycles = run(build, tmp_path, JOBS, data_bits=DATA_BITS, words=WORDS, stall=stall,
                 latency=5, seed=int(stall * 10))
    assert cycles > unstalled * (1 + stall)  # the stalls did hold the channels back


@pytest.mark.verilator
def test_a_copy_takes_the_copy_units_cycles(build, tmp_path):
    # across a 4 KiB boundary of the destination: two write bursts
    source, destination, words = 640, 16384 + 3840, 64
    timing = MemoryTiming(latency=20, write_latency=10)
    cycles = run(build, tmp_path, [[[source, destination, words]], []], data_bits=DATA_BITS,
                 words=WORDS, latency=timing.latency, write_latency=timing.write_latency)
    model = CopyUnitParameters(data_bits=DATA_BITS).cycles(source, destination, words,
                                                           memory=timing)
    assert cycles == model + DRIVER_CYCLES
