"""The parameters of a ternary matmul engine: validated once, with every fact derived from them.

Three engines compute ``Y = X @ W.T`` for signed activations X (M, K) and ternary weights
W (N, K) through the same streams (see :mod:`ternforge.hdl.matmul.pipeline`); they differ in
how a weight group is coded and in which operand stays put while the other streams past.
:class:`EngineKind` names them and says both; :class:`TlmmParameters` holds one engine's
parameters and owns its layouts' widths, its latency and its cycle model, which the
components, the stream models, the planner and the reports all read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.lib import data

from ..common.checks import check_int

__all__ = ["WeightFormat", "LoopOrder", "EngineKind", "TlmmParameters", "LIMITS"]

#: the largest value of each unbounded-looking parameter that a real board could hold: 64
#: groups by 256 rows is 16,384 (G = 2) to 65,536 (G = 4) MACs a cycle, several times what
#: the largest supported board fits; a K of 2**20 needs 29-bit accumulators; 64 tokens a tile;
#: N of 2**17 covers a 128,256-word LM head; a job's M of 2**16 tokens is a longer prompt
#: than any supported context
LIMITS = {"groups_per_cycle": 64, "rows": 256, "max_k": 1 << 20, "max_tokens": 64,
          "max_n": 1 << 17, "tokens": 1 << 16}


def signed_width(bound: int) -> int:
    """Width of the smallest two's-complement integer holding ``-bound .. bound``."""
    return max((bound - 1).bit_length(), bound.bit_length()) + 1


class WeightFormat(enum.Enum):
    """How a weight slot (one group of ``group_size`` weights of one row) is coded."""

    #: one table-lookup code: a sign bit above a table index (:mod:`ternforge.sim.models.tl_code`)
    TL = "tl"
    #: two bits per weight (bit 0: non-zero, bit 1: negative), weight ``j`` at bits ``2j, 2j+1``
    TERNARY = "ternary"


class LoopOrder(enum.Enum):
    """Which operand an engine holds while the other streams past it."""

    #: a weight beat is held while the tile's tokens pass (:mod:`ternforge.hdl.matmul.pipeline`)
    WEIGHT = "weight"
    #: a chunk's tables are held while every row block passes (:mod:`ternforge.hdl.matmul.lutram`)
    TABLE = "table"


class EngineKind(enum.StrEnum):
    """The ternary matmul engines, by the name the configuration, the job files and the
    reports use (a kind is its name: ``EngineKind.TLMM == "tlmm"``)."""

    #: tables in registers (:class:`~ternforge.hdl.matmul.tlmm.TLMMEngine`)
    TLMM = "tlmm"
    #: tables in LUT-RAM (:class:`~ternforge.hdl.matmul.lutram.TLMMLutramEngine`)
    TLMM_LUTRAM = "tlmm-lutram"
    #: the plain adder-tree baseline (:class:`~ternforge.hdl.matmul.adder.TernaryAdderEngine`)
    ADDER = "adder"

    @property
    def weight_format(self) -> WeightFormat:
        return WeightFormat.TERNARY if self is EngineKind.ADDER else WeightFormat.TL

    @property
    def order(self) -> LoopOrder:
        return LoopOrder.TABLE if self is EngineKind.TLMM_LUTRAM else LoopOrder.WEIGHT


