"""The parameters of the GEMV/GEMM path (:mod:`ternforge.hdl.gemv.top`), validated once, with the
facts the top, the weight planner and the testbenches share."""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.lib import data

from ..common.checks import check_int
from ..matmul.parameters import EngineKind, TlmmParameters

__all__ = ["GemvParameters", "DESCRIPTOR_LAYOUT", "DESCRIPTOR_BITS", "DESCRIPTOR_BYTES",
           "MAX_DESCRIPTORS", "URAM_WORDS", "URAM_BITS"]

URAM_WORDS = 4096  #: depth of one URAM288
URAM_BITS = 72  #: width of one URAM288

#: a descriptor: the load's byte address, then its length in AXI data words (little-endian)
DESCRIPTOR_LAYOUT = data.StructLayout({"address": 32, "words": 32})
DESCRIPTOR_BITS = DESCRIPTOR_LAYOUT.size
DESCRIPTOR_BYTES = DESCRIPTOR_BITS // 8
#: descriptors the top's table holds by default: the longest table
MAX_DESCRIPTORS = 64


@dataclass(frozen=True)
class GemvParameters:
    """Parameters of the GEMV/GEMM top.

    Parameters
    ----------
    engine : TlmmParameters
        Its LUT-RAM engine (kind :attr:`~ternforge.hdl.matmul.parameters.EngineKind.TLMM_LUTRAM`).
    data_bits : int or None
        AXI4 read data width, 32 to a weight beat; by default :meth:`default_data_bits`.
    buffer_depth : int
        Weight beats the UltraRAM buffer holds.
    addr_bits : int
        AXI4 address width.
    outstanding : int
        Read bursts in flight at most.
    max_descriptors : int
        Entries the on-chip descriptor table holds: the longest table.
    """

    engine: TlmmParameters
    data_bits: int | None = None
    buffer_depth: int = 4096
    addr_bits: int = 32
    outstanding: int = 8
    max_descriptors: int = MAX_DESCRIPTORS

    def __post_init__(self):
        if not isinstance(self.engine, TlmmParameters) or (
                self.engine.kind is not EngineKind.TLMM_LUTRAM):
            raise ValueError(f"Engine must be TlmmParameters of kind tlmm-lutram, "
                             f"not {self.engine!r}")
        check_int("Descriptor table depth", self.max_descriptors, 2)
        if self.data_bits is None:
            object.__setattr__(self, "data_bits", self.default_data_bits(self.engine))
        check_int("AXI data bits", self.data_bits, 32, self.beat_bits)

    @staticmethod
    def default_data_bits(engine: TlmmParameters) -> int:
        """The default AXI data width: 512 bits, or the widest power of two (from 32) no
        wider than a weight beat of ``engine``."""
        return max(32, min(512, 1 << (engine.weight_beat_bits.bit_length() - 1)))

    @property
    def beat_bits(self) -> int:
        """Bits of a weight beat: what the buffer holds per entry."""
        return self.engine.weight_beat_bits

    @property
    def act_bits(self) -> int:
        """Bits of an activation beat (``s_axis_acts_tdata``)."""
        return self.engine.acts_per_beat * self.engine.act_width

    @property
    def result_bits(self) -> int:
        """Bits of a result beat (``m_axis_results_tdata``)."""
        return self.engine.rows * self.engine.acc_width

    @property
    def word_bytes(self) -> int:
        """Bytes of an AXI data word."""
        return self.data_bits // 8

    def weight_beats(self, n: int, k: int) -> int:
        """Weight beats of one pass of an ``n`` x ``k`` layer (row blocks times chunks)."""
        return self.engine.row_blocks(n) * self.engine.chunks(k)

    def load_beats(self, beats: int) -> int:
        """Beats a load of a pass of ``beats``: a multiple of the fewest that fill whole data
        words, at least eight of them, and enough that the pass takes no more descriptors
        than the table holds."""
        step = 8 * self.word_bytes // math.gcd(8 * self.word_bytes, self.beat_bits)
        loads = -(-beats // self.max_descriptors)
        return max(8 * step, -(-loads // step) * step)

    @property
    def shared_burst_words(self) -> int:
        """Words of a weight burst at most when the path shares its port (``gate_reads``): a
        quarter of the buffer (at most 256, at least one word), so that a burst is requested
        only once the buffer has room for all of it and several are in flight at once, for a
        load of any length."""
        return max(1, min(256, self.buffer_depth * self.beat_bits // self.data_bits // 4))

