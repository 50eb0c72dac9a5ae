"""cocotb driver of a whole model on the accelerator: a prefill, then greedy decode steps.

The design is the accelerator (:func:`ternforge.hdl.accelerator.top.accelerator`) inside the
simulator's memory, its image (weights, tables, programs: :class:`ternforge.sim.runtime.
ModelLayout`) loaded by plusarg. The host's part runs here, as the board's ARM cores would
run it: each step it writes the tokens' embeddings to the layout's input rows through VPI,
starts the step's program, waits for ``done``, reads the final hidden state back and takes
the LM head's argmax (:func:`ternforge.sim.models.bitnet.lm_head`). Nothing in Python runs
per cycle.

The job is ``TERNFORGE_JOB`` (a JSON file): ``checkpoint`` and ``model`` (the weights and
their :class:`~ternforge.hdl.accelerator.model.ModelConfig`), ``prompt`` (ids),
``new_tokens``, ``input`` and ``final`` (addresses), ``prefill`` (``[address, length]`` of its
program), ``decode`` (one per decode position), ``data_bits``; the result (JSON) goes beside
it: ``tokens``, ``hidden`` (each chosen-from state, hex), ``prefill_cycles``,
``decode_cycles``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from ...hdl.accelerator.controller import REGISTERS
from ...hdl.accelerator.model import ModelConfig
from ..checkpoint import load_checkpoint
from ..memory import read_words, write_words
from ..models import fp as fm
from ..models.bitnet import lm_head
from .axi import AxiLiteMaster


#: simulated time a program may take (50 M cycles at 250 MHz) before the run is called stuck
PROGRAM_TIMEOUT_MS = 200


async def _run(dut, lite, address: int, length: int, what: str) -> int:
    """Run the program at ``address`` from one start; return its cycles."""
    await lite.write(4 * REGISTERS.index("program"), address)
    await lite.write(4 * REGISTERS.index("length"), length)
    await lite.write(4 * REGISTERS.index("control"), 1)
    await RisingEdge(dut.clk)
    if dut.done.value != 1:
        await with_timeout(RisingEdge(dut.done), PROGRAM_TIMEOUT_MS, "ms")
    cycles = await lite.read(4 * REGISTERS.index("cycles"))
    dut._log.info(f"{what}: {length} instructions, {cycles:,} cycles")
    return cycles


@cocotb.test()
async def model_job(dut):
    job_path = Path(os.environ["TERNFORGE_JOB"])
    job = json.loads(job_path.read_text())
    config = ModelConfig(**job["model"])
    weights = load_checkpoint(job["checkpoint"], config)
    data_bits, d = job["data_bits"], config.hidden
    word = data_bits // 8
    Clock(dut.clk, 4, unit="ns").start()
    dut.rst.value = 1
    lite = AxiLiteMaster(dut)
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0

    def embed(ids, at):
        rows = fm.to_bits(weights.embedding[np.asarray(ids)].astype(np.float64), "float32")
        write_words(dut, at // word, rows.astype("<u4").tobytes(), data_bits=data_bits)

    def final(row):
        raw = read_words(dut, (job["final"] + 4 * d * row) // word, 4 * d // word,
                         data_bits=data_bits)
        return np.frombuffer(raw, "<u4").astype(np.uint32)

    prompt = job["prompt"]
    embed(prompt, job["input"])
    prefill = await _run(dut, lite, *job["prefill"], "prefill")
    hidden = final(len(prompt) - 1)
    tokens, states, decode = [], [], []
    for step in range(job["new_tokens"]):
        token = int(np.argmax(lm_head(hidden, weights)))
        tokens.append(token)
        states.append(hidden.tobytes().hex())
        if step + 1 < job["new_tokens"]:
            embed([token], job["input"])
            decode.append(await _run(dut, lite, *job["decode"][step], f"decode {step + 1}"))
            hidden = final(0)
    (job_path.parent / "result.json").write_text(json.dumps(
        {"tokens": tokens, "hidden": states, "prefill_cycles": prefill,
         "decode_cycles": decode}))
