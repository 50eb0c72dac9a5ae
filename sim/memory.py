"""DDR inside the simulator: a design's AXI4 port on the Verilog memory model.

:class:`WithMemory` wraps a component whose ``m_axi_*`` port goes to DDR: the port is
connected to ``ternforge_axi_memory`` (``sim/verilog/ternforge_axi_memory.v``, simulation
only) and every other member of the component is passed through. The memory's timing is set
at run time by plusargs (:func:`plusargs`: latency, bandwidth, random stalls on every channel,
seed), so that one build serves every memory; its contents are loaded from a ``$readmemh``
file (:func:`write_image`) and read back through VPI (:func:`read_words` in a cocotb test).
Nothing in Python runs per cycle: this is what lets a whole-model simulation run at the
simulator's speed.
"""

from __future__ import annotations

from pathlib import Path

from amaranth.hdl import (Cat, ClockDomain, ClockSignal, DomainRenamer, Instance, Module,
                          ResetSignal, Signal)
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..hdl.common.axi import axi4_read_members, axi4_write_members

__all__ = ["MEMORY_VERILOG", "WithMemory", "plusargs", "write_image", "read_words",
           "write_words", "bytes_read"]

#: the memory model's Verilog, to build beside the design's
MEMORY_VERILOG = (Path(__file__).parent / "verilog" / "ternforge_axi_memory.v").read_text()


class WithMemory(wiring.Component):
    """``inner`` with its ``m_axi_*`` port on a simulated memory of ``words`` data words.

    Parameters
    ----------
    inner : wiring.Component
        Its ``m_axi_*`` members (read channels, write channels or both) go to the memory; or
        its ports ``m_axi0_*`` ... ``m_axi<n-1>_*``, each with its reads and its own timing
        and stalls, the writes on ``m_axi0`` (:class:`~ternforge.hdl.common.striper.
        AxiStriper`'s).
    addr_bits, data_bits : int
        The port's widths.
    words : int
        Data words of the memory (a power of two).

    ``inner`` and the memory are reset by ``rst`` sampled on the falling clock edge (the
    same reset at every rising edge, for a testbench that changes ``rst`` just after one):
    Amaranth's Verilog folds a flip-flop's reset into the logic before it, and Verilator
    evaluates the logic that depends on a top-level input on every call into the model
    (twice a clock cycle), so a reset straight from the input would put the whole design's
    next-state logic there.
    """

    def __init__(self, inner, *, addr_bits=32, data_bits=512, words=1 << 16):
        if words < 2 or words & (words - 1):
            raise ValueError(f"Memory words must be a power of two, not {words!r}")
        self._inner, self._addr_bits, self._data_bits, self._words = \
            inner, addr_bits, data_bits, words
        self._axi = {name for name in inner.signature.members if _is_axi(name)}
        self._prefixes = _prefixes(self._axi)
        super().__init__({name: member for name, member in inner.signature.members.items()
                          if name not in self._axi})

    def elaborate(self, platform):
        m = Module()
        inner = self._inner
        m.domains.design = design = ClockDomain(local=True)
        m.domains.sample = ClockDomain(clk_edge="neg", reset_less=True, local=True)
        reset = Signal(init=1)
        m.d.comb += ClockSignal("sample").eq(ClockSignal())
        m.d.sample += reset.eq(ResetSignal())
        m.d.comb += [design.clk.eq(ClockSignal()), design.rst.eq(reset)]
        m.submodules.inner = DomainRenamer("design")(inner)
        for name, member in self.signature.members.items():
            if member.is_port:
                outer, inside = getattr(self, name), getattr(inner, name)
                m.d.comb += inside.eq(outer) if member.flow == In else outer.eq(inside)
            elif member.flow == In:
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(inner, name))
            else:
                wiring.connect(m, getattr(inner, name), wiring.flipped(getattr(self, name)))
        ports = {}
        widths = {"addr_bits": self._addr_bits, "data_bits": self._data_bits}
        channels = {**axi4_read_members("m_axi", **widths),
                    **axi4_write_members("m_axi", **widths)}
        for name, member in channels.items():
            channel = name.removeprefix("m_axi_")
            if channel in ("arsize", "arburst", "awsize", "awburst"):
                continue  # the model serves INCR bursts of whole words
            # every port's read channels (port 0 in the low bits), port 0's write channels
            prefixes = self._prefixes if channel[0] in "ar" else self._prefixes[:1]
            signals = []
            for k, prefix in enumerate(prefixes):
                if f"{prefix}_{channel}" in self._axi:
                    signals.append(getattr(inner, f"{prefix}_{channel}"))
                elif member.flow == wiring.Out:  # a channel the design does not have: idle
                    signals.append(Signal(member.shape, name=f"idle{k}_{channel}"))
                else:
                    signals.append(Signal(member.shape, name=f"unused{k}_{channel}"))
            ports[f"{'o' if member.flow == In else 'i'}_s_axi_{channel}"] = Cat(*signals)
        m.submodules.memory = Instance(
            "ternforge_axi_memory", p_ADDR_BITS=self._addr_bits, p_DATA_BITS=self._data_bits,
            p_WORDS=self._words, p_PORTS=len(self._prefixes), i_clk=ClockSignal(),
            i_rst=reset, **ports)
        return m


