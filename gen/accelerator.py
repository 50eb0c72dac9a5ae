"""The whole accelerator of a model on a board: its parameters from a design configuration,
its Verilog top, its parts synthesised in parallel, and its report (resources, DDR memory
map, registers, ports).

The top, :data:`TOP`, is :func:`ternforge.hdl.accelerator.top.accelerator`: the controller,
the copy, vector, GEMV, RoPE and attention units and the interconnect between them, which
are only wires apart. Its resources are the sum of those parts, each synthesised alone
(hierarchically, as a flow that keeps the hierarchy would), so that the parts run at once on
several cores and each is cached by its own content.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed

from amaranth.back import rtlil, verilog

from ..boards import RESOURCE_KEYS, Board, get_board
from ..hdl.accelerator.controller import register_map
from ..hdl.accelerator.model import ModelConfig
from ..hdl.accelerator.parameters import AcceleratorParameters, VectorUnitParameters
from ..hdl.accelerator.top import UNIT_NAMES, accelerator
from ..hdl.attention.parameters import MAX_ROWS
from ..hdl.common.checks import check_int
from ..sim.activity import measure as measure_activity
from ..sim.runtime import memory_map
from .config import DesignConfig
from .perf import performance
from .power import power_estimate
from .synthesis import SOURCE, synthesize
from .timing import delay_model, design_timing, path_timing

__all__ = ["TOP", "PORT_BITS", "PROMPT_TOKENS", "WIDE_BOARD_LUTS", "default_vector_lanes",
           "default_attention", "ports", "part_names",
           "accelerator_parameters",
           "accelerator_verilog", "accelerator_resources", "accelerator_fit",
           "beside_activity", "accelerator_power",
           "accelerator_report", "check_memory",
           "check_resources"]

#: the Verilog module name of the accelerator's top
TOP = "ternforge_accelerator"

#: the AXI data width of each of the accelerator's DDR ports: a 128-bit HP port of a Zynq
#: UltraScale+ (the widest its HP ports are); the units' bus is ``[accelerator] hp_ports``
#: of them wide
PORT_BITS = 128

#: the longest prompt the DDR image has scratch rows for (TeLLMe's prompts are 64 to 128)
PROMPT_TOKENS = 128

def ports(parameters: AcceleratorParameters) -> dict:
    """The top's ports (Vivado's names) and what each connects to on a Zynq UltraScale+
    board: the DDR masters (``m_axi``, or ``m_axi0`` ... on as many HP ports), the
    registers, the interrupt, the clock and the reset."""
    width = f"{parameters.port_bits}-bit data, 32-bit addresses"
    if parameters.hp_ports == 1:
        ddr = {"m_axi": f"AXI4 master, {width}: to DDR through the PS's S_AXI_HP0_FPD port "
                        "(programs, weights, KV cache, activations)"}
    else:
        ddr = {f"m_axi{k}": f"AXI4 master, {width}: to DDR through the PS's S_AXI_HP{k}_FPD "
                            f"port ({'reads and every write' if k == 0 else 'reads'}; every "
                            f"{parameters.data_bits}-bit word a burst on the next port)"
               for k in range(parameters.hp_ports)}
    return {**ddr,
            "s_axil": "AXI4-Lite slave, 32-bit: the registers, from the PS's M_AXI_HPM0_FPD port",
            "done": "level, high once the last program has completed: an interrupt (pl_ps_irq0)",
            "clk": "the fabric clock (pl_clk0)",
            "rst": "synchronous reset, active high"}


def part_names(parameters: AcceleratorParameters) -> tuple:
    """The parts of the top that :func:`accelerator_resources` synthesises one at a time, in
    its order: the controller, the interconnect, the striper (on several HP ports) and the
    units of :data:`~ternforge.hdl.accelerator.top.UNIT_NAMES`."""
    return ("controller", "interconnect", *("striper",) * (parameters.hp_ports > 1),
            *UNIT_NAMES)


#: the LUTs from which a board takes the wide defaults of ``[accelerator]``
#: (:func:`default_attention`, :func:`default_vector_lanes`): the zcu104's 230,400 do, the
#: kv260's 117,120 do not
WIDE_BOARD_LUTS = 200_000


def _wide(board: Board) -> bool:
    return board.resources["LUT"] >= WIDE_BOARD_LUTS


def default_vector_lanes(model: ModelConfig, data_bits: int, board: Board) -> int:
    """The vector unit's lanes when ``[accelerator] vector_lanes`` is left out, no more than
    the bus takes: on a board of :data:`WIDE_BOARD_LUTS` or more, four; on a smaller one (the
    kv260), two for a model whose widest vector is at most 4,096 elements (BitNet b1.58 0.7B)
    and one for a wider one (2B4T). A lane costs about 12,000 LUTs (Yosys, the 0.7B's vector
    unit): two keep the 0.7B's default design within the kv260, and 2B4T's default there has
    no room for a second."""
    lanes = 4 if _wide(board) else 2 if max(model.hidden, model.ffn) <= 4096 else 1
    return min(lanes, VectorUnitParameters.most_lanes(data_bits))


def default_attention(model: ModelConfig, data_bits: int, board: Board) -> tuple[int, int]:
    """The attention engine's lanes and keys a tile when ``[accelerator] attention_lanes`` and
    ``attention_cols`` are left out: on a board of :data:`WIDE_BOARD_LUTS` or more, 16 lanes
    and tiles of 128 keys (64 for a model of several query heads a KV head, whose score
    registers are rows times keys: 2B4T's four), the fastest decode of 0.7B and 2B4T on the
    zcu104 (``benchmarks/perf_bench.py``); on a smaller one (the kv260) 8 lanes and tiles of
    64 keys. The lanes are at most the float32 elements a bus word carries and the largest
    power of two dividing the head dimension."""
    lanes, cols = (16, 128 if model.group == 1 else 64) if _wide(board) else (8, 64)
    return min(lanes, data_bits // 32, model.head_dim & -model.head_dim), cols


def accelerator_parameters(config: DesignConfig, model: ModelConfig) -> AcceleratorParameters:
    """The accelerator for ``model`` with ``config``'s microarchitecture on its board: the
    engine's group size, groups per cycle and rows (``[tlmm]``), the attention engine's tile
    (its rows by default the model's query heads per KV head), lanes and context
    (``[accelerator]``; the context at most the model's; the lanes and the tile's keys by
    default :func:`default_attention`'s) and the vector unit's lanes (``[accelerator]``; by
    default :func:`default_vector_lanes`), on a bus of ``hp_ports`` HP ports of
    :data:`PORT_BITS`. The model sets every size (the ``[eltwise]`` and ``[attention]``
    sections are the separate units of ``ternforge report units``)."""
    a, t = config.accelerator, config.tlmm
    board = get_board(config.board)
    rows = model.group if a.attention_rows is None else a.attention_rows
    data_bits = PORT_BITS * a.hp_ports
    vector_lanes = (default_vector_lanes(model, data_bits, board) if a.vector_lanes is None
                    else a.vector_lanes)
    lanes, cols = default_attention(model, data_bits, board)
    lanes = lanes if a.attention_lanes is None else a.attention_lanes
    cols = cols if a.attention_cols is None else a.attention_cols
    check_int(f"Attention rows (at least {model.name}'s query heads per KV head)", rows,
              model.group, MAX_ROWS)
    return AcceleratorParameters.for_model(
        model, context=min(a.context, model.max_context), group_size=t.group_size,
        groups_per_cycle=t.groups_per_cycle, rows=t.rows, lanes=lanes,
        tile_rows=rows, tile_cols=cols, data_bits=data_bits,
        hp_ports=a.hp_ports, vector_lanes=vector_lanes)


def accelerator_verilog(parameters: AcceleratorParameters) -> str:
    """The Verilog of the accelerator's top, module :data:`TOP`."""
    return verilog.convert(accelerator(parameters), name=TOP, emit_src=False)


def check_memory(parameters: AcceleratorParameters, board: Board, *,
                 prompt_tokens: int = PROMPT_TOKENS) -> dict:
    """The DDR memory map of the model on ``parameters`` (see
    :func:`ternforge.sim.runtime.memory_map`); refuses (``ValueError``) a model whose image
    does not fit the board's DDR or 32-bit addresses."""
    model = parameters.model
    check_int("Prompt tokens", prompt_tokens, 1, parameters.context)
    limit = min(board.ddr_size_bytes, 1 << 32)
    # laid out without a bound (a dry image costs nothing), so that the refusal can say how
    # much it takes, and other refusals of the layout are not taken for this one
    memory = memory_map(model, gemv=parameters.gemv, attention=parameters.attention,
                        data_bits=parameters.data_bits, prompt_tokens=prompt_tokens,
                        memory_bytes=1 << 40)
    if memory["end"] > limit:
        raise ValueError(
            f"Model {model.name} must fit {board.name}'s DDR: its weights, KV cache of "
            f"{parameters.context:,} tokens and scratch take {memory['end']:,} bytes, not more "
            f"than {limit:,}")
    return memory


def accelerator_resources(parameters: AcceleratorParameters, *, jobs: int | None = None,
                          levels: bool = False, advance=lambda name: None) -> dict:
    """The resources of each part of the accelerator of ``parameters``, in the top's order:
    each part synthesised alone with Yosys (cached by content), ``jobs`` at once (default one
    a core); with ``levels``, each part's logic levels and slowest register-to-register path
    too, from the same run of Yosys (keys ``levels`` and ``path``, see
    :func:`~ternforge.gen.synthesis.logic_levels`). ``advance(name)`` is called as each is
    done."""
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    check_int("Jobs", jobs, 1, 256)
    designs = {name: rtlil.convert(part, name=f"{TOP}_{name}", emit_src=False)
               for name, part in accelerator(parameters).parts.items()}
    keys = (*RESOURCE_KEYS, *(("levels", "path") if levels else ()))
    modules = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # the work is in Yosys's processes
        futures = {pool.submit(synthesize, text, top=f"{TOP}_{name}", levels=levels): name
                   for name, text in designs.items()}
        for future in as_completed(futures):
            name = futures[future]
            modules[name] = {key: future.result()[key] for key in keys}
            advance(name)
    return {name: modules[name] for name in designs}


def _timed(modules: dict, board: Board) -> dict:
    """``modules`` (resources, ``levels`` and ``path`` of each part) with each part's
    estimated timing on ``board`` (:func:`ternforge.gen.timing.path_timing`)."""
    model = delay_model(board.part)
    return {name: {**{key: synthesis[key] for key in RESOURCE_KEYS},
                   **path_timing(synthesis, model)}
            for name, synthesis in modules.items()}


def accelerator_fit(modules: dict, board: Board) -> dict:
    """The whole accelerator of ``modules`` (each part's resources, as
    :func:`accelerator_resources` gives them) on ``board``: ``resources`` (their total),
    ``fits``, ``utilization`` (percent of the board) and ``power_w``: the estimate of
    :func:`~ternforge.gen.power.power_estimate` at its assumed activity for every part (what a
    sweep ranks designs with: measuring the activity of each point would cost a Verilator
    build each; ``report.json``'s ``power`` has the measured one)."""
    total = {key: sum(resources[key] for resources in modules.values()) for key in RESOURCE_KEYS}
    return {"resources": total, "fits": not board.fits(total),
            "utilization": board.utilization(total),
            "power_w": power_estimate(modules, board)["total_w"]}


def beside_activity(work):
    """``work()``'s result and the activity of the accelerator's parts measured on Verilator
    (:func:`~ternforge.sim.activity.measure`, cached), measured in a thread beside ``work``
    (synthesis: the work of both is in other processes)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        activity = pool.submit(measure_activity)
        return work(), activity.result()


def accelerator_power(parameters: AcceleratorParameters, board: Board, modules: dict,
                      measured: dict) -> dict:
    """``report.json``'s ``power``: the estimate of :func:`~ternforge.gen.power.power_estimate`
    for the parts ``modules`` (their resources) at the ``measured`` activity, with the energy
    per token at the decode rates of :func:`~ternforge.gen.perf.performance` (none for a
    design outside the cycle model's domain: the tiny model on a default design's engine,
    whose layers are narrower than its rows)."""
    try:
        rates = performance(parameters, board, prompts=())["decode_tokens_per_s"]
    except ValueError:  # the cycle model refuses the design's layers: no decode rate
        rates = {}
    return power_estimate(modules, board, measured=measured, tokens_per_s=rates)


def accelerator_report(config: DesignConfig, parameters: AcceleratorParameters, board: Board,
                       *, memory: dict, jobs: int | None = None,
                       advance=lambda name: None) -> dict:
    """The ``report.json`` of the accelerator of ``parameters`` (from ``config``, by
    :func:`accelerator_parameters`) on ``board``: its parameters, its parts' resources (each
    synthesised with Yosys, ``jobs`` at once, default one a core), their total and its
    utilisation, a power estimate (:func:`~ternforge.gen.power.power_estimate`: each part's
    activity measured on Verilator by :func:`~ternforge.sim.activity.measure`, beside the
    synthesis and cached; the energy per token at :func:`~ternforge.gen.perf.performance`'s
    decode rates), the DDR memory map ``memory`` (:func:`check_memory`'s), the registers and
    the ports. ``advance(name)`` is called as each part is done (for
    progress)."""
    model = parameters.model
    modules, measured = beside_activity(lambda: _timed(accelerator_resources(
        parameters, jobs=jobs, levels=True, advance=advance), board))
    total = accelerator_fit(modules, board)["resources"]
    check_resources(total, model, board)
    return {
        "top": TOP,
        "board": board.name,
        "part": board.part,
        "clock_hz": board.clock_hz,
        "model": model.to_dict(),
        "accelerator": _facts(parameters),
        "config": config.to_dict(),
        "modules": modules,
        "timing": design_timing(modules, part=board.part, clock_hz=board.clock_hz),
        "total": total,
        "utilization": board.utilization(total),
        "power": accelerator_power(parameters, board, modules, measured),
        "memory_map": memory,
        "registers": [{"offset": 4 * index, "name": name, "access": access, "meaning": meaning}
                      for index, (name, (access, meaning))
                      in enumerate(register_map(UNIT_NAMES).items())],
        "ports": ports(parameters),
        "units": list(UNIT_NAMES),
        "source": SOURCE,
        "synthesis": "each part of the top alone (the top between them is wires)",
    }


def check_resources(total: dict, model: ModelConfig, board: Board) -> None:
    """Refuse (``ValueError``) an accelerator that uses more of a resource than the board
    has."""
    reasons = board.fits(total)
    if reasons:
        raise ValueError(f"The accelerator of {model.name} must fit {board.name} "
                         f"({'; '.join(reasons)})")


def _facts(p: AcceleratorParameters) -> dict:
    e, a = p.engine, p.attention.engine
    return {"data_bits": p.data_bits, "hp_ports": p.hp_ports, "context": p.context,
            "engine": {"group_size": e.group_size, "groups_per_cycle": e.groups_per_cycle,
                       "rows": e.rows, "macs_per_cycle": e.macs_per_cycle, "max_k": e.max_k,
                       "max_n": e.max_n},
            "weight_buffer_beats": p.buffer_depth,
            "attention": {"format": a.format.name, "head_dim": a.head_dim, "rows": a.rows,
                          "cols": a.cols, "lanes": a.lanes, "max_keys": a.max_keys},
            "vector": {"format": p.vector.format, "max_length": p.vector.max_length,
                       "activation": p.vector.activation, "lanes": p.vector.lanes}}
