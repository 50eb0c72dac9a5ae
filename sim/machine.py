"""The accelerator in the simulator: built once with its DDR inside, running a generation.

:func:`build` elaborates :func:`~ternforge.hdl.accelerator.top.accelerator` inside the
Verilog memory (:class:`~ternforge.sim.memory.WithMemory`) and builds it with Verilator
(cached by content on disk, and by its parameters in the process: writing a large
accelerator's Verilog takes tens of seconds). :func:`generate` lays the model out in an image
(:func:`ternforge.sim.runtime.generation`), runs the prefill and the decode steps
(:mod:`ternforge.sim.cocotb.model`), and returns what the run gave.
"""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog

from ..hdl.common.timing import MemoryTiming
from . import verilator
from .cache import cache_root
from .memory import MEMORY_VERILOG, WithMemory, plusargs, write_image
from .runtime import generation, predicted_cycles

__all__ = ["TOPLEVEL", "SIMULATED", "build", "generate"]

TOPLEVEL = "ternforge_accelerator_sim"
#: cycles from a write burst's last word to its response in a run
WRITE_LATENCY = 10
#: the models the simulator runs whole, and the KV cache (tokens) their accelerator has
SIMULATED = {"tiny": 256}

#: this process's builds: (parameters, memory bytes, trace, cache root) -> build folder
_BUILT: dict[tuple, Path] = {}


def build(parameters, *, memory_bytes: int, trace: str | None = None) -> Path:
    """The Verilator build of the accelerator of ``parameters``
    (:class:`~ternforge.hdl.accelerator.parameters.AcceleratorParameters`) on a memory of
    ``memory_bytes`` (words of a DDR port's width; one port, or ``hp_ports`` each with its
    timing and stalls); with ``trace`` (``"vcd"`` or ``"saif"``, see
    :func:`ternforge.sim.verilator.build`), a separate build that can record it. A second
    call in a process returns the first's folder while it exists."""
    from ..hdl.accelerator.top import accelerator

    key = (parameters, memory_bytes, trace, cache_root())
    if key not in _BUILT or not _BUILT[key].exists():
        words = memory_bytes // (parameters.port_bits // 8)
        top = WithMemory(accelerator(parameters), data_bits=parameters.port_bits, words=words)
        _BUILT[key] = verilator.build(verilog.convert(top, name=TOPLEVEL) + MEMORY_VERILOG,
                                      toplevel=TOPLEVEL, trace=trace)
    return _BUILT[key]


def generate(built: Path, parameters, weights, checkpoint: Path, prompt, new_tokens: int, *,
             work: Path, memory_bytes: int, latency: int = 20, stall: float = 0.0,
             seed: int = 1, trace: bool = False) -> dict:
    """Prefill ``prompt`` and decode ``new_tokens`` greedy tokens of ``weights`` (loaded from
    ``checkpoint``, which the simulation's host side reads again) on the build; returns
    ``tokens``, ``hidden`` (hex), ``prefill_cycles`` and ``decode_cycles``, and
    ``predicted_prefill_cycles`` and ``predicted_decode_cycles``: the accelerator's cycle model
    of the same programs (:func:`~ternforge.sim.runtime.predicted_cycles`) on the memory
    without stalls (with ``stall``, the runs take longer; each DDR port its own), or None for
    both and ``unmodeled`` (why) if a layer is outside a unit's cycle model. With
    ``trace``, a build made with a trace records it into ``work`` (``dump.saif`` or
    ``dump.vcd``)."""
    image, job = generation(weights, prompt_tokens=len(prompt), new_tokens=new_tokens,
                            gemv=parameters.gemv, attention=parameters.attention,
                            data_bits=parameters.data_bits, memory_bytes=memory_bytes)
    work.mkdir(parents=True, exist_ok=True)
    write_image(work / "image.hex", bytes(image.data), data_bits=parameters.port_bits)
    (work / "job.json").write_text(json.dumps({**job, "checkpoint": str(checkpoint),
                                               "memory_bits": parameters.port_bits,
                                               "prompt": [int(t) for t in prompt]}))
    verilator.run(built, toplevel=TOPLEVEL, test_module="ternforge.sim.cocotb.model",
                  work_dir=work, env={"TERNFORGE_JOB": str(work / "job.json")},
                  plusargs=plusargs(image=Path("image.hex"), latency=latency,
                                    write_latency=WRITE_LATENCY,
                                    bytes_per_cycle=parameters.port_bits // 8, stall=stall,
                                    seed=seed), trace=trace)
    result = json.loads((work / "result.json").read_text())
    memory = MemoryTiming(latency=latency, write_latency=WRITE_LATENCY)
    step = 2 * parameters.data_bits // 8  # bytes of an instruction

    def predicted(program):
        address, length = program
        return predicted_cycles(parameters, image.get(address, length * step),
                                address=address, memory=memory)

    try:
        return {**result, "predicted_prefill_cycles": predicted(job["prefill"]),
                "predicted_decode_cycles": [predicted(program) for program in
                                            job["decode"][:len(result["decode_cycles"])]]}
    except ValueError as error:  # a layer outside a unit's cycle model (too few rows, say)
        return {**result, "predicted_prefill_cycles": None, "predicted_decode_cycles": None,
                "unmodeled": str(error)}
