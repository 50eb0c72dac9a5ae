"""cocotb models of an AXI4 memory (read and write sides over one byte image) and an AXI4-Lite
master (flat Vivado names).

:class:`AxiReadMemory` answers ``m_axi_*`` read bursts from a byte image: each request
becomes ready ``latency`` cycles after its address handshake, and data leaves at no more than
``bytes_per_cycle`` on average (a token bucket), optionally with random gaps (``stall``).
With ``stall=0`` it is deterministic.
"""

from __future__ import annotations

import random
from collections import deque

from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["AxiReadMemory", "AxiWriteMemory", "AxiLiteMaster"]


class AxiReadMemory:
    """AXI4 read slave over ``image`` (bytes), for the ``prefix``\\_* ports of ``dut``."""

    def __init__(self, dut, image: bytes, *, data_bits: int, latency: int = 20,
                 bytes_per_cycle: float = 64.0, stall: float = 0.0, seed: int = 0,
                 prefix: str = "m_axi"):
        self.dut, self.prefix = dut, prefix
        self.image = image if isinstance(image, bytearray) else bytes(image)
        self.word_bytes = data_bits // 8
        self.latency, self.bytes_per_cycle, self.stall = latency, bytes_per_cycle, stall
        self.random = random.Random(seed)
        self.bytes_read = 0
        self.cycle = 0

    def _port(self, name):
        return getattr(self.dut, f"{self.prefix}_{name}")

    def _word(self, address: int) -> int:
        chunk = self.image[address:address + self.word_bytes]
        return int.from_bytes(chunk.ljust(self.word_bytes, b"\0"), "little")

    async def run(self) -> None:
        requests: deque = deque()  # [ready cycle, address, words left]
        tokens = 0.0
        self._port("arready").value = 1
        self._port("rvalid").value = 0
        self._port("rresp").value = 0
        while True:
            await ReadOnly()
            if self._port("arvalid").value == 1:
                requests.append([self.cycle + self.latency, int(self._port("araddr").value),
                                 int(self._port("arlen").value) + 1])
            sent = self._port("rvalid").value == 1 and self._port("rready").value == 1
            await RisingEdge(self.dut.clk)
            self.cycle += 1
            if sent:
                head = requests[0]
                head[1] += self.word_bytes
                head[2] -= 1
                tokens -= self.word_bytes
                self.bytes_read += self.word_bytes
                if head[2] == 0:
                    requests.popleft()
            # a bucket of one word plus one cycle's bytes: the long-run rate is exactly
            # bytes_per_cycle (capped at one word per cycle), with no burst above it
            tokens = min(tokens + self.bytes_per_cycle, self.word_bytes + self.bytes_per_cycle)
            holding = self._port("rvalid").value == 1 and not sent  # AXI: valid stays up
            offer = holding or (bool(requests) and requests[0][0] <= self.cycle
                                and tokens >= self.word_bytes and not
                                (self.stall and self.random.random() < self.stall))
            self._port("rvalid").value = int(offer)
            if offer:
                self._port("rdata").value = self._word(requests[0][1])
                self._port("rlast").value = int(requests[0][2] == 1)


class AxiLiteMaster:
    """Single-beat AXI4-Lite writes and reads on the ``prefix``\\_* ports of ``dut``."""

    def __init__(self, dut, prefix: str = "s_axil"):
        self.dut, self.prefix = dut, prefix
        for name in ("awvalid", "wvalid", "arvalid"):
            self._port(name).value = 0
        self._port("bready").value = 1
        self._port("rready").value = 1
        self._port("wstrb").value = 0xF

    def _port(self, name):
        return getattr(self.dut, f"{self.prefix}_{name}")

    async def _handshake(self, ready: str) -> None:
        while True:
            await ReadOnly()
            done = self._port(ready).value == 1
            await RisingEdge(self.dut.clk)
            if done:
                return

    async def write(self, address: int, value: int) -> None:
        self._port("awaddr").value = address
        self._port("wdata").value = value
        self._port("awvalid").value = 1
        self._port("wvalid").value = 1
        await self._handshake("awready")
        self._port("awvalid").value = 0
        self._port("wvalid").value = 0
        await self._handshake("bvalid")

    async def read(self, address: int) -> int:
        self._port("araddr").value = address
        self._port("arvalid").value = 1
        await self._handshake("arready")
        self._port("arvalid").value = 0
        while True:
            await ReadOnly()
            if self._port("rvalid").value == 1:
                value = self._port("rdata").value.to_unsigned()
                await RisingEdge(self.dut.clk)
                return value
            await RisingEdge(self.dut.clk)


class AxiWriteMemory:
    """AXI4 write slave over ``image`` (a bytearray, shared with an :class:`AxiReadMemory` so
    that reads see writes): takes one burst at a time, every byte of each word, and answers
    ``latency`` cycles after its last word."""

    def __init__(self, dut, image: bytearray, *, data_bits: int, latency: int = 10,
                 prefix: str = "m_axi"):
        self.dut, self.prefix, self.image = dut, prefix, image
        self.word_bytes = data_bits // 8
        self.latency = latency
        self.bytes_written = 0

    def _port(self, name):
        return getattr(self.dut, f"{self.prefix}_{name}")

    async def run(self) -> None:
        self._port("awready").value = 1
        self._port("wready").value = 0
        self._port("bvalid").value = 0
        self._port("bresp").value = 0
        while True:
            await ReadOnly()
            if self._port("awvalid").value != 1:
                await RisingEdge(self.dut.clk)
                continue
            address = int(self._port("awaddr").value)
            await RisingEdge(self.dut.clk)
            self._port("awready").value = 0
            self._port("wready").value = 1
            while True:
                await ReadOnly()
                if self._port("wvalid").value == 1:
                    word = int(self._port("wdata").value)
                    self.image[address:address + self.word_bytes] = word.to_bytes(
                        self.word_bytes, "little")
                    address += self.word_bytes
                    self.bytes_written += self.word_bytes
                    if self._port("wlast").value == 1:
                        break
                await RisingEdge(self.dut.clk)
            await RisingEdge(self.dut.clk)
            self._port("wready").value = 0
            for _ in range(self.latency):
                await RisingEdge(self.dut.clk)
            self._port("bvalid").value = 1
            while True:
                await ReadOnly()
                answered = self._port("bready").value == 1
                await RisingEdge(self.dut.clk)
                if answered:
                    break
            self._port("bvalid").value = 0
            self._port("awready").value = 1
