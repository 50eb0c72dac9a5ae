"""How fast a model runs on the accelerator: decode tokens per second and time to the first
token, from the accelerator's own cycle model.

Nothing here is a separate estimate. The runtime lays the model out (from its shapes alone, a
dry image) and writes the programs the host would start: a decode step at each context, a
prefill of each prompt. Each program's cycles are those of :func:`~ternforge.sim.runtime.
predicted_cycles` (here with each unit's share, and the repeated instructions of the layers
modeled once), the units' and the controller's cycle models that the tests check on
Verilator to the cycle (the tiny model's prefill and decode steps, a 0.7B-shaped layer). The
memory those models assume is deterministic: ``latency`` cycles to a read burst's first word,
one bus word a cycle each way (:class:`~ternforge.hdl.common.timing.MemoryTiming`); writes
are answered half the read latency after their last word. A bus striped over several HP ports
sees each port's timing through the striper's
(:meth:`~ternforge.hdl.common.timing.MemoryTiming.striped`, measured on Verilator).

Around the programs the host does what TeLLMe's ARM cores do: the embedding lookup and the LM
head (the tied or separate output matrix, ``vocab x hidden``, in the format ``lm_head`` says:
:func:`~ternforge.sim.models.bitnet.head_bytes`). Its time is the matrix's bytes at
:data:`HOST_BANDWIDTH_SHARE` of the board's DDR bandwidth: an optimistic bound, stated as such
(no measured figure of the board's cores stands behind it).

The DDR bytes of a token are those its instructions read and write (each unit's ``ddr_bytes``,
:meth:`~ternforge.hdl.accelerator.parameters.AcceleratorParameters.instruction_bytes`)
and the host's (the LM head's matrix, the embeddings). The roofline is the time those bytes
take at full bandwidth: the accelerator's at its ports' (the smaller of the board's DDR and
one bus word a cycle at the clock: a word of all its HP ports'), the host's at the host's.
"""

from __future__ import annotations

import functools
import math

from ..hdl.accelerator.controller import program_cycles
from ..hdl.accelerator.parameters import AcceleratorParameters
from ..hdl.common.checks import check_int
from ..hdl.common.timing import MemoryTiming
from ..sim.models.bitnet import head_bytes, shaped_weights
from ..sim.runtime import Image, ModelLayout, waiting_instructions

__all__ = ["CONTEXTS", "PROMPTS", "LATENCY_NS", "latency_cycles", "HOST_BANDWIDTH_SHARE",
           "UNIT_GROUPS", "PARTS", "memory_timing", "performance", "plot_performance"]

#: the decode contexts and prompt lengths reported by default (TeLLMe's)
CONTEXTS = (128, 512, 1024, 2048)
PROMPTS = (64, 128)
#: nanoseconds from a read burst's address to its first word that the figures assume, about
#: what a Zynq UltraScale+ HP port sees of its DDR4 (an assumption): :func:`latency_cycles`
#: at the board's clock (32 cycles at 166.7 MHz, 35 at 180 MHz)
LATENCY_NS = 192
#: the share of the board's DDR bandwidth the host's LM head streams at: all of it (an
#: optimistic bound)
HOST_BANDWIDTH_SHARE = 1.0
#: the breakdown's parts: the units whose instructions make each
UNIT_GROUPS = {"linear": ("gemv",), "attention": ("attention", "copy"),
               "element_wise": ("vector", "rope")}
#: every part of the breakdown: the units', the controller's, the host's
PARTS = (*UNIT_GROUPS, "controller", "lm_head", "host")


def latency_cycles(clock_hz: float, latency: int | None = None) -> int:
    """``latency`` if given, else :data:`LATENCY_NS` in whole cycles of ``clock_hz`` (rounded
    up)."""
    if latency is not None:
        return latency
    return math.ceil(LATENCY_NS * clock_hz / 1e9 - 1e-6)


