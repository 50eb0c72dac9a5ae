"""The host's side of a generation, over a backend: the embedding lookup, the programs
started one after another, the LM head.

The accelerator does every decoder layer and the final norm; the host (a board's ARM cores,
as in TeLLMe, or the simulation's Python) writes each step's token embeddings to the image's
input rows, starts the step's program, waits for ``done``, reads the final hidden state and
takes the LM head's argmax (:func:`ternforge.sim.models.bitnet.lm_head`). What it needs of the
machine is a :class:`Backend`: register reads and writes, and reads and writes of the one
contiguous DDR buffer that holds the image (:func:`ternforge.sim.runtime.generation` lays it
out at the buffer's address). :class:`ternforge.sim.cocotb.model.SimulatorBackend` is the
simulator's; a board's would map the registers and a physically contiguous buffer (see the
README).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..hdl.accelerator.controller import register_map
from ..hdl.accelerator.top import UNIT_NAMES
from .models import fp as fm
from .models.bitnet import ModelWeights, lm_head

__all__ = ["Backend", "run_program", "unit_cycles", "generate"]


class Backend(Protocol):
    """What the host needs of an accelerator: its registers and its DDR buffer."""

    async def write_register(self, offset: int, value: int) -> None:
        """Write the 32-bit register at byte ``offset`` of the AXI4-Lite window."""

    async def read_register(self, offset: int) -> int:
        """Read the 32-bit register at byte ``offset``."""

    async def wait_done(self) -> None:
        """Return once the ``done`` interrupt (status bit 1) is high; raise if it does not
        come."""

    def write_memory(self, address: int, data: bytes) -> None:
        """Write ``data`` to DDR at ``address`` (inside the image's buffer)."""

    def read_memory(self, address: int, nbytes: int) -> bytes:
        """Read ``nbytes`` of DDR at ``address``."""


def _offset(register: str, names=UNIT_NAMES) -> int:
    """The byte offset of ``register`` of a controller whose units are ``names``."""
    return 4 * list(register_map(names)).index(register)


async def run_program(backend: Backend, address: int, length: int) -> int:
    """Run the program of ``length`` instructions at ``address`` from one start; return its
    cycles (the ``cycles`` register)."""
    await backend.write_register(_offset("program"), address)
    await backend.write_register(_offset("length"), length)
    await backend.write_register(_offset("control"), 1)
    await backend.wait_done()
    status = await backend.read_register(_offset("status"))
    if status != 2:
        raise RuntimeError(f"The accelerator's status must be done (2) after a program, "
                           f"not {status}")
    return await backend.read_register(_offset("cycles"))


async def unit_cycles(backend: Backend, names=UNIT_NAMES) -> dict:
    """Each unit's busy cycles in the last program (the ``<unit>_cycles`` registers of a
    controller whose units are ``names``)."""
    return {name: await backend.read_register(_offset(f"{name}_cycles", names))
            for name in names}


async def generate(backend: Backend, weights: ModelWeights, job: dict, *,
                   log=lambda text: None) -> dict:
    """Prefill ``job["prompt"]`` and decode ``job["new_tokens"]`` greedy tokens on the
    accelerator behind ``backend``, its image loaded (``job`` as
    :func:`ternforge.sim.runtime.generation` gives it, with ``prompt``). Returns ``tokens``,
    ``hidden`` (each state a token was chosen from, hex), ``prefill_cycles`` and
    ``decode_cycles`` (one a decode step: the first token comes from the prefill), and each
    step's busy cycles per unit, ``prefill_unit_cycles`` and ``decode_unit_cycles``."""
    d = weights.config.hidden

    def embed(ids):
        rows = fm.to_bits(weights.embedding[np.asarray(ids)].astype(np.float64), "float32")
        backend.write_memory(job["input"], rows.astype("<u4").tobytes())

    def final(row):
        raw = backend.read_memory(job["final"] + 4 * d * row, 4 * d)
        return np.frombuffer(raw, "<u4").astype(np.uint32)

    prompt = job["prompt"]
    embed(prompt)
    prefill = await run_program(backend, *job["prefill"])
    prefill_units = await unit_cycles(backend)
    log(f"prefill: {job['prefill'][1]} instructions, {prefill:,} cycles")
    hidden = final(len(prompt) - 1)
    tokens, states, decode, decode_units = [], [], [], []
    for step in range(job["new_tokens"]):
        token = int(np.argmax(lm_head(hidden, weights)))
        tokens.append(token)
        states.append(hidden.tobytes().hex())
        if step + 1 < job["new_tokens"]:
            embed([token])
            decode.append(await run_program(backend, *job["decode"][step]))
            decode_units.append(await unit_cycles(backend))
            log(f"decode {step + 1}: {job['decode'][step][1]} instructions, "
                f"{decode[-1]:,} cycles")
            hidden = final(0)
    return {"tokens": tokens, "hidden": states, "prefill_cycles": prefill,
            "decode_cycles": decode, "prefill_unit_cycles": prefill_units,
            "decode_unit_cycles": decode_units}
