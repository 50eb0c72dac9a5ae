"""How a ternary matmul job travels through the engines' streams, in numpy.

The engines (:mod:`ternforge.hdl.matmul`) compute ``Y = X @ W.T`` for activations X (M, K) and
ternary weights W (N, K). A job is split into tiles of at most ``max_tokens`` tokens; within a
tile the loop order is::

    for row_block in range(ceil(N / rows)):          # rows output rows per beat
        for chunk in range(ceil(K / (groups_per_cycle * G))):
            weight beat (row_block, chunk)          # held while the tile's tokens pass
            for token in tile:
                activation beat (token, chunk)      # one beat per cycle
        result beats: one per token, ``rows`` sums each

so each weight beat is reused by every token of the tile. ``last`` marks the last chunk of a
row block (weights) and the last token of a tile (activations). The payload layout matches the
engines' ``data.StructLayout``: array element ``i`` sits at bit ``i * width``, then ``last``.

Two weight formats exist (:class:`~ternforge.hdl.matmul.parameters.WeightFormat`): the
table-lookup codes of :mod:`ternforge.sim.models.tl_code`, one code per group; and 2 bits per
weight, ``G`` weights per group slot, for the plain adder baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...hdl.matmul.parameters import LoopOrder, TlmmParameters, WeightFormat
from . import tl_code

__all__ = ["StreamGeometry", "JobBeats", "job_beats", "results_from_words", "pack_words",
           "unpack_words"]


@dataclass(frozen=True)
class StreamGeometry:
    """The stream shape of one engine configuration.

    Members
    -------
    group_size : int
        Weights per group (G).
    groups_per_cycle : int
        Groups consumed per beat along K (P).
    rows : int
        Output rows computed per beat (R).
    max_tokens : int
        Largest token tile (accumulator depth).
    weight_format : WeightFormat
        How a weight slot is coded.
    act_width : int
        Activation width in bits.
    order : LoopOrder
        ``WEIGHT``: weight-stationary (the order above); ``TABLE``: table-stationary (see
        :mod:`ternforge.hdl.matmul.lutram`), whose activation beats also carry ``final``.
    """

    group_size: int
    groups_per_cycle: int
    rows: int
    max_tokens: int
    weight_format: WeightFormat = WeightFormat.TL
    act_width: int = 8
    order: LoopOrder = LoopOrder.WEIGHT

    @classmethod
    def of(cls, parameters: TlmmParameters) -> "StreamGeometry":
        """The stream shape of the engine of ``parameters``."""
        return cls(group_size=parameters.group_size, groups_per_cycle=parameters.groups_per_cycle,
                   rows=parameters.rows, max_tokens=parameters.max_tokens,
                   weight_format=parameters.kind.weight_format, act_width=parameters.act_width,
                   order=parameters.kind.order)

    @property
    def acts_per_beat(self) -> int:
        return self.group_size * self.groups_per_cycle

    @property
    def slot_bits(self) -> int:
        """Bits of one weight slot (one group of one row)."""
        if self.weight_format is WeightFormat.TL:
            return tl_code.code_bits(self.group_size)
        return 2 * self.group_size

    def chunks(self, k: int) -> int:
        return -(-k // self.acts_per_beat)

    def row_blocks(self, n: int) -> int:
        return -(-n // self.rows)


@dataclass(frozen=True)
class JobBeats:
    """The beats of one job as whole payload words (``last`` in the top bit), and its tiles."""

    acts: list[int]
    weights: list[int]
    token_tiles: list[int]


def pack_words(values: np.ndarray, width: int) -> list[int]:
    """Pack each row of ``values`` (two's complement, ``width`` bits each) into one integer."""
    mask = (1 << width) - 1
    words = []
    rows = np.asarray(values, dtype=np.int64)
    for row in rows.reshape(len(rows), -1 if rows.size else 0):
        word = 0
        for i, value in enumerate(row.tolist()):
            word |= (value & mask) << (i * width)
        words.append(word)
    return words


def unpack_words(words, count: int, width: int) -> np.ndarray:
    """Inverse of :func:`pack_words` for signed fields: (len(words), count) int64."""
    mask = (1 << width) - 1
    out = np.empty((len(words), count), dtype=np.int64)
    for r, word in enumerate(words):
        for i in range(count):
            field = (word >> (i * width)) & mask
            out[r, i] = field - (1 << width) if field >> (width - 1) else field
    return out


def _weight_slots(weights: np.ndarray, geom: StreamGeometry) -> np.ndarray:
    """(N_pad, groups_pad) slot values, zero-padded to whole row blocks and chunks."""
    n, k = weights.shape
    groups = geom.chunks(k) * geom.groups_per_cycle
    padded = np.zeros((geom.row_blocks(n) * geom.rows, groups * geom.group_size), np.int64)
    padded[:n, :k] = weights
    if geom.weight_format is WeightFormat.TL:
        return tl_code.pack(padded, geom.group_size).astype(np.int64)
    two_bit = (padded != 0) | (padded < 0) << 1
    shifts = 2 * np.arange(geom.group_size)
    return (two_bit.reshape(len(padded), groups, geom.group_size) << shifts).sum(axis=-1)


def job_beats(acts: np.ndarray, weights: np.ndarray, geom: StreamGeometry) -> JobBeats:
    """Every beat the engine consumes for ``Y = acts @ weights.T``, in stream order."""
    m, k = acts.shape
    slots = _weight_slots(np.asarray(weights), geom)
    chunks, per_beat = geom.chunks(k), geom.acts_per_beat
    padded = np.zeros((m, chunks * per_beat), np.int64)
    padded[:, :k] = acts
    act_words = np.array(pack_words(padded.reshape(m * chunks, per_beat), geom.act_width),
                         dtype=object).reshape(m, chunks)
    slot_chunks = slots.reshape(geom.row_blocks(len(weights)), geom.rows, chunks,
                                geom.groups_per_cycle).transpose(0, 2, 1, 3)
    weight_words = np.array(pack_words(slot_chunks.reshape(-1, geom.rows * geom.groups_per_cycle),
                                       geom.slot_bits), dtype=object)
    weight_words = weight_words.reshape(slot_chunks.shape[:2])
    tiles = [min(geom.max_tokens, m - start) for start in range(0, m, geom.max_tokens)]
    act_last = 1 << (per_beat * geom.act_width)
    weight_last = 1 << (geom.rows * geom.groups_per_cycle * geom.slot_bits)
    act_beats, weight_beats, start = [], [], 0
    for tile in tiles:
        tile_acts = [[int(act_words[start + token, chunk]) | act_last * (token == tile - 1)
                      for token in range(tile)] for chunk in range(chunks)]
        if geom.order is LoopOrder.WEIGHT:
            for block_words in weight_words:
                for chunk, word in enumerate(block_words):
                    weight_beats.append(int(word) | weight_last * (chunk == chunks - 1))
                    act_beats.extend(tile_acts[chunk])
        else:
            for chunk in range(chunks):
                final = 2 * act_last * (chunk == chunks - 1)
                act_beats.extend(word | final for word in tile_acts[chunk])
                weight_beats.extend(int(word) | weight_last * (block == len(weight_words) - 1)
                                    for block, word in enumerate(weight_words[:, chunk]))
        start += tile
    return JobBeats(acts=act_beats, weights=weight_beats, token_tiles=tiles)


def results_from_words(words, *, m: int, n: int, geom: StreamGeometry,
                       acc_width: int) -> np.ndarray:
    """Assemble result beats (in stream order) into the (M, N) result matrix."""
    values = unpack_words(words, geom.rows, acc_width)
    blocks = geom.row_blocks(n)
    out = np.zeros((m, blocks * geom.rows), np.int64)
    beat, start = 0, 0
    for tile in [min(geom.max_tokens, m - s) for s in range(0, m, geom.max_tokens)]:
        for block in range(blocks):
            for token in range(tile):
                out[start + token, block * geom.rows:(block + 1) * geom.rows] = values[beat]
                beat += 1
        start += tile
    return out[:, :n]
