"""Multi-head attention as commands to a :class:`~ternforge.hdl.attention.unit.CachedAttention`:
the KV cache image, the command stream in the prefill loop order (or one command per KV
head for decode), the query and appended-row streams, and the unit's exact cycle model.

The loop order of prefill (:meth:`AttentionJob.commands`): heads in order; per head,
query tiles of ``rows`` rows in order; per query tile, one command reading the cache's rows
``0 .. last row of the tile`` (the later key tiles are masked for every row of the tile and
never read). Decode: one command per KV head, its ``H / Hkv`` query heads as the job's rows,
all at the newest position, appending the newest token's key and value first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...hdl.fp.format import float_format
from ..models import fp as fm

__all__ = ["AttentionJob", "PHASES"]

PHASES = ("prefill", "decode")


@dataclass(frozen=True)
class AttentionJob:
    """One configuration of the attention unit and its memory.

    Members
    -------
    format, head_dim, rows, cols, max_keys, lanes, data_bits :
        The unit's parameters.
    sequenced : bool
        The unit with its sequencer (:class:`~ternforge.hdl.attention.layer.LayerAttention`,
        one ``start`` a layer) rather than commands.
    read_latency, write_latency : int
        The memory's cycles from a read address to its data, from a burst's last word to
        its response (the testbench memory's; the cycle model depends on them).
    """

    format: str = "float32"
    head_dim: int = 96
    rows: int = 8
    cols: int = 8
    max_keys: int = 4096
    lanes: int = 1
    data_bits: int = 512
    sequenced: bool = False
    read_latency: int = 20
    write_latency: int = 10

    def component(self):
        from ...hdl.attention.layer import LayerAttention
        from ...hdl.attention.unit import CachedAttention
        return (LayerAttention if self.sequenced else CachedAttention)(
            format=self.format, head_dim=self.head_dim, rows=self.rows, cols=self.cols,
            max_keys=self.max_keys, lanes=self.lanes, data_bits=self.data_bits)

    def unit(self):
        """The :class:`~ternforge.hdl.attention.unit.CachedAttention` (not to elaborate)."""
        component = self.component()
        component._MustUse__silence = True
        return component.unit if self.sequenced else component

    @property
    def module_name(self) -> str:
        return (f"attention{'_layer' * self.sequenced}_{self.format}_d{self.head_dim}_r{self.rows}_c{self.cols}"
                f"_k{self.max_keys}_p{self.lanes}_w{self.data_bits}")

    @property
    def row_bytes(self) -> int:
        return 2 * self.head_dim * float_format(self.format).width // 8

    def region(self, kv_head: int) -> int:
        """Byte address of a KV head's cache region."""
        return kv_head * self.max_keys * self.row_bytes

    def check(self, q, k, v, phase: str) -> None:
        """Refuse shapes the unit cannot run (``ValueError``)."""
        if phase not in PHASES:
            raise ValueError(f"Phase must be prefill or decode, not {phase!r}")
        if q.ndim != 3 or k.ndim != 3 or k.shape != v.shape:
            raise ValueError(f"Q must be (H, M, D) and K, V (Hkv, N, D) alike, not "
                             f"{q.shape!r}, {k.shape!r}, {v.shape!r}")
        (heads, tokens, d), (kv_heads, keys, kd) = q.shape, k.shape
        if d != self.head_dim or kd != d:
            raise ValueError(f"Head dimension must be {self.head_dim}, not {kd!r}")
        if heads % kv_heads:
            raise ValueError(f"Query heads must be a multiple of the {kv_heads} KV heads, "
                             f"not {heads!r}")
        if phase == "prefill" and keys != tokens:
            raise ValueError(f"Prefill keys must number the {tokens} queries, not {keys!r}")
        if phase == "decode" and tokens != 1:
            raise ValueError(f"Decode queries must be of shape (H, 1, D), not {q.shape!r}")
        if phase == "decode" and heads // kv_heads > self.rows:
            raise ValueError(f"Query heads per KV head must be at most {self.rows}, "
                             f"not {heads // kv_heads!r}")
        if keys > self.max_keys:
            raise ValueError(f"Keys must be at most {self.max_keys}, not {keys!r}")

    def image(self, k, v, rows: int) -> bytearray:
        """The KV cache: rows ``0 .. rows - 1`` of every KV head's region filled."""
        kv_heads = k.shape[0]
        cache = np.zeros((kv_heads, self.max_keys, 2 * self.head_dim), dtype=k.dtype)
        cache[:, :rows, :self.head_dim] = k[:, :rows]
        cache[:, :rows, self.head_dim:] = v[:, :rows]
        return bytearray(cache.astype(k.dtype).tobytes())

    def commands(self, q, k, v, phase: str) -> tuple[list, list, list, list]:
        """``(commands, query words, new_kv words, output order)``: each output tile's
        ``(head, first token, rows)``."""
        heads, tokens, _ = q.shape
        kv_heads, keys, _ = k.shape
        group = heads // kv_heads
        commands, queries, appended, order = [], [], [], []
        if phase == "prefill":
            for head in range(heads):
                for start in range(0, tokens, self.rows):
                    rows = min(self.rows, tokens - start)
                    commands.append({"rows": rows, "keys": start + rows, "position": start,
                                     "row_step": 1, "base": self.region(head // group),
                                     "append": 0})
                    queries += q[head, start:start + rows].reshape(-1).tolist()
                    order.append((head, start, rows))
            return commands, queries, appended, order
        for kv_head in range(kv_heads):
            commands.append({"rows": group, "keys": keys, "position": keys - 1, "row_step": 0,
                             "base": self.region(kv_head), "append": 1})
            queries += q[kv_head * group:(kv_head + 1) * group, 0].reshape(-1).tolist()
            appended += k[kv_head, -1].tolist() + v[kv_head, -1].tolist()
            order += [(kv_head * group + g, 0, 1) for g in range(group)]
        return commands, queries, appended, order

    def start(self, q, k, phase: str) -> dict:
        """The sequencer's ``start`` for the commands of :meth:`commands`."""
        heads, kv_heads = q.shape[0], k.shape[0]
        return {"decode": int(phase == "decode"),
                "heads": kv_heads if phase == "decode" else heads, "group": heads // kv_heads,
                "tokens": k.shape[1], "base": self.region(0), "stride": self.region(1)}

    def bytes_read(self, commands) -> int:
        """DDR bytes the commands read (an appended row is not read back)."""
        return sum(c["keys"] - c["append"] for c in commands) * self.row_bytes

    def cycles(self, commands) -> int:
        """Cycles from the first command accepted to the last output, without stalls: per
        command, the engine's job and two cycles to hand over (the first one's only one).
        The first cached key reaches the engine
        :meth:`~ternforge.hdl.attention.unit.CachedAttention.first_key_cycle` cycles after
        its job starts; an appended row's write is answered before the job
        ends (at any realistic head dimension); the sequencer adds a cycle before the first
        command. The testbenches check it."""
        unit = self.unit()
        engine, first_key = unit.engine, unit.first_key_cycle(self.read_latency)
        return sum(2 + engine.cycles(c["rows"], c["keys"], first_key=first_key * (
            c["keys"] > c["append"])) for c in commands) - 1 + self.sequenced


def float_bits(array, fmt):
    """Float (or bfloat16 bit-pattern) arrays as bit patterns of ``fmt``."""
    fmt = float_format(fmt)
    array = np.asarray(array)
    if fmt.name == "bfloat16" and array.dtype == np.uint16:
        return array
    return fm.to_bits(array.astype(np.float64), fmt)
