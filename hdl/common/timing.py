"""Cycle models of the memory system: DDR's timing, and the units' readers and writers on it.

The units' own cycle models (:meth:`VectorUnitParameters.cycles
<ternforge.hdl.accelerator.parameters.VectorUnitParameters.cycles>` and the others) are built
from these pieces, which follow :mod:`~ternforge.hdl.common.axi`'s burst masters,
:mod:`~ternforge.hdl.common.dma`'s buffered reader and writer, the
:class:`~ternforge.hdl.common.interconnect.AxiInterconnect`'s round-robin grants and a
deterministic DDR (:class:`MemoryTiming`) cycle for cycle:

- a load is cut into bursts of at most ``max_burst`` words that never cross 4 KiB
  (:func:`bursts`);
- a read burst's words arrive ``latency`` cycles after its address, one word a cycle, after
  the words of every burst granted before it; the readers of a unit request their first
  bursts round-robin, each as many as its FIFO has room for (:func:`first_arrivals`); after
  those, a reader requests a burst whenever it has room for one, far ahead of its consumer
  (a FIFO of ``depth`` words holds many cycles of elements), so later words are never late;
- a write burst is offered once all its words are in its writer's FIFO, and DDR takes one
  burst at a time: the next address only after the previous burst's response, which comes
  ``write_latency`` cycles after its last word (:class:`WriteChannel`; through a striper
  later, :meth:`MemoryTiming.write_answer`);
- a bus striped over several DDR ports (:class:`~ternforge.hdl.common.striper.AxiStriper`)
  behaves as one port of a longer latency that takes a written word in several cycles
  (:meth:`MemoryTiming.striped`).

Times are cycles from an origin of the caller's choosing; a unit's model adds its own
constant, the registers between its instruction and its first request and between its last
response and ``done``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .checks import check_int

__all__ = ["COMMAND_CYCLES", "MemoryTiming", "ReadStream", "bursts", "first_arrivals",
           "Schedule", "write_bursts", "WriteChannel"]

#: bursts a read master has in flight at most (its :class:`~ternforge.hdl.common.axi.
#: BurstReader`'s ``outstanding``)
OUTSTANDING = 8
#: cycles from a :class:`~ternforge.hdl.common.axi.BurstReader` taking a command to its first
#: burst's request (the cycle between computes the burst, so that every request starts from
#: registers); a reader takes its next command the cycle after its last request, so the
#: bursts of consecutive commands follow each other ``COMMAND_CYCLES`` idle cycles apart
COMMAND_CYCLES = 2


@dataclass(frozen=True)
class MemoryTiming:
    """A deterministic DDR as the cycle models assume it: one data word a cycle each way.

    Parameters
    ----------
    latency : int
        Cycles from a read burst's address to its first word.
    write_latency : int
        Cycles from a write burst's last word to its response.
    write_word_cycles : int
        Cycles the port takes a written word in, after the burst's last word is taken (1: a
        port as wide as the words; ``ports`` behind an
        :class:`~ternforge.hdl.common.striper.AxiStriper`, which writes a buffered burst on
        one of its narrow ports).
    """

    latency: int = 20
    write_latency: int = 10
    write_word_cycles: int = 1

    def __post_init__(self):
        check_int("Read latency", self.latency, 1, 1 << 16)
        check_int("Write latency", self.write_latency, 1, 1 << 16)
        check_int("Write word cycles", self.write_word_cycles, 1, 64)

    #: cycles a word read through an :class:`~ternforge.hdl.common.striper.AxiStriper`
    #: arrives after one port of the same latency would deliver it, besides ``ports - 1``
    #: cycles of gathering its narrow words (its request FIFO and its register), measured
    #: on Verilator
    STRIPED_READ_CYCLES = 2
    #: cycles a striped write's response comes after a single port's, besides the narrow
    #: port's extra cycles a word (its buffer's register), measured on Verilator
    STRIPED_WRITE_CYCLES = 1

    def write_answer(self, words: int) -> int:
        """Cycles from a write burst of ``words`` words' last word to its response."""
        return self.write_latency + (self.write_word_cycles - 1) * words

    def striped(self, ports: int) -> "MemoryTiming":
        """The timing of one wide port striped over ``ports`` DDR ports of this timing by an
        :class:`~ternforge.hdl.common.striper.AxiStriper`, cycle for cycle: reads arrive
        :attr:`STRIPED_READ_CYCLES` plus ``ports - 1`` cycles later, and a write burst, buffered whole and written on
        one narrow port, is answered :attr:`STRIPED_WRITE_CYCLES` later plus ``ports - 1``
        cycles a word."""
        check_int("HP ports", ports, 1, 8)
        if ports == 1:
            return self
        return MemoryTiming(latency=self.latency + self.STRIPED_READ_CYCLES + ports - 1,
                            write_latency=self.write_latency + self.STRIPED_WRITE_CYCLES,
                            write_word_cycles=ports * self.write_word_cycles)


def bursts(address: int, words: int, *, word_bytes: int, max_burst: int) -> list[int]:
    """The words of each burst of a load of ``words`` words from ``address``: at most
    ``max_burst`` and not across a 4 KiB boundary."""
    out = []
    while words > 0:
        to_boundary = (4096 - address % 4096) // word_bytes
        n = min(words, max_burst, to_boundary)
        out.append(n)
        words -= n
        address += n * word_bytes
    return out