@dataclass(frozen=True)
class TlmmParameters:
    """Parameters of one ternary matmul engine.

    Parameters
    ----------
    kind : EngineKind or str
        The engine (a name is converted to its kind).
    group_size : int
        Consecutive weights forming one group (G), 2 to 4.
    groups_per_cycle : int
        Groups consumed per beat along K (P); a beat carries ``P * G`` activations.
    rows : int
        Output rows computed per beat (R).
    act_width : int
        Activation width in bits (signed), 2 to 16.
    max_k : int
        Longest reduction (K) the accumulators hold without overflow.
    max_tokens : int
        Largest token tile: the accumulators per row (and, table-stationary, the tokens whose
        tables share a bank).
    max_n : int or None
        Most output rows (N) of one job, if bounded. The table-stationary engine needs it: it
        sizes the accumulator memory.
    """

    kind: EngineKind = EngineKind.TLMM
    group_size: int = 3
    groups_per_cycle: int = 8
    rows: int = 16
    act_width: int = 8
    max_k: int = 8192
    max_tokens: int = 8
    max_n: int | None = None

    def __post_init__(self):
        if not isinstance(self.kind, EngineKind):
            names = [kind.value for kind in EngineKind]
            if self.kind not in names:
                raise ValueError(f"Engine must be one of {', '.join(names)}, not {self.kind!r}")
            object.__setattr__(self, "kind", EngineKind(self.kind))
        check_int("Group size", self.group_size, 2, 4)
        check_int("Groups per cycle", self.groups_per_cycle, 1, LIMITS["groups_per_cycle"])
        check_int("Rows", self.rows, 1, LIMITS["rows"])
        check_int("Activation width", self.act_width, 2, 16)
        check_int("Maximum K", self.max_k, 1, LIMITS["max_k"])
        check_int("Maximum tokens", self.max_tokens, 1, LIMITS["max_tokens"])
        if self.max_n is not None or self.kind.order is LoopOrder.TABLE:
            check_int("Maximum N", self.max_n, 1, LIMITS["max_n"])

    @property
    def acts_per_beat(self) -> int:
        """Activations of one beat: ``group_size * groups_per_cycle``."""
        return self.group_size * self.groups_per_cycle

    @property
    def macs_per_cycle(self) -> int:
        """Ternary multiply-accumulates per cycle at full rate."""
        return self.acts_per_beat * self.rows

    @property
    def acc_width(self) -> int:
        """Accumulator width: the worst case of a ``max_k``-long dot product."""
        return signed_width((1 << (self.act_width - 1)) * self.max_k)

    @property
    def table_entries(self) -> int:
        """Entries of a group's table: the canonical non-negative weight patterns."""
        return (3**self.group_size + 1) // 2

    @property
    def index_bits(self) -> int:
        """Bits of a TL code's table index."""
        return (self.table_entries - 1).bit_length()

    @property
    def table_width(self) -> int:
        """Width of a table entry: a sum of ``group_size`` activations."""
        return signed_width((1 << (self.act_width - 1)) * self.group_size)

    @property
    def slot_bits(self) -> int:
        """Bits of one weight slot (one group of one row)."""
        if self.kind.weight_format is WeightFormat.TL:
            return 1 + self.index_bits
        return 2 * self.group_size

    @property
    def slot_layout(self) -> data.Layout:
        """The fields of a weight slot: a TL code's ``index`` below its ``negative`` sign bit;
        or, per weight, ``nonzero`` and ``negative``."""
        if self.kind.weight_format is WeightFormat.TL:
            return data.StructLayout({"index": self.index_bits, "negative": 1})
        return data.ArrayLayout(data.StructLayout({"nonzero": 1, "negative": 1}),
                                self.group_size)

    @property
    def weight_beat_bits(self) -> int:
        """Bits of one weight beat: ``rows * groups_per_cycle`` slots."""
        return self.rows * self.groups_per_cycle * self.slot_bits

    @property
    def token_bits(self) -> int:
        """Bits that number a token of the tile."""
        return (self.max_tokens - 1).bit_length()

    @property
    def front_stages(self) -> int:
        """Register stages between accepting a beat and the adder tree's operands (the
        table-stationary engine reads its tables without one)."""
        return 0 if self.kind.order is LoopOrder.TABLE else 1

    @property
    def operands_per_row(self) -> int:
        """Operands the front hands a row's adder tree: one per group (per activation for the
        baseline) and the count of negated ones."""
        if self.kind.weight_format is WeightFormat.TL:
            return self.groups_per_cycle + 1
        return self.acts_per_beat + 1

    @property
    def tree_levels(self) -> int:
        """Registered levels of the adder tree."""
        return (self.operands_per_row - 1).bit_length()

    @property
    def latency(self) -> int:
        """Cycles from accepting the last activation beat of a chunk (table-stationary: from
        issuing a read of the tables) to presenting its result."""
        return self.front_stages + self.tree_levels + 1

    @property
    def accumulator_depth(self) -> int:
        """Partial sums held: one per token of the tile (table-stationary: per token and row
        block of ``max_n``)."""
        if self.kind.order is LoopOrder.TABLE:
            return self.max_tokens * -(-self.max_n // self.rows)
        return self.max_tokens

    def chunks(self, k: int) -> int:
        """Beats along K: ``ceil(K / acts_per_beat)``."""
        return -(-k // self.acts_per_beat)

    def row_blocks(self, n: int) -> int:
        """Blocks of ``rows`` output rows: ``ceil(N / rows)``."""
        return -(-n // self.rows)

    def token_tiles(self, m: int) -> list[int]:
        """Tokens of each tile of an M-token job."""
        return [min(self.max_tokens, m - start) for start in range(0, m, self.max_tokens)]

    def cycles(self, m: int, k: int, n: int) -> int:
        """Cycles of an (M, K, N) job with no stalls, from the first activation beat accepted
        to the last result beat accepted, both inclusive."""
        if self.kind.order is LoopOrder.WEIGHT:
            return m * self.chunks(k) * self.row_blocks(n) + self.latency
        return self._table_cycles(self.chunks(k), self.row_blocks(n), self.token_tiles(m))

    def _table_cycles(self, chunks: int, blocks: int, tiles: list[int]) -> int:
        """The table-stationary recurrence of the ping-pong banks: a chunk's tables are
        written into a free bank, then read once per row block and token."""
        write_end, read_end = 0, [-1, -1]  # last write cycle; last read cycle per bank
        chunk = 0
        for tile in tiles:
            for _ in range(chunks):
                bank = chunk % 2
                accept = max(write_end, read_end[bank] + 1)  # into a free bank
                write_end = accept + tile * (self.table_entries - 1)
                read_start = max(write_end + 1, read_end[1 - bank] + 1)
                read_end[bank] = read_start + blocks * tile - 1
                chunk += 1
        return read_end[(chunk - 1) % 2] + self.latency + 1

    def check_job(self, m: int, k: int, n: int) -> None:
        """Refuse (``ValueError``) a job this engine cannot compute exactly."""
        for name, value in (("M", m), ("K", k), ("N", n)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value!r}")
        if m > LIMITS["tokens"]:
            raise ValueError(f"M must be at most {LIMITS['tokens']:,} tokens, not {m!r}")
        if k > self.max_k:
            raise ValueError(f"K must be at most the accumulators' max_k = {self.max_k} "
                             f"(raise --max-k), not {k!r}")
        if self.max_n is not None and n > self.max_n:
            raise ValueError(f"N must be at most max_n = {self.max_n} (raise --max-n), "
                             f"not {n!r}")
