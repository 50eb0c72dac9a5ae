"""The attention units' parameters: every rule, layout, buffer size and cycle model of the
engine (:class:`AttentionParameters`) and of the unit over a KV cache with its sequencer
(:class:`AttentionUnitParameters`), read alike by the components, the golden model's
drivers, the reports and the command line, without building any hardware.

The loop order and the phases of a job are documented once, in
:mod:`ternforge.hdl.attention.engine` (the engine) and :mod:`ternforge.hdl.attention.unit`
(the cache layout and the commands).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from amaranth.lib import data

from ..common.axi import AXI_DATA_WIDTHS, check_data_bits
from ..common.checks import check_int
from ..fp.format import FloatFormat, float_format
from ..fp.parameters import FloatUnitParameters

__all__ = ["Phase", "MAX_ROWS", "MAX_COLS", "MAX_HEADS", "HEAD_DIMS", "MAX_KEYS",
           "AttentionParameters", "AttentionUnitParameters", "check_heads", "lanes_fit"]

#: the most query rows of a job (a prefill tile, or the query heads of one KV head)
MAX_ROWS = 64
#: the most keys of a tile
MAX_COLS = 128
#: the most query heads a generated unit's sequencer takes in one start (its default)
MAX_HEADS = 64
#: the head dimensions the engine takes
HEAD_DIMS = range(8, 256 + 1)
#: the most keys of one job
MAX_KEYS = 1 << 20
#: the lanes :meth:`AttentionUnitParameters.for_problem` chooses from
_LANE_CHOICES = (1, 2, 4, 8)
#: the widest AXI port a unit is given by :meth:`AttentionUnitParameters.for_problem`
_WIDEST_PORT = 512


class Phase(enum.Enum):
    """What a layer's attention runs: the causal prefill of a prompt, or one decode step."""

    PREFILL = "prefill"
    DECODE = "decode"

    @classmethod
    def of(cls, value) -> "Phase":
        """The phase named ``value`` (a :class:`Phase` passes through)."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"Phase must be prefill or decode, not {value!r}") from None


def check_heads(heads: int, kv_heads: int) -> None:
    """Refuse a model's attention shape that the units cannot serve: ``heads`` query heads
    (1 to :data:`MAX_HEADS`) in groups over ``kv_heads`` KV heads."""
    check_int("KV heads", kv_heads, 1, MAX_HEADS)
    check_int("Heads", heads, 1, MAX_HEADS)
    if heads % kv_heads:
        raise ValueError(f"Heads must be a multiple of the {kv_heads} KV heads, not {heads!r}")


def lanes_fit(lanes: int, head_dim: int, latency: int) -> bool:
    """Whether ``lanes`` is a power of two dividing ``head_dim`` into parts of more than
    ``latency`` (the fma's) elements: lanes whose accumulation never waits, even for one
    query row (:meth:`AttentionParameters.accumulate_pause`)."""
    return _lanes_divide(lanes, head_dim) and head_dim // lanes > latency


def _lanes_divide(lanes: int, head_dim: int) -> bool:
    return not lanes & (lanes - 1) and head_dim % lanes == 0


@dataclass(frozen=True)
class AttentionParameters:
    """The attention engine's parameters, rules, layouts and cycle model.

    Parameters
    ----------
    format : str or FloatFormat
        Arithmetic format (float32 by default).
    head_dim : int
        D, 8 to 256.
    rows : int
        Query rows per job (R, 1 to :data:`MAX_ROWS`): a prefill tile, or the query heads
        sharing a KV head.
    cols : int
        Keys per tile (C, 1 to :data:`MAX_COLS`), a multiple of ``lanes``; ``rows * cols /
        lanes`` must be at least the fma's latency.
    max_keys : int
        The most keys of one job (sizes the key counters).
    lanes : int
        P parallel fmas, a power of two dividing D. With parts of ``E = D / P`` elements
        at most the fma's latency (:func:`lanes_fit` false), a job of few rows waits
        between the keys of its accumulation (:meth:`accumulate_pause`).
    """

    format: FloatFormat | str = "float32"
    head_dim: int = 96
    rows: int = 8
    cols: int = 8
    max_keys: int = 4096
    lanes: int = 1

    def __post_init__(self):
        object.__setattr__(self, "format", float_format(self.format))
        check_int("Head dimension", self.head_dim, HEAD_DIMS.start, HEAD_DIMS.stop - 1)
        check_int("Lanes", self.lanes, 1, self.head_dim)
        if not _lanes_divide(self.lanes, self.head_dim):
            raise ValueError(f"Lanes must be a power of two dividing the head dimension "
                             f"({self.head_dim}), not {self.lanes!r}")
        check_int("Rows", self.rows, 1, MAX_ROWS)
        check_int("Columns", self.cols, 1, MAX_COLS)
        check_int("Maximum keys", self.max_keys, 1, MAX_KEYS)
        if self.cols % self.lanes:
            raise ValueError(f"Columns must be a multiple of the {self.lanes} lanes, "
                             f"not {self.cols!r}")
        if self.rows * self.cols // self.lanes < self.fma_latency:
            raise ValueError(f"Rows times columns per lane must be at least the fma latency "
                             f"({self.fma_latency}), not {self.rows * self.cols // self.lanes!r}")

    def _latency(self, op: str) -> int:
        return FloatUnitParameters(op, self.format).latency

    @property
    def fma_latency(self) -> int:
        return self._latency("fma")

    @property
    def elements_per_lane(self) -> int:
        """E = D / P: the elements of a query, key, value or accumulator row in one lane."""
        return self.head_dim // self.lanes

    @property
    def column_groups(self) -> int:
        """Column groups of a tile (``cols / lanes``): one column of each per lane."""
        return self.cols // self.lanes

    def score_rows(self, rows: int) -> int:
        """Rows the score phase of a job of ``rows`` runs: its own, or as many more of the
        tile's as keep every score accumulator from being reused sooner than the fma's
        latency (``score_rows * C / P >= L``; never more than ``R``)."""
        return max(rows, -(-self.fma_latency // self.column_groups))

    def score_slots(self, rows: int) -> int:
        """Score accumulators of a job of ``rows``, taken in turn: ``score_rows * C / P``."""
        return self.score_rows(rows) * self.column_groups

    def score_period(self, rows: int) -> int:
        """Cycles between two operations on a score accumulator: its :meth:`score_slots`,
        or ``L + 1`` when they are only ``L`` (a round of them then waits a cycle, so that a
        result reaches the next operation through the fmas' operand registers)."""
        return max(self.score_slots(rows), self.fma_latency + 1)

    def accumulate_pause(self, rows: int) -> int:
        """Cycles the accumulation of a job of ``rows`` waits after each key but its
        tile's last: an accumulator is reused ``rows * (E + 1)`` cycles later (a key's
        operations), which must be at least ``L + 2`` (its result written, then read through
        its bank's transparent port); 0 when it is."""
        return max(0, self.fma_latency + 2 - rows * (self.elements_per_lane + 1))

    @property
    def pauses(self) -> tuple[int, ...]:
        """:meth:`accumulate_pause` of jobs of 0 (none) to ``rows`` rows, indexed by rows;
        all 0 (the engine then has no wait at all) unless a job of one row waits."""
        return (0,) + tuple(self.accumulate_pause(r) for r in range(1, self.rows + 1))

    @property
    def beat_bits(self) -> int:
        """Bits of a query, key, value or output beat (``lanes`` elements)."""
        return self.lanes * self.format.width

    @property
    def job_layout(self) -> data.StructLayout:
        """A job: ``rows``, ``keys``, the ``position`` of row 0 and ``row_step`` (1 for causal
        prefill rows at consecutive positions, 0 for decode rows at one position)."""
        return data.StructLayout({"rows": range(1, self.rows + 1),
                                  "keys": range(1, self.max_keys + 1),
                                  "position": range(self.max_keys), "row_step": 1})

    @property
    def output_layout(self) -> data.StructLayout:
        """An output beat: ``lanes`` elements and ``last`` on the job's last."""
        return data.StructLayout({"value": self.beat_bits, "last": 1})

    @property
    def buffer_elements(self) -> dict:
        """Elements of each on-chip buffer: the query tile, the double key and value tiles
        (one loading, one computed), the scores, and the accumulators (each lane's ``E``
        elements of a row and its own copy of the denominator)."""
        d, r, c = self.head_dim, self.rows, self.cols
        return {"q": r * d, "k": 2 * c * d, "v": 2 * c * d, "scores": r * c,
                "accumulators": r * (d + self.lanes)}

    def cycles(self, rows: int, keys: int, *, first_key: int = 0, paired: bool = False) -> int:
        """Cycles of one job of ``rows`` queries against ``keys`` keys, without stalls, from
        the job accepted to the last output beat, inclusive; the first key beat arrives at
        cycle ``first_key`` (the job's acceptance being cycle 0), or is waiting, and the
        rest follow one a cycle: a key's key beats then its value beats, or (``paired``) a
        key beat and a value beat together (``first_key`` the first value beat's). The
        loader fills one half of the key and value buffers while the tile in the other is
        computed; a tile's computation starts when both the previous tile's is done and its
        keys and values are in (the phases of the engine's module documentation)."""
        fma, add, exp, reciprocal = (self._latency(op)
                                     for op in ("fma", "add", "exp", "reciprocal"))
        d, c, lanes = self.head_dim, self.cols, self.lanes
        e = self.elements_per_lane
        slots, period = self.score_slots(rows), self.score_period(rows)
        tile_at = [rows * e + fma + 3]  # the cycles the computation waits for each tile
        # the cycle the loader takes its next beat (from its stream's register)
        load_at = max(1, first_key) + 1
        for n, start in enumerate(range(0, keys, c)):
            nk = min(c, keys - start)
            if n >= 2:  # the tile's half is free once tile n - 2 is computed
                load_at = max(load_at, tile_at[n - 1])
            load_at += (1 if paired else 2) * nk * e + 1  # then the tile is in
            compute = (d * period - (period - slots) + fma + 3) \
                + (rows * c // lanes + (lanes - 1).bit_length() + 3) \
                + (rows * (c + 1) + add + exp + 4) + (rows * (e + 1) + fma + 3) \
                + (nk * rows * (e + 1) + (nk - 1) * self.accumulate_pause(rows) + fma + 3)
            tile_at.append(max(tile_at[n], load_at) + compute)
        return tile_at[-1] + (rows + reciprocal + 3) + (rows * e + fma + 4)


@dataclass(frozen=True)
class AttentionUnitParameters:
    """The attention unit over a KV cache in DDR, and its sequencer: the engine's parameters,
    the AXI4 port and the cache layout, the command and start layouts, the cycle model of a
    command stream.

    Parameters
    ----------
    engine : AttentionParameters
    addr_bits, data_bits : int
        The AXI4 port's address (13 to 64) and data widths; a cache row (``2 * D``
        elements) is a whole number of data words, a data word a whole number of beats.
    max_heads : int
        The most query heads of a sequencer's start (1 to 1,024).
    """

    engine: AttentionParameters = field(default_factory=AttentionParameters)
    addr_bits: int = 32
    data_bits: int = 512
    max_heads: int = MAX_HEADS

    def __post_init__(self):
        check_int("Address bits", self.addr_bits, 13, 64)
        check_data_bits(self.data_bits)
        if self.row_bits % self.data_bits or self.data_bits % self.engine.beat_bits:
            raise ValueError(f"Data bits must divide a cache row's {self.row_bits} bits into "
                             f"whole beats of {self.engine.beat_bits}, not {self.data_bits!r}")
        check_int("Maximum heads", self.max_heads, 1, 1024)

    @classmethod
    def for_problem(cls, phase, head_dim: int, keys: int, group: int, format="float32", *,
                    rows: int = 8, cols: int = 8, lanes: int | None = None):
        """The unit that runs a problem: prefill tiles of ``rows`` queries, decode tiles of the
        ``group`` query heads a KV head serves (no idle rows), by ``cols`` keys (more if
        needed to cover the fma's latency, a multiple of the lanes); ``max_keys`` the next
        power of two of ``keys``, at least 1,024 (one build serves many lengths); the widest
        AXI port (to 512 bits) a cache row fills; ``lanes`` (None: the most, up to 8, that
        the head dimension and the port allow)."""
        phase, fmt = Phase.of(phase), float_format(format)
        check_int("Head dimension", head_dim, HEAD_DIMS.start, HEAD_DIMS.stop - 1)
        check_int("Maximum keys", keys, 1, MAX_KEYS)
        check_int("Query heads per KV head", group, 1, MAX_ROWS)
        check_int("Rows", rows, 1, MAX_ROWS)
        check_int("Columns", cols, 1, MAX_COLS)
        latency = FloatUnitParameters("fma", fmt).latency
        row_bits = 2 * head_dim * fmt.width
        data_bits = max(bits for bits in AXI_DATA_WIDTHS
                        if bits <= _WIDEST_PORT and row_bits % bits == 0)
        if lanes is None:
            lanes = max(p for p in _LANE_CHOICES if p == 1 or (
                lanes_fit(p, head_dim, latency) and data_bits % (p * fmt.width) == 0))
        rows = rows if phase is Phase.PREFILL else group
        cols = max(cols, -(-latency * lanes // rows))
        cols = -(-cols // lanes) * lanes if isinstance(lanes, int) and lanes > 0 else cols
        engine = AttentionParameters(format=fmt, head_dim=head_dim, rows=rows, cols=cols,
                                     max_keys=max(1024, 1 << (keys - 1).bit_length()),
                                     lanes=lanes)
        return cls(engine=engine, data_bits=data_bits)

    @property
    def row_bits(self) -> int:
        """Bits of a cache row: a token's key then its value (``2 * D`` elements)."""
        return 2 * self.engine.head_dim * self.engine.format.width

    @property
    def row_words(self) -> int:
        """AXI data words of a cache row."""
        return self.row_bits // self.data_bits

    @property
    def row_bytes(self) -> int:
        return self.row_bits // 8

    @property
    def row_beats(self) -> int:
        """Beats of a cache row on the engine's key and value streams (``2 * E``)."""
        return 2 * self.engine.elements_per_lane

    @property
    def paired(self) -> bool:
        """Whether the unit streams a key beat and a value beat to the engine a cycle: when a
        data word holds two beats or more and a key (half a row) is a whole number of words,
        so that the port's word a cycle keeps both streams going. Otherwise a row's beats
        go one a cycle (``sequential``)."""
        return (self.data_bits >= 2 * self.engine.beat_bits
                and (self.row_bits // 2) % self.data_bits == 0)

    @property
    def key_cycles(self) -> int:
        """Cycles from the cache's first word to the engine's first key beat (paired: its
        first value beat, behind the key's ``row_words / 2`` words): the word splitter's
        one, and (paired) the value words' FIFO's."""
        return self.row_words // 2 + 2 if self.paired else 1

    @property
    def command_layout(self) -> data.StructLayout:
        """A command (the unit's ``command`` stream, the sequencer's ``commands``): the
        engine's job, the ``base`` of its KV head's region, and ``append``."""
        job = self.engine.job_layout
        return data.StructLayout({**{name: job[name].shape for name in job.members},
                                  "base": self.addr_bits, "append": 1})

    @property
    def start_layout(self) -> data.StructLayout:
        """A sequencer's start: ``decode``, ``heads`` (query heads in prefill, KV heads in
        decode), ``group`` (query heads per KV head), ``tokens`` (M, or the context L with the
        newest token), the first KV head's region ``base`` and the ``stride`` between
        regions."""
        heads = range(1, self.max_heads + 1)
        return data.StructLayout({"decode": 1, "heads": heads, "group": heads,
                                  "tokens": range(1, self.engine.max_keys + 1),
                                  "base": self.addr_bits, "stride": self.addr_bits})

    def region(self, kv_head: int) -> int:
        """Byte address of a KV head's cache region (regions of ``max_keys`` rows from 0)."""
        return kv_head * self.engine.max_keys * self.row_bytes

    def first_key_cycle(self, read_latency: int) -> int:
        """The cycle, counting from the engine's job (the cycle after the command) as 0, at
        which the first cached key (paired: key and value) is offered to the engine without
        stalls: the read address two cycles after the job (the reader's
        :data:`~ternforge.hdl.common.timing.COMMAND_CYCLES`), ``read_latency`` cycles from the
        address to the data, then :attr:`key_cycles`."""
        return 2 + read_latency + self.key_cycles

    def bytes_read(self, commands) -> int:
        """DDR bytes ``commands`` (dicts of :attr:`command_layout`'s fields) read: an
        appended row is not read back."""
        return sum(c["keys"] - c["append"] for c in commands) * self.row_bytes

    def cycles(self, commands, *, read_latency: int, sequenced: bool = False) -> int:
        """Cycles from the first command accepted to the last output, without stalls: per
        command, the engine's job and two cycles to hand over (the first one's only one).
        The first cached key reaches the engine :meth:`first_key_cycle` cycles after its
        job starts; an appended row's write is answered before the job ends (at any
        realistic head dimension); the sequencer adds a cycle before the first command.

        Every command must read a cached row (``keys`` more than ``append``): a job whose
        only key is the appended one takes that row's beats at the pace its writer packs
        them into words, which the model does not follow (the accelerator never runs one:
        a decode step follows a prefill)."""
        for c in commands:
            if c["keys"] <= c["append"]:
                raise ValueError(f"Keys of the attention unit's cycle model must be more than "
                                 f"the appended row, not {c['keys']!r}")
        first_key = self.first_key_cycle(read_latency)
        return sum(2 + self.engine.cycles(c["rows"], c["keys"], first_key=first_key,
                                          paired=self.paired)
                   for c in commands) - 1 + sequenced

    @staticmethod
    def modeled(commands) -> bool:
        """:meth:`cycles` follows ``commands``: each reads a cached row."""
        return all(c["keys"] > c["append"] for c in commands)
