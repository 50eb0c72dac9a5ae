"""Glue between valid/ready streams: connect one to another with its payload rewritten, and
join several into several (a join, a fork, or both). None of these holds a beat: a beat moves
when every source offers one and every sink can take it, exactly once. Sinks' ``ready`` must
not depend on their ``valid`` (true of every pipeline here)."""

__all__ = ["connect", "join"]


def connect(m, source, sink, payload, *, when=1):
    """Pass ``source`` to ``sink`` with payload assignments ``payload`` (a list of
    statements), only while ``when``."""
    m.d.comb += [sink.valid.eq(source.valid & when), source.ready.eq(sink.ready & when),
                 *payload]


def join(m, sources, sinks, payload):
    """One beat to every one of ``sinks`` from one beat of every one of ``sources``."""
    for sink in sinks:
        m.d.comb += sink.valid.eq(_all([s.valid for s in sources] +
                                       [s.ready for s in sinks if s is not sink]))
    for source in sources:
        m.d.comb += source.ready.eq(_all([s.ready for s in sinks] +
                                         [s.valid for s in sources if s is not source]))
    m.d.comb += payload


def _all(values):
    result = 1
    for value in values:
        result = value & result
    return result
