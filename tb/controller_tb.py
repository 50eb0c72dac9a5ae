"""cocotb testbench of the controller and the units behind it: a program in DDR runs from one
start on the accelerator.

Design: one build for every machine test, the simulation accelerator of the tiny model
(:data:`ACCELERATOR`: the controller, the copy, vector, GEMV, RoPE and attention units, the
interconnect) inside the Verilog memory, built by :func:`ternforge.sim.machine.build` as
``ternforge run model`` builds its own (with a longer context).

Driver: :func:`ternforge.sim.host.run_program` over the simulator's backend
(:class:`~ternforge.sim.cocotb.model.SimulatorBackend`) writes the program's address and
length and starts it. Monitor: the ``done`` output, the ``status`` and ``cycles`` registers and
the memory read back through VPI. Model: each
test's program run step by step in Python with the golden models. Checker: memory exact, under
the memory's random stalls. The job is ``TERNFORGE_TB`` (JSON: ``programs``, ``[address,
length]`` each, run one after another, or one ``program`` and ``length`` run ``runs`` times;
the ``expected`` memory file or regions to ``check``: ``[address, bytes as hex]``; ``writes``
to make first, ``[address, bytes as hex]``; and a ``result`` file for each program's
``cycles`` and its ``units``' busy cycles, a JSON list).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ternforge.hdl.accelerator.model import preset
from ternforge.hdl.accelerator.parameters import AcceleratorParameters
from ternforge.hdl.common.timing import MemoryTiming
from ternforge.sim import activity, machine
from ternforge.sim.runtime import Program

#: the accelerator every machine test runs on
ACCELERATOR = AcceleratorParameters.for_simulation(preset("tiny"), context=32)
#: the same bus striped over two 64-bit DDR ports (the model's run and the cycle models on
#: it): the accelerator whose switching activity is measured, so that its build, made able to
#: record a SAIF (:func:`build`), is that measurement's too
STRIPED = activity.REFERENCE
#: the tiny model's sizes on the default design's bus: 512 bits striped over four 128-bit HP
#: ports, a vector unit of four lanes, the default's engine (its weight beat at least a bus
#: word); the vector unit's values and cycle model on it. It is also the accelerator that
#: ``ternforge test accelerator`` builds for the configuration ``tests/gen/cli/test_test.py``
#: gives it (one build for both)
WIDE = AcceleratorParameters.for_model(preset("tiny"), context=32, groups_per_cycle=8,
                                       rows=16, lanes=2, tile_rows=4, tile_cols=4,
                                       data_bits=512, hp_ports=4, vector_lanes=4)
#: its memory
MEMORY_BYTES = 1 << 21
DATA_BITS = ACCELERATOR.data_bits
WORD = DATA_BITS // 8
#: the memory's timing in :func:`run` (before its stalls)
TIMING = MemoryTiming(latency=6, write_latency=10)


def program(*instructions, word_bytes: int = WORD) -> bytes:
    """A program of ``(unit, layout, fields)`` or ``(unit, layout, fields, wait)``
    instructions (:meth:`ternforge.sim.runtime.Program.add`, which waits by default; here an
    instruction waits only if asked) on a bus of ``word_bytes`` words."""
    words = Program(words=2, word_bytes=word_bytes)
    for unit, layout, fields, *wait in instructions:
        words.add(unit, layout, fields, wait=bool(wait and wait[0]))
    return words.bytes()


def build(parameters: AcceleratorParameters = ACCELERATOR):
    """The Verilator build of ``parameters``' accelerator on :data:`MEMORY_BYTES`
    (:func:`ternforge.sim.machine.build`'s, cached on disk and in this process); that of
    :data:`STRIPED` able to record a SAIF, as :func:`ternforge.sim.activity.measure` builds
    it (it runs about a tenth slower when it records none)."""
    trace = "saif" if parameters == activity.REFERENCE else None
    return machine.build(parameters, memory_bytes=MEMORY_BYTES, trace=trace)


def run(built, work, job: dict, *, stall: float, seed: int) -> None:
    """Run ``job`` (its program in the image ``work / "image.hex"``) on a build, the memory
    of :data:`TIMING` with random stalls of ``stall``."""
    from ternforge.sim import verilator
    from ternforge.sim.memory import plusargs

    verilator.run(built, toplevel=machine.TOPLEVEL, test_module="ternforge.tb.controller_tb",
                  work_dir=work, env={"TERNFORGE_TB": json.dumps(job)},
                  plusargs=plusargs(image=Path("image.hex"), stall=stall,
                                    latency=TIMING.latency,
                                    write_latency=TIMING.write_latency, seed=seed))


def measure(built, work, programs, *, memory, writes=(), memory_bits: int = DATA_BITS,
            word_bytes: int = WORD) -> list[dict]:
    """Run ``programs`` (each a list of ``(unit, fields)`` instructions, :meth:`Program.add
    <ternforge.sim.runtime.Program.add>`'s, every one waiting for the one before), one after
    another, on a build, the memory deterministic with ``memory``'s timing (a
    :class:`~ternforge.hdl.common.timing.MemoryTiming`; one word a cycle; words of
    ``memory_bits``: a DDR port's, the build's ``port_bits``; its bus's words of
    ``word_bytes``) and holding ``writes``
    (``(address, bytes)``: the GEMV instructions' descriptor tables, say); return each
    program's ``cycles``, ``units`` busy cycles and ``address``."""
    from ternforge.sim import verilator
    from ternforge.sim.memory import plusargs, write_image
    from ternforge.sim.runtime import LAYOUTS, Image

    image = Image(MEMORY_BYTES, start=MEMORY_BYTES // 2)
    for address, data in writes:
        image.put(data, address)
    addresses = []
    for instructions in programs:
        words = Program(words=2, word_bytes=word_bytes)
        for unit, fields in instructions:
            words.add(unit, LAYOUTS[unit], fields)
        addresses.append([image.put(words.bytes()), len(words)])
    write_image(work / "image.hex", bytes(image.data), data_bits=memory_bits)
    job = {"programs": addresses, "result": str(work / "cycles.json"), "timeout_ms": 500,
           "memory_bits": memory_bits}
    verilator.run(built, toplevel=machine.TOPLEVEL, test_module="ternforge.tb.controller_tb",
                  work_dir=work, env={"TERNFORGE_TB": json.dumps(job)},
                  plusargs=plusargs(image=Path("image.hex"), latency=memory.latency,
                                    write_latency=memory.write_latency,
                                    bytes_per_cycle=memory_bits // 8))
    runs = json.loads((work / "cycles.json").read_text())
    return [{**run, "address": address} for run, (address, _) in zip(runs, addresses)]


if os.environ.get("TERNFORGE_TB"):  # in the simulator
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles

    from ternforge.sim.cocotb.model import SimulatorBackend
    from ternforge.sim.host import run_program, unit_cycles

    JOB = json.loads(os.environ["TERNFORGE_TB"])

    @cocotb.test(timeout_time=JOB.get("timeout_ms", 20), timeout_unit="ms")
    async def program_runs_from_one_start(dut):
        Clock(dut.clk, 10, "ns").start()
        dut.rst.value = 1
        backend = SimulatorBackend(dut, data_bits=JOB.get("memory_bits", DATA_BITS))
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        for address, data in JOB.get("writes", ()):
            backend.write_memory(address, bytes.fromhex(data))
        programs = JOB.get("programs") or [[JOB["program"], JOB["length"]]] * JOB["runs"]
        measured = []
        for address, length in programs:  # one after another, each from one start
            cycles = await run_program(backend, address, length)  # (done: status 2)
            dut._log.info(f"program at {address:#x}: {length} instructions, {cycles:,} cycles")
            assert cycles > 0
            measured.append({"cycles": cycles, "units": await unit_cycles(backend)})
        if "result" in JOB:
            with open(JOB["result"], "w") as file:
                json.dump(measured, file)
        if "expected" in JOB:  # the whole memory
            with open(JOB["expected"], "rb") as file:
                expected = file.read()
            got = backend.read_memory(0, len(expected))
            assert got == expected, "memory differs from the program's model"
        for address, expected in JOB.get("check", ()):  # regions: [address, bytes as hex]
            expected = bytes.fromhex(expected)
            got = backend.read_memory(address, len(expected))
            assert got == expected, f"memory at {address:#x} differs from the model"