def _is_axi(name: str) -> bool:
    """Whether ``name`` is a member of a DDR port: ``m_axi_*`` or ``m_axi<k>_*``."""
    head = name.split("_")[:2]
    return len(head) == 2 and head[0] == "m" and (head[1] == "axi" or (
        head[1].startswith("axi") and head[1][3:].isdigit()))


def _prefixes(names) -> list[str]:
    """The DDR ports of members ``names``: ``["m_axi"]``, or ``m_axi0`` ... ``m_axi<n-1>``
    (reads on each, writes on the first)."""
    prefixes = sorted({"_".join(name.split("_")[:2]) for name in names})
    if prefixes in ([], ["m_axi"]):
        return ["m_axi"]
    numbered = [f"m_axi{k}" for k in range(len(prefixes))]
    if prefixes != sorted(numbered):
        raise ValueError(f"DDR ports must be m_axi or m_axi0 to m_axi<n-1>, not {prefixes!r}")
    return numbered


#: the longest path of an image the memory model loads (its ``init_file`` holds 128 bytes;
#: a longer one would lose its first characters)
MAX_IMAGE_PATH = 128


def plusargs(*, latency: int = 20, write_latency: int = 10, bytes_per_cycle: float = 64.0,
             stall: float = 0.0, seed: int = 1, image: Path | None = None) -> list[str]:
    """The memory's run-time options as simulator plusargs (``stall``: the probability that
    a channel is held back in a cycle, 0 to 0.999; ``image``: a file the memory loads first,
    its path at most :data:`MAX_IMAGE_PATH` characters, relative to the simulator's run
    folder or absolute)."""
    if not 0 <= stall < 1:
        raise ValueError(f"Stall must be a probability from 0 to below 1, not {stall!r}")
    if image is not None and len(str(image)) > MAX_IMAGE_PATH:
        raise ValueError(f"Image path must be at most {MAX_IMAGE_PATH} characters (the memory "
                         f"model's string), not {str(image)!r}")
    options = [f"+DDR_LATENCY={int(latency)}", f"+DDR_WLATENCY={int(write_latency)}",
               f"+DDR_MILLIBYTES={round(bytes_per_cycle * 1000)}",
               f"+DDR_STALL={round(stall * 1000)}", f"+DDR_SEED={int(seed)}"]
    return options + ([f"+DDR_INIT={image}"] if image is not None else [])


def write_image(path: Path, image: bytes, *, data_bits: int = 512) -> Path:
    """Write ``image`` (bytes from address 0) as a ``$readmemh`` file of ``data_bits``-bit
    words; return ``path``."""
    word = data_bits // 8
    padded = bytes(image) + bytes(-len(image) % word)
    with open(path, "w") as file:
        for start in range(0, len(padded), word):
            file.write(padded[start:start + word][::-1].hex() + "\n")
    return path


def read_words(dut, start: int, count: int, *, data_bits: int = 512) -> bytes:
    """Bytes of the memory's words ``start .. start + count - 1``, read through VPI (in a
    cocotb test, ``dut`` the simulation's top)."""
    memory = dut.memory.mem
    return b"".join(int(memory[start + i].value).to_bytes(data_bits // 8, "little")
                    for i in range(count))


def write_words(dut, start: int, image: bytes, *, data_bits: int = 512) -> None:
    """Write ``image`` into the memory from word ``start`` on, through VPI (in a cocotb test;
    for a large image, :func:`write_image` and the ``image`` plusarg are faster)."""
    word = data_bits // 8
    padded = bytes(image) + bytes(-len(image) % word)
    memory = dut.memory.mem
    for i in range(len(padded) // word):
        memory[start + i].value = int.from_bytes(padded[i * word:(i + 1) * word], "little")


def bytes_read(dut) -> int:
    """Bytes the memory's read channel has delivered since reset (in a cocotb test)."""
    return int(dut.memory.bytes_read.value)
