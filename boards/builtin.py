"""The boards that ship with ternforge, registered through the ``ternforge.boards`` entry point.

Both boards are Zynq UltraScale+ (16 nm) parts, so they share one table of dynamic-power
coefficients. These are **estimates** of the order of magnitude that the Xilinx Power
Estimator (XPE) gives at VCCINT = 0.85 V, in watts per used unit per MHz at 100 % switching
activity (each used unit toggles every cycle), including the unit's share of local routing
and clock load:

========  ===========  ==========================================================
resource  W / MHz      basis
========  ===========  ==========================================================
LUT       2.5e-7       about 0.6 pF switched (LUT output plus routing)
FF        1.0e-7       data pin, clock pin load and short routing
CARRY8    4.0e-7       eight carry/XOR bits, each about a fifth of a LUT
DSP       5.0e-6       DSP48E2 27x18 multiply-accumulate, about 5 pJ per operation
BRAM36    1.5e-5       one 36 Kb block RAM port access per cycle, 72 bits wide
URAM      3.0e-5       one 288 Kb UltraRAM access per cycle, 72 bits wide
========  ===========  ==========================================================

The K26 SOM's -2LV grade may run VCCINT at 0.72 V, which would cut its dynamic power by
about a quarter: the kv260 figures are therefore on the conservative side. Static power is the
whole device (PS and PL) at typical process and about 50 degrees C junction, rounded to 0.1 W.
"""

from .board import Board

__all__ = ["BOARDS", "KV260", "ZCU104"]

_ULTRASCALE_PLUS_W_PER_MHZ = {
    "LUT": 2.5e-7,
    "FF": 1.0e-7,
    "CARRY8": 4.0e-7,
    "DSP": 5.0e-6,
    "BRAM36": 1.5e-5,
    "URAM": 3.0e-5,
}

# 64-bit DDR4 at 2,400 MT/s.
_DDR4_2400_X64 = 19.2e9

#: Kria KV260: 180 MHz, from an MMCM in the PL fed by the PS's 100 MHz ``pl_clk0``
#: (:mod:`ternforge.gen.vivado`): below the default 0.7B design's estimated Fmax at -2LV,
#: 185.6 MHz (:mod:`ternforge.gen.timing`; the floating-point adder's second stage sets it),
#: with the margin the 166.7 MHz before had (3 %). The PS's own clocks nearest it are
#: 166.7 MHz (its 1,500 MHz IOPLL / 9), below, and 187.5 MHz (/ 8), above the estimate.
KV260 = Board(
    name="kv260",
    part="xck26-sfvc784-2LV-c",
    family="xcup",
    description="AMD Kria KV260 Vision AI Starter Kit (K26 SOM, Zynq UltraScale+ XCK26)",
    resources={"LUT": 117_120, "FF": 234_240, "CARRY8": 14_640, "DSP": 1_248,
               "BRAM36": 144, "URAM": 64},
    clock_hz=180e6,
    ddr_bytes_per_s=_DDR4_2400_X64,
    ddr_size_bytes=3 << 30,  # 4 GiB on the SOM, 1 GiB kept for Linux
    static_power_w=0.5,
    dynamic_power_w_per_mhz=_ULTRASCALE_PLUS_W_PER_MHZ,
    board_part="xilinx.com:kv260_som:part0:1.4",
)

#: ZCU104: 166.7 MHz (1,500 MHz IOPLL / 9), as before its default became the wide design
#: (16 attention lanes, 4 vector lanes), whose paths are not yet timed: the kv260's design
#: estimates about 198 MHz at this part's -2.
ZCU104 = Board(
    name="zcu104",
    part="xczu7ev-ffvc1156-2-e",
    family="xcup",
    description="AMD Zynq UltraScale+ MPSoC ZCU104 Evaluation Kit (XCZU7EV)",
    resources={"LUT": 230_400, "FF": 460_800, "CARRY8": 28_800, "DSP": 1_728,
               "BRAM36": 312, "URAM": 96},
    clock_hz=1500e6 / 9,
    ddr_bytes_per_s=_DDR4_2400_X64,
    ddr_size_bytes=1 << 30,  # 2 GiB of PS DDR4, 1 GiB kept for Linux
    static_power_w=0.8,
    dynamic_power_w_per_mhz=_ULTRASCALE_PLUS_W_PER_MHZ,
    board_part="xilinx.com:zcu104:part0:1.1",
)

#: Built-in boards by name.
BOARDS: dict[str, Board] = {board.name: board for board in (KV260, ZCU104)}
