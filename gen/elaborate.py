"""Elaborate configured components to Verilog and RTLIL with stable module names."""

from __future__ import annotations

from amaranth.back import rtlil, verilog

from .config import EngineConfig

__all__ = ["MODULE_NAMES", "to_verilog", "to_rtlil", "gemv_top", "gemv_data_bits", "GEMV_TOP",
           "ELTWISE_UNIT", "ATTENTION_UNITS"]

#: Verilog module name of the GEMV/GEMM top
GEMV_TOP = "gemv_top"

#: Verilog module name of the element-wise unit
ELTWISE_UNIT = "eltwise_unit"

#: attention phase -> Verilog module name of its unit (with its sequencer)
ATTENTION_UNITS = {"prefill": "attention_prefill", "decode": "attention_decode"}

#: engine kind -> Verilog module name of its top level
MODULE_NAMES = {"tlmm": "tlmm_engine", "tlmm-lutram": "tlmm_lutram_engine",
                "adder": "ternary_adder_engine"}


def to_verilog(config: EngineConfig, kind: str) -> str:
    """Verilog of the engine of ``kind``, top module :data:`MODULE_NAMES` ``[kind]``."""
    return verilog.convert(config.component(kind), name=MODULE_NAMES[kind],
                           emit_src=False, strip_internal_attrs=True)


def to_rtlil(config: EngineConfig, kind: str) -> str:
    """RTLIL of the same design (what Yosys reads fastest)."""
    return rtlil.convert(config.component(kind), name=MODULE_NAMES[kind], emit_src=False)


def gemv_data_bits(config: EngineConfig) -> int:
    """The GEMV top's default AXI data width: 512 bits, or the widest power of two (from 32)
    no wider than a weight beat."""
    engine = config.component("tlmm-lutram")
    beat_bits = engine.rows * engine.groups_per_cycle * engine.slot_bits
    return max(32, min(512, 1 << (beat_bits.bit_length() - 1)))


def gemv_top(config: EngineConfig, *, data_bits: int | None = None, buffer_depth: int = 4096):
    """The GEMV/GEMM top around the LUT-RAM engine of ``config`` (AXI data width by default
    :func:`gemv_data_bits`)."""
    from ..hdl.gemv.top import GemvTop
    from ..sim.models.weight_plan import MAX_DESCRIPTORS

    engine = config.component("tlmm-lutram")
    data_bits = gemv_data_bits(config) if data_bits is None else data_bits
    parameters = dict(group_size=engine.group_size, groups_per_cycle=engine.groups_per_cycle,
                      rows=engine.rows, act_width=engine.act_width, max_k=engine.max_k,
                      max_n=engine.max_n, max_tokens=engine.max_tokens)
    return GemvTop(engine=parameters, data_bits=data_bits, buffer_depth=buffer_depth,
                   max_descriptors=MAX_DESCRIPTORS)
