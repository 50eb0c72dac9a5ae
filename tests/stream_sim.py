"""Drive a component's streams in the Amaranth simulator: every input stream from its own
list of beats and every output stream into its own list, each stalling at random; or run a
test's own testbenches on a clocked design; every simulation on a thread of its own
(:func:`run_simulation`)."""

import random
import threading

from amaranth.sim import Simulator


def run_simulation(sim):
    """``sim.run()`` on a new thread (raising what it raises).

    CPython 3.11 keeps frames in 16 KiB chunks, mapping a chunk when a call does not fit the
    last and unmapping it on return; the simulator's generated code, called once a delta
    cycle, can sit right on such a boundary at the depth a test runner calls it from (a
    pytest-xdist worker's, say), and then spends ten times its time in ``mmap`` (CPython
    issue gh-142183, fixed in 3.13 and later by keeping one spare chunk). A new thread's
    stack starts empty, so the depth is always the same, and shallow."""
    failed = []

    def target():
        try:
            sim.run()
        except BaseException as error:  # (raised again on the caller's thread)
            failed.append(error)

    thread = threading.Thread(target=target, name="simulation")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def _assign(ctx, payload, beat):
    if isinstance(beat, dict):
        for name, value in beat.items():
            _assign(ctx, getattr(payload, name), value)
    else:
        ctx.set(payload, beat)


def run_testbench(dut, *benches):
    """Run the testbenches ``benches`` (``async`` functions of the context) on ``dut`` with a
    1 MHz clock, until they all return."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    run_simulation(sim)


def run_streams(dut, inputs: dict, outputs: dict, *, stall: float = 0.0, seed: int = 0,
                signals: dict = (), limit: int = 200_000):
    """``inputs``: port name to a list of beats (ints, or dicts of field values);
    ``outputs``: port name to the number of beats to collect; ``signals``: plain input
    signals to hold. Returns the collected beats by port (ints, or ``data.Const`` views) and
    the cycle of each output beat."""
    collected = {name: [] for name in outputs}
    cycles = {name: [] for name in outputs}
    rng = random.Random(seed)

    def source(name, beats):
        port = getattr(dut, name)

        async def process(ctx):
            for beat in beats:
                ctx.set(port.valid, 0)
                while stall and rng.random() < stall:
                    await ctx.tick()
                ctx.set(port.valid, 1)
                _assign(ctx, port.payload, beat)
                await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)
        return process

    def sink(name, count):
        port = getattr(dut, name)

        async def process(ctx):
            cycle = 0
            while len(collected[name]) < count:
                ctx.set(port.ready, not (stall and rng.random() < stall))
                _, _, valid, ready, payload = await ctx.tick().sample(
                    port.valid, port.ready, port.payload)
                if valid and ready:
                    collected[name].append(payload)
                    cycles[name].append(cycle)
                cycle += 1
                assert cycle < limit, f"{name}: {len(collected[name])} of {count} beats"
        return process

    async def hold(ctx):
        for name, value in dict(signals).items():
            ctx.set(getattr(dut, name), value)
    run_testbench(dut, hold, *(source(name, beats) for name, beats in inputs.items()),
                  *(sink(name, count) for name, count in outputs.items()))
    return collected, cycles
