"""Multi-head attention as commands to a :class:`~ternforge.hdl.attention.unit.CachedAttention`:
the KV cache image, the command stream in the prefill loop order (or one command per KV
head for decode), and the query and appended-row streams (the unit's parameters and exact
cycle model are :class:`~ternforge.hdl.attention.parameters.AttentionUnitParameters`).

The loop order of prefill (:meth:`AttentionJob.commands`): heads in order; per head,
query tiles of ``rows`` rows in order; per query tile, one command reading the cache's rows
``0 .. last row of the tile`` (the later key tiles are masked for every row of the tile and
never read). Decode: one command per KV head, its ``H / Hkv`` query heads as the job's rows,
all at the newest position, appending the newest token's key and value first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...hdl.attention.layer import LayerAttention
from ...hdl.attention.parameters import (AttentionParameters, AttentionUnitParameters,
                                         Phase)
from ...hdl.attention.unit import CachedAttention
from ...hdl.fp.format import float_format
from ..models import fp as fm

__all__ = ["AttentionJob", "float_bits"]


@dataclass(frozen=True)
class AttentionJob:
    """One attention unit and its memory: how a problem's arrays become the unit's cache
    image and streams.

    Members
    -------
    unit : AttentionUnitParameters
        The unit's parameters (its engine's, the AXI4 port's), its cache layout and cycle
        model.
    sequenced : bool
        The unit with its sequencer (:class:`~ternforge.hdl.attention.layer.LayerAttention`,
        one ``start`` a layer) rather than commands.
    read_latency, write_latency : int
        The memory's cycles from a read address to its data, from a burst's last word to
        its response (the testbench memory's; the cycle model depends on them).
    """

    unit: AttentionUnitParameters = field(default_factory=AttentionUnitParameters)
    sequenced: bool = False
    read_latency: int = 20
    write_latency: int = 10

    def to_dict(self) -> dict:
        """The job as JSON-able values: the engine's parameters (``format`` by name), the
        unit's ``data_bits``, ``sequenced`` and the memory's latencies."""
        engine = self.unit.engine
        return {"format": engine.format.name, "head_dim": engine.head_dim, "rows": engine.rows,
                "cols": engine.cols, "max_keys": engine.max_keys, "lanes": engine.lanes,
                "data_bits": self.unit.data_bits, "sequenced": self.sequenced,
                "read_latency": self.read_latency, "write_latency": self.write_latency}

    @classmethod
    def from_dict(cls, values: dict) -> "AttentionJob":
        """The job that :meth:`to_dict` gave ``values``."""
        values = dict(values)
        memory = {key: values.pop(key) for key in ("sequenced", "read_latency",
                                                   "write_latency") if key in values}
        unit = {"data_bits": values.pop("data_bits")} if "data_bits" in values else {}
        return cls(unit=AttentionUnitParameters(engine=AttentionParameters(**values), **unit),
                   **memory)

    def component(self):
        """The unit (with its sequencer if :attr:`sequenced`)."""
        return (LayerAttention if self.sequenced else CachedAttention)(self.unit)

    @property
    def module_name(self) -> str:
        e = self.unit.engine
        return (f"attention{'_layer' * self.sequenced}_{e.format.name}_d{e.head_dim}_r{e.rows}"
                f"_c{e.cols}_k{e.max_keys}_p{e.lanes}_w{self.unit.data_bits}")

    def check(self, q, k, v, phase) -> None:
        """Refuse shapes the unit cannot run (``ValueError``)."""
        phase, engine = Phase.of(phase), self.unit.engine
        if q.ndim != 3 or k.ndim != 3 or k.shape != v.shape:
            raise ValueError(f"Q must be (H, M, D) and K, V (Hkv, N, D) alike, not "
                             f"{q.shape!r}, {k.shape!r}, {v.shape!r}")
        (heads, tokens, d), (kv_heads, keys, kd) = q.shape, k.shape
        for name, width in (("Q", d), ("K", kd)):
            if width != engine.head_dim:
                raise ValueError(f"Head dimension of {name} must be {engine.head_dim}, "
                                 f"not {width!r}")
        if heads % kv_heads:
            raise ValueError(f"Query heads must be a multiple of the {kv_heads} KV heads, "
                             f"not {heads!r}")
        if phase is Phase.PREFILL and keys != tokens:
            raise ValueError(f"Prefill keys must number the {tokens} queries, not {keys!r}")
        if phase is Phase.DECODE and tokens != 1:
            raise ValueError(f"Decode queries must be of shape (H, 1, D), not {q.shape!r}")
        if phase is Phase.DECODE and heads // kv_heads > engine.rows:
            raise ValueError(f"Query heads per KV head must be at most {engine.rows}, "
                             f"not {heads // kv_heads!r}")
        if keys > engine.max_keys:
            raise ValueError(f"Keys must be at most {engine.max_keys}, not {keys!r}")

    def image(self, k, v, rows: int) -> bytearray:
        """The KV cache: rows ``0 .. rows - 1`` of every KV head's region filled."""
        kv_heads, d = k.shape[0], self.unit.engine.head_dim
        cache = np.zeros((kv_heads, self.unit.engine.max_keys, 2 * d), dtype=k.dtype)
        cache[:, :rows, :d] = k[:, :rows]
        cache[:, :rows, d:] = v[:, :rows]
        return bytearray(cache.astype(k.dtype).tobytes())

    def commands(self, q, k, v, phase) -> tuple[list, list, list, list]:
        """``(commands, query words, new_kv words, output order)``: each output tile's
        ``(head, first token, rows)``."""
        heads, tokens, _ = q.shape
        kv_heads, keys, _ = k.shape
        group, tile, region = heads // kv_heads, self.unit.engine.rows, self.unit.region
        commands, queries, appended, order = [], [], [], []
        if Phase.of(phase) is Phase.PREFILL:
            for head in range(heads):
                for start in range(0, tokens, tile):
                    rows = min(tile, tokens - start)
                    commands.append({"rows": rows, "keys": start + rows, "position": start,
                                     "row_step": 1, "base": region(head // group),
                                     "append": 0})
                    queries += q[head, start:start + rows].reshape(-1).tolist()
                    order.append((head, start, rows))
            return commands, queries, appended, order
        for kv_head in range(kv_heads):
            commands.append({"rows": group, "keys": keys, "position": keys - 1, "row_step": 0,
                             "base": region(kv_head), "append": 1})
            queries += q[kv_head * group:(kv_head + 1) * group, 0].reshape(-1).tolist()
            appended += k[kv_head, -1].tolist() + v[kv_head, -1].tolist()
            order += [(kv_head * group + g, 0, 1) for g in range(group)]
        return commands, queries, appended, order

    def start(self, q, k, phase) -> dict:
        """The sequencer's ``start`` for the commands of :meth:`commands`."""
        heads, kv_heads = q.shape[0], k.shape[0]
        decode = Phase.of(phase) is Phase.DECODE
        return {"decode": int(decode), "heads": kv_heads if decode else heads,
                "group": heads // kv_heads, "tokens": k.shape[1],
                "base": self.unit.region(0), "stride": self.unit.region(1)}

    def cycles(self, commands) -> int:
        """The unit's cycles for ``commands`` against this job's memory
        (:meth:`~ternforge.hdl.attention.parameters.AttentionUnitParameters.cycles`); the
        testbenches check it."""
        return self.unit.cycles(commands, read_latency=self.read_latency,
                                sequenced=self.sequenced)


def float_bits(array, fmt):
    """Float (or bfloat16 bit-pattern) arrays as bit patterns of ``fmt``."""
    fmt = float_format(fmt)
    array = np.asarray(array)
    if fmt.name == "bfloat16" and array.dtype == np.uint16:
        return array
    return fm.to_bits(array.astype(np.float64), fmt)