def memory_timing(latency: int) -> MemoryTiming:
    """The DDR the figures assume: ``latency`` cycles to a read burst's first word, writes
    answered half as long after their last word."""
    check_int("Memory latency", latency, 1, 1 << 16)
    return MemoryTiming(latency=latency, write_latency=latency // 2)


def performance(parameters: AcceleratorParameters, board, *, contexts=None, prompts=PROMPTS,
                latency: int | None = None, lm_head: str = "bfloat16",
                progress=lambda what: None) -> dict:
    """The model's decode speed at ``contexts`` (default: those of :data:`CONTEXTS` its KV
    cache holds) and its time to the first token of ``prompts``, each broken down by part,
    with its DDR bytes and roofline; see the module documentation and the README for the
    keys. The DDR answers a read burst ``latency`` cycles after its address (default:
    :func:`latency_cycles` at the board's clock). The host holds the LM head in ``lm_head``'s
    format. ``progress(what)`` is called before each program is modeled."""
    model = parameters.model
    if contexts is None:
        contexts = [c for c in CONTEXTS if c <= parameters.context] or [parameters.context]
    for context in contexts:
        check_int(f"Context of {model.name} on this design", context, 2, parameters.context)
    for prompt in prompts:
        check_int(f"Prompt tokens of {model.name} on this design", prompt, 1,
                  parameters.context)
    ddr = memory_timing(latency_cycles(board.clock_hz, latency))
    memory = parameters.bus_timing(ddr)  # the units' bus, on hp_ports DDR ports of ddr's
    word = parameters.data_bits // 8
    image = Image(1 << 40, dry=True)
    layout = ModelLayout(image, shaped_weights(model), gemv=parameters.gemv,
                         attention=parameters.attention, max_tokens=max(prompts, default=1),
                         word_bytes=word)
    clock = board.clock_hz
    bandwidth = min(board.ddr_bytes_per_s, word * clock)
    head = head_bytes(model, lm_head)
    host_bandwidth = HOST_BANDWIDTH_SHARE * board.ddr_bytes_per_s
    head_s = head / host_bandwidth
    embedding_s = 2 * model.hidden / host_bandwidth  # a bfloat16 row a token

    cycles_of = functools.lru_cache(maxsize=None)(
        lambda unit, items: parameters.instruction_cycles(unit, dict(items), memory=memory))

    def step(tokens, position):
        raw = layout.program(tokens=tokens, position=position).bytes()
        address = image.alloc(len(raw), "program")
        units, bytes_, cycles = {}, 0, []
        for unit, fields in waiting_instructions(raw, word_bytes=word):
            c = cycles_of(unit, tuple(sorted(fields.items())))
            cycles.append(c)
            units[unit] = units.get(unit, 0) + c
            bytes_ += parameters.instruction_bytes(unit, fields)
        total = program_cycles(cycles, memory=memory, address=address, word_bytes=word)
        parts = {group: sum(units.get(u, 0) for u in members) / clock
                 for group, members in UNIT_GROUPS.items()}
        parts["controller"] = (total - sum(cycles)) / clock
        parts["lm_head"] = head_s  # the host's, once a step: for its last token
        parts["host"] = tokens * embedding_s  # the embeddings the host writes
        host_bytes = head + 2 * tokens * model.hidden
        return {"cycles": total, "seconds": total / clock + head_s + tokens * embedding_s,
                "breakdown_s": parts, "ddr_bytes": bytes_ + host_bytes,
                "bound_s": bytes_ / bandwidth + host_bytes / host_bandwidth,
                "instructions": len(cycles)}

    decode, prefill = {}, {}
    for context in contexts:
        progress(f"decode step at context {context:,}")
        decode[context] = step(1, context - 1)
    for prompt in prompts:
        progress(f"prefill of {prompt} tokens")
        prefill[prompt] = step(prompt, 0)
    return {
        "model": model.name, "board": board.name, "clock_hz": clock, "lm_head": lm_head,
        "memory": {"latency": ddr.latency, "write_latency": ddr.write_latency,
                   "bytes_per_cycle": word, "hp_ports": parameters.hp_ports},
        "bandwidth_bytes_per_s": bandwidth,
        "host_bytes_per_s": host_bandwidth,
        "decode_tokens_per_s": {c: 1 / d["seconds"] for c, d in decode.items()},
        "ttft_s": {p: d["seconds"] for p, d in prefill.items()},
        "ddr_bytes_per_token": {c: d["ddr_bytes"] for c, d in decode.items()},
        "roofline_tokens_per_s": {c: 1 / d["bound_s"] for c, d in decode.items()},
        "roofline_fraction": {c: d["bound_s"] / d["seconds"] for c, d in decode.items()},
        "breakdown": {"decode": {c: d["breakdown_s"] for c, d in decode.items()},
                      "prefill": {p: d["breakdown_s"] for p, d in prefill.items()}},
        "cycles": {"decode": {c: d["cycles"] for c, d in decode.items()},
                   "prefill": {p: d["cycles"] for p, d in prefill.items()}},
        "instructions": {"decode": {c: d["instructions"] for c, d in decode.items()},
                         "prefill": {p: d["instructions"] for p, d in prefill.items()}},
    }


def plot_performance(result: dict, path) -> None:
    """Draw :func:`performance`'s decode time per token against context, stacked by part,
    with the DDR bound, as a PNG at ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    contexts = list(result["breakdown"]["decode"])
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    bottom = [0.0] * len(contexts)
    labels = [str(c) for c in contexts]
    for part in PARTS:
        values = [1e3 * result["breakdown"]["decode"][c][part] for c in contexts]
        axes.bar(labels, values, bottom=bottom, label=part.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, values)]
    bound = [1e3 / result["roofline_tokens_per_s"][c] for c in contexts]
    axes.plot(labels, bound, "k--", marker="o",
              label=f"DDR bound (port {result['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, host "
                    f"{result['host_bytes_per_s'] / 1e9:.1f} GB/s)")
    # room above the tallest bar for the legend (upper left, above the shortest bars)
    axes.set_ylim(0, 1.45 * max(bottom + bound))
    axes.set_xlabel("context (tokens)")
    axes.set_ylabel("time per decoded token (ms)")
    axes.set_title(f"{result['model']} on {result['board']} (modeled, "
                   f"{result['clock_hz'] / 1e6:.0f} MHz)")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
