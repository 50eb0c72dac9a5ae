"""cocotb bus-functional models of Amaranth ``lib.stream`` valid/ready interfaces.

A stream named ``acts`` appears in the generated Verilog as ``acts__valid``, ``acts__ready`` and
``acts__payload``. :class:`StreamSource` drives one with a list of payload words and
:class:`StreamSink` collects one; both stall at random (``stall`` is the probability of
withholding ``valid`` or ``ready`` in a cycle) and record the cycle of every handshake from a
shared :class:`CycleCounter`. A handshake is sampled in the read-only phase of a cycle, so it
counts for the clock edge that ends that cycle.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["CycleCounter", "StreamSource", "StreamSink", "reset", "start"]


async def reset(dut, cycles: int = 2) -> None:
    """Hold Amaranth's synchronous ``rst`` for ``cycles`` clock edges."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def start(dut, *, idle=()) -> "CycleCounter":
    """Start ``dut``'s 250 MHz clock, hold the ``idle`` ports low and reset it; return a
    running :class:`CycleCounter` whose cycle 0 follows the reset."""
    cocotb.start_soon(Clock(dut.clk, 4, unit="ns").start())
    for name in idle:
        getattr(dut, name).value = 0
    await reset(dut)
    counter = CycleCounter(dut.clk)
    cocotb.start_soon(counter.run())
    return counter


class CycleCounter:
    """Counts rising edges of ``clock``; ``cycle`` is the index of the current cycle."""

    def __init__(self, clock):
        self.clock = clock
        self.cycle = 0

    async def run(self) -> None:
        while True:
            await RisingEdge(self.clock)
            self.cycle += 1


class _Stream:
    def __init__(self, dut, name: str, counter: CycleCounter, *, stall: float = 0.0,
                 seed: int = 0):
        self._bind(dut, getattr(dut, f"{name}__valid"), getattr(dut, f"{name}__ready"),
                   [getattr(dut, f"{name}__payload")], counter, stall, seed)

    @classmethod
    def axis(cls, dut, prefix: str, counter: CycleCounter, *, sidebands=(), stall: float = 0.0,
             seed: int = 0):
        """The AXI4-Stream port ``prefix``\\_t*: the payload word is ``tdata`` followed by the
        one-bit ``sidebands`` (e.g. ``("tlast", "tuser")``) above it."""
        stream = cls.__new__(cls)
        fields = [getattr(dut, f"{prefix}_{name}") for name in ("tdata", *sidebands)]
        stream._bind(dut, getattr(dut, f"{prefix}_tvalid"), getattr(dut, f"{prefix}_tready"),
                     fields, counter, stall, seed)
        return stream

    def _bind(self, dut, valid, ready, fields, counter, stall, seed):
        self.valid, self.ready, self.fields = valid, ready, fields
        self.widths = [len(field) for field in fields]
        self.clock = dut.clk
        self.counter = counter
        self.stall = stall
        self.random = random.Random(seed)
        self.cycles: list[int] = []

    def _stalled(self) -> bool:
        return self.stall > 0 and self.random.random() < self.stall

    def _drive(self, word: int) -> None:
        for field, width in zip(self.fields, self.widths):
            field.value = word & ((1 << width) - 1)
            word >>= width

    def _sample(self) -> int:
        word, shift = 0, 0
        for field, width in zip(self.fields, self.widths):
            word |= field.value.to_unsigned() << shift
            shift += width
        return word


class StreamSource(_Stream):
    """Drives payload words into a stream, in order, each exactly once."""

    async def send(self, words) -> None:
        self.valid.value = 0
        for word in words:
            while self._stalled():
                await RisingEdge(self.clock)
            self.valid.value = 1
            self._drive(word)
            while True:
                await ReadOnly()
                accepted = self.ready.value == 1
                if accepted:
                    self.cycles.append(self.counter.cycle)
                await RisingEdge(self.clock)
                if accepted:
                    break
            self.valid.value = 0


class StreamSink(_Stream):
    """Collects ``count`` payload words from a stream."""

    async def receive(self, count: int) -> list[int]:
        words = []
        while len(words) < count:
            ready = not self._stalled()
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and self.valid.value == 1:
                words.append(self._sample())
                self.cycles.append(self.counter.cycle)
            await RisingEdge(self.clock)
        self.ready.value = 0
        return words
