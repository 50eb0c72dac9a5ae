"""Elaborate configured components to Verilog and RTLIL with stable module names."""

from __future__ import annotations

from amaranth.back import rtlil, verilog

from ..hdl.gemv.parameters import GemvParameters
from ..hdl.gemv.top import GemvTop
from ..hdl.matmul.engines import matmul_engine
from .config import EngineConfig

__all__ = ["MODULE_NAMES", "to_verilog", "to_rtlil", "gemv_top", "GEMV_TOP",
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
    return verilog.convert(matmul_engine(config.parameters(kind)), name=MODULE_NAMES[kind],
                           emit_src=False, strip_internal_attrs=True)


def to_rtlil(config: EngineConfig, kind: str) -> str:
    """RTLIL of the same design (what Yosys reads fastest)."""
    return rtlil.convert(matmul_engine(config.parameters(kind)), name=MODULE_NAMES[kind],
                         emit_src=False)


def gemv_top(config: EngineConfig, *, data_bits: int | None = None,
             buffer_depth: int = 4096) -> GemvTop:
    """The GEMV/GEMM top around the LUT-RAM engine of ``config`` (AXI data width by default
    :meth:`~ternforge.hdl.gemv.parameters.GemvParameters.default_data_bits`)."""
    return GemvTop(GemvParameters(engine=config.parameters("tlmm-lutram"), data_bits=data_bits,
                                  buffer_depth=buffer_depth))
