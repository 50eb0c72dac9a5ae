"""Elaborate configured components to Verilog and RTLIL with stable module names."""

from __future__ import annotations

from amaranth.back import rtlil, verilog

from .config import EngineConfig

__all__ = ["MODULE_NAMES", "to_verilog", "to_rtlil"]

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
