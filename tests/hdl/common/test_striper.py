"""The AXI striper: a 512-bit port on four 128-bit ones, DMA copies through it exact under
random stalls on every narrow channel and, without stalls, exactly as fast as the copy unit's
cycle model on :meth:`MemoryTiming.striped`'s timing."""

import pytest

from ternforge.tb.memory_tb import build as build_copies
from ternforge.tb.memory_tb import run
from ternforge.hdl.accelerator.parameters import CopyUnitParameters
from ternforge.hdl.common.striper import AxiStriper
from ternforge.hdl.common.timing import MemoryTiming

DATA_BITS, PORTS, WORDS = 512, 4, 16384
WIDE = DATA_BITS // 8
#: the testbench's cycle between a command's handshake and the engine taking it
DRIVER_CYCLES = 1


@pytest.fixture(scope="module")
def build():
    return build_copies(2, data_bits=DATA_BITS, words=WORDS, ports=PORTS)


def _run(build, work, jobs, **memory):
    return run(build, work, jobs, data_bits=DATA_BITS, words=WORDS, ports=PORTS, **memory)


# both engines at once: bursts of 256 wide words across 4 KiB boundaries, odd lengths, one
# word (sources and destinations apart)
JOBS = [[[0, 65536, 300], [40 * WIDE, 131072, 1]],
        [[1500 * WIDE, 196608, 100], [90 * WIDE, 196608 + 200 * WIDE, 33]]]


@pytest.mark.verilator
@pytest.mark.parametrize("stall", [0.3, 0.7])
def test_nothing_is_lost_under_random_stalls_on_every_port(build, tmp_path, stall):
    _run(build, tmp_path, JOBS, stall=stall, latency=5, seed=int(stall * 10))


@pytest.mark.verilator
@pytest.mark.parametrize("latency, write_latency, words", [(20, 10, 1), (20, 10, 200),
                                                           (6, 3, 256)])
def test_a_copy_takes_the_cycle_model_of_the_striped_timing(build, tmp_path, latency,
                                                             write_latency, words):
    # the destination from 1,920 bytes into a page: bursts of 34, 64, ... words
    source, destination = 100 * WIDE, 65536 + 30 * WIDE
    timing = MemoryTiming(latency=latency, write_latency=write_latency)
    cycles = _run(build, tmp_path, [[[source, destination, words]], []], latency=latency,
                  write_latency=write_latency)
    model = CopyUnitParameters(data_bits=DATA_BITS).cycles(
        source, destination, words, memory=timing.striped(PORTS))
    assert cycles == model + DRIVER_CYCLES


def test_one_port_is_the_memory_itself():
    timing = MemoryTiming(latency=7, write_latency=3)
    assert timing.striped(1) == timing
    assert timing.striped(4).write_answer(10) == 3 + 1 + 3 * 10


@pytest.mark.parametrize("arguments, message", [
    ({"ports": 3}, "HP ports must be a power of two, not 3"),
    ({"ports": 16}, "HP ports must be"),
    ({"ports": 4, "data_bits": 100}, "Data bits must be a power of two from 32 to 1024, not 100"),
    ({"ports": 2, "outstanding": 0}, "Outstanding bursts must be"),
])
def test_bad_parameters_are_refused_clearly(arguments, message):
    with pytest.raises(ValueError, match=message):
        AxiStriper(**arguments)
