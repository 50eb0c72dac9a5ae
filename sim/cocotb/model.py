"""cocotb driver of a whole model on the accelerator: a prefill, then greedy decode steps.

The design is the accelerator (:func:`ternforge.hdl.accelerator.top.accelerator`) inside the
simulator's memory, its image (weights, tables, programs: :class:`ternforge.sim.runtime.
ModelLayout`) loaded by plusarg. The host's part (:func:`ternforge.sim.host.generate`) runs
here as the board's ARM cores would run it, over :class:`SimulatorBackend`: the registers by
the AXI4-Lite master, the memory through VPI, ``done`` awaited as an edge. Nothing in Python
runs per cycle.

The job is ``TERNFORGE_JOB`` (a JSON file): ``checkpoint`` and ``model`` (the weights and
their :class:`~ternforge.hdl.accelerator.model.ModelConfig`), ``prompt`` (ids),
``new_tokens``, ``input`` and ``final`` (addresses), ``prefill`` (``[address, length]`` of its
program), ``decode`` (one per decode position), ``data_bits``; the result (JSON) goes beside
it: ``tokens``, ``hidden`` (each chosen-from state, hex), ``prefill_cycles``,
``decode_cycles``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from ...hdl.accelerator.model import ModelConfig
from ..checkpoint import load_checkpoint
from ..host import generate
from ..memory import read_words, write_words
from .axi import AxiLiteMaster


#: simulated time a program may take (50 M cycles at 250 MHz) before the run is called stuck
PROGRAM_TIMEOUT_MS = 200


class SimulatorBackend:
    """The :class:`~ternforge.sim.host.Backend` of the accelerator in the simulator: its
    AXI4-Lite port driven from cocotb, its memory read and written through VPI (whole words:
    a partial word is read, changed and written back)."""

    def __init__(self, dut, *, data_bits: int):
        self._dut, self._word = dut, data_bits // 8
        self._lite = AxiLiteMaster(dut)

    async def write_register(self, offset: int, value: int) -> None:
        await self._lite.write(offset, value)

    async def read_register(self, offset: int) -> int:
        return await self._lite.read(offset)

    async def wait_done(self) -> None:
        await RisingEdge(self._dut.clk)
        if self._dut.done.value != 1:
            await with_timeout(RisingEdge(self._dut.done), PROGRAM_TIMEOUT_MS, "ms")

    def read_memory(self, address: int, nbytes: int) -> bytes:
        first, end = address // self._word, -(-(address + nbytes) // self._word)
        raw = read_words(self._dut, first, end - first, data_bits=8 * self._word)
        return raw[address - first * self._word:][:nbytes]

    def write_memory(self, address: int, data: bytes) -> None:
        first, end = address // self._word, -(-(address + len(data)) // self._word)
        raw = bytearray(self.read_memory(first * self._word, (end - first) * self._word))
        raw[address - first * self._word:address - first * self._word + len(data)] = data
        write_words(self._dut, first, bytes(raw), data_bits=8 * self._word)


@cocotb.test()
async def model_job(dut):
    job_path = Path(os.environ["TERNFORGE_JOB"])
    job = json.loads(job_path.read_text())
    weights = load_checkpoint(job["checkpoint"], ModelConfig(**job["model"]))
    Clock(dut.clk, 4, unit="ns").start()
    dut.rst.value = 1
    backend = SimulatorBackend(dut, data_bits=job.get("memory_bits", job["data_bits"]))
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    result = await generate(backend, weights, job, log=dut._log.info)
    (job_path.parent / "result.json").write_text(json.dumps(result))