@dataclass
class ReadStream:
    """One reader's bursts, in order, as :func:`first_arrivals` takes them.

    Parameters
    ----------
    start : int
        The first cycle it may request.
    commands : list of list of int
        Each command's bursts (a reader takes its next command the cycle after its last
        burst of the previous one is requested, and requests its first burst
        :data:`COMMAND_CYCLES` cycles later).
    depth : int
        Words of its FIFO: what it requests before its consumer takes any.
    """

    start: int
    commands: list
    depth: int


def first_arrivals(streams: list[ReadStream], memory: MemoryTiming,
                   state: dict | None = None) -> list[list[int]]:
    """The cycle each word of each stream's first bursts arrives: those its FIFO has room for
    before it delivers anything, requested round-robin between the streams (in port order,
    one address a cycle) and answered in order. Words after them are never late (see the
    module documentation) and are not listed.

    ``state`` carries the bus from one call to the next (``last``: the stream granted last;
    ``free``: the cycle DDR finishes the data already asked for), and is updated."""
    queues = []
    for stream in streams:
        queue, room, full = [], stream.depth, False
        for command in stream.commands:
            for k, length in enumerate(command):
                if length > room or len(queue) == OUTSTANDING:
                    full = True
                    break
                queue.append((length, COMMAND_CYCLES if k == 0 and queue else 0))
                room -= length
            if full:
                break
        queues.append(queue)
    arrivals = [[] for _ in streams]
    ready = [stream.start for stream in streams]
    position = [0] * len(streams)
    state = {} if state is None else state
    free, last = state.get("free"), state.get("last", len(streams) - 1)
    cycle = min(ready)
    while any(p < len(q) for p, q in zip(position, queues)):
        for step in range(1, len(streams) + 1):
            i = (last + step) % len(streams)
            if position[i] < len(queues[i]):
                length, gap = queues[i][position[i]]
                if ready[i] + gap <= cycle:
                    break
        else:
            cycle += 1
            continue
        length, gap = queues[i][position[i]]
        first = cycle + memory.latency if free is None else max(cycle + memory.latency, free)
        arrivals[i].extend(range(first, first + length))
        free, last = first + length, i
        position[i] += 1
        ready[i] = cycle + 1
        cycle += 1
    state.update(free=free, last=last)
    return arrivals


class Schedule:
    """The cycles a consumer that takes one element a cycle takes its elements: each no
    earlier than the one before plus one, than ``earliest`` (the first) and than the cycle its
    data is there (``needs``, element by element from the first; past them, none).

    :meth:`time` gives element ``i``'s cycle, :attr:`last` the final one's."""

    def __init__(self, needs: list, count: int, earliest: int | None = None):
        self.count, self.times = count, []
        cycle = None
        for i, need in enumerate(needs[:count]):
            floor = earliest if i == 0 else cycle + 1
            cycle = need if floor is None else floor if need is None else max(floor, need)
            self.times.append(cycle)
        if not self.times:
            self.times.append(earliest)

    def time(self, i: int) -> int:
        if i < len(self.times):
            return self.times[i]
        return self.times[-1] + i - len(self.times) + 1

    @property
    def last(self) -> int:
        return self.time(self.count - 1)


def write_bursts(address: int, count: int, per_word: int, time, *, word_bytes: int,
                 max_burst: int, writer: int = 0) -> list[tuple[int, int, int]]:
    """The write bursts of ``count`` results, ``per_word`` to a word, from ``address``, as
    :meth:`WriteChannel.write` takes them: ``(ready, words, writer)``, ``ready`` the cycle
    its last word is in the writer's FIFO (``time(i)``: the cycle result ``i`` is)."""
    out, filled = [], 0
    for words in bursts(address, -(-count // per_word), word_bytes=word_bytes,
                        max_burst=max_burst):
        filled += words
        out.append((time(min(count, filled * per_word) - 1), words, writer))
    return out


class WriteChannel:
    """DDR's write side shared by a unit's writers, across calls of :meth:`write`: one burst
    at a time, the next address only after the previous response; bursts ready in the same
    cycle are granted round-robin between the writers (their port order)."""

    def __init__(self, writers: int, memory: MemoryTiming):
        self.writers, self.memory = writers, memory
        self.free, self.last = None, writers - 1

    def write(self, pending: list[tuple[int, int, int]]) -> list[int]:
        """The cycle each burst's response arrives, of bursts ``(ready, words, writer)``,
        each writer's in order."""
        queues = [deque() for _ in range(self.writers)]
        for k, burst in enumerate(pending):
            queues[burst[2]].append(k)
        answered = [0] * len(pending)
        while any(queues):
            heads = [w for w in range(self.writers) if queues[w]]
            soonest = min(pending[queues[w][0]][0] for w in heads)
            now = soonest if self.free is None else max(soonest, self.free)
            ready = [w for w in heads if pending[queues[w][0]][0] <= now]
            writer = next(w for step in range(1, self.writers + 1)
                          if (w := (self.last + step) % self.writers) in ready)
            k = queues[writer].popleft()
            _, words, _ = pending[k]
            answered[k] = now + words + self.memory.write_answer(words) + 1
            self.free, self.last = answered[k] + 1, writer
        return answered
