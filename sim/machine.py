"""The accelerator in the simulator: built once with its DDR inside, running a generation.

:func:`build` elaborates :func:`~ternforge.hdl.accelerator.top.accelerator` inside the
Verilog memory (:class:`~ternforge.sim.memory.WithMemory`) and builds it with Verilator
(cached by content). :func:`generate` lays the model out in an image
(:func:`ternforge.sim.runtime.generation`), runs the prefill and the decode steps
(:mod:`ternforge.sim.cocotb.model`), and returns what the run gave.
"""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog

from . import verilator
from .memory import MEMORY_VERILOG, WithMemory, plusargs, write_image
from .runtime import generation

__all__ = ["TOPLEVEL", "build", "generate"]

TOPLEVEL = "ternforge_accelerator_sim"


def build(parameters, *, memory_bytes: int) -> Path:
    """The Verilator build of the accelerator of ``parameters``
    (:class:`~ternforge.hdl.accelerator.parameters.AcceleratorParameters`) on a memory of
    ``memory_bytes``."""
    from ..hdl.accelerator.top import accelerator

    words = memory_bytes // (parameters.data_bits // 8)
    top = WithMemory(accelerator(parameters), data_bits=parameters.data_bits, words=words)
    return verilator.build(verilog.convert(top, name=TOPLEVEL) + MEMORY_VERILOG,
                           toplevel=TOPLEVEL)


def generate(built: Path, parameters, weights, checkpoint: Path, prompt, new_tokens: int, *,
             work: Path, memory_bytes: int, latency: int = 20, stall: float = 0.0,
             seed: int = 1) -> dict:
    """Prefill ``prompt`` and decode ``new_tokens`` greedy tokens of ``weights`` (loaded from
    ``checkpoint``, which the simulation's host side reads again) on the build; returns
    ``tokens``, ``hidden`` (hex), ``prefill_cycles`` and ``decode_cycles``."""
    image, job = generation(weights, prompt_tokens=len(prompt), new_tokens=new_tokens,
                            gemv=parameters.gemv, attention=parameters.attention,
                            data_bits=parameters.data_bits, memory_bytes=memory_bytes)
    work.mkdir(parents=True, exist_ok=True)
    write_image(work / "image.hex", bytes(image.data), data_bits=parameters.data_bits)
    (work / "job.json").write_text(json.dumps({**job, "checkpoint": str(checkpoint),
                                               "prompt": [int(t) for t in prompt]}))
    verilator.run(built, toplevel=TOPLEVEL, test_module="ternforge.sim.cocotb.model",
                  work_dir=work, env={"TERNFORGE_JOB": str(work / "job.json")},
                  plusargs=plusargs(image=work / "image.hex", latency=latency,
                                    bytes_per_cycle=parameters.data_bits // 8, stall=stall,
                                    seed=seed))
    return json.loads((work / "result.json").read_text())
