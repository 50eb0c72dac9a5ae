"""The hand-off of an accelerator to Vivado: two Tcl scripts and a clock constraint, written
beside the accelerator's Verilog by ``ternforge generate --vivado``.

``project.tcl``
    A project for the board's part with the top's Verilog and ``<top>.xdc`` (the clock
    constraint), synthesised and implemented *out of context* (the top's AXI ports are
    connections to a processing system, not package pins: hundreds more than a package
    has), then utilisation, timing and power reports in ``reports/``.
``block_design.tcl``
    The top packaged as an IP (its AXI4 masters, AXI4-Lite slave, clock, reset and interrupt
    mapped port by port), and a block design with the Zynq UltraScale+ processing system:
    each AXI4 master through a SmartConnect to its own HP port (``S_AXI_HP0_FPD`` ...), the
    registers through a SmartConnect from ``M_AXI_HPM0_FPD``, every clock from ``pl_clk0``
    at the board's frequency when the PS makes it (its 1,500 MHz IOPLL divided by a whole
    number, :func:`ps_makes`), else from an MMCM (``clk_wiz``) fed by ``pl_clk0`` at 100 MHz,
    the reset through a ``proc_sys_reset`` (held until the MMCM locks), ``done`` to
    ``pl_ps_irq0``, addresses assigned; then a bitstream and a hardware platform
    (``system.xsa``).

Both are plain Tcl for ``vivado -mode batch -source <script>`` (``-tclargs <jobs>`` sets the
parallel jobs, 4 by default) and may be run from any folder. A run that does not complete ends
the script with exit status 1 and its status on stderr.

The Tcl is written here, not by edalize (0.6.8, evaluated for this): its Vivado backend
writes, from Jinja2 templates, a project script and a run script that always runs to
``write_bitstream`` behind a generated Makefile; it has no step for report commands, no
out-of-context synthesis (a top of this many ports cannot be placed in context, so no
bitstream of the bare top exists), and no IP packaging or block design. It would have
written about ten of these lines, for two more dependencies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from ..boards import Board
from ..boards.board import check_board_part
from .accelerator import TOP

__all__ = ["HP_PORTS", "IOPLL_HZ", "MMCM_INPUT_HZ", "SCRIPTS", "VivadoDesign", "ps_makes",
           "check_board", "top_ports", "vivado_design",
           "project_tcl", "block_design_tcl", "constraints_xdc", "write_vivado"]

#: the HP ports of a Zynq UltraScale+ processing system, one for each AXI4 master
HP_PORTS = 4

#: the PS's IOPLL, which its PL clocks divide (by 1 to 63, twice; the boards' presets)
IOPLL_HZ = 1500e6
#: ``pl_clk0`` when an MMCM in the PL makes the fabric clock (the PS makes it exactly:
#: 1,500 / 15)
MMCM_INPUT_HZ = 100e6


def ps_makes(clock_hz: float) -> bool:
    """Whether the PS gives ``pl_clk0`` at ``clock_hz`` itself: its IOPLL divided by a whole
    number from 1 to 63 (to a millihertz), as 166.7 MHz (/ 9) and 187.5 MHz (/ 8) are; any
    other clock comes from an MMCM in the PL."""
    divisor = round(IOPLL_HZ / clock_hz)
    return 1 <= divisor <= 63 and abs(IOPLL_HZ / divisor - clock_hz) < 1e-3

#: the files :func:`write_vivado` writes, by what they hold (the constraint's name is the top's)
SCRIPTS = {"project": "project.tcl", "block design": "block_design.tcl"}

#: the signals of an AXI4 port (Vivado's logical names, lower case in the port names); the
#: write channels of a read-only master are absent
_AXI4 = ("ARID", "ARADDR", "ARLEN", "ARSIZE", "ARBURST", "ARLOCK", "ARCACHE", "ARPROT", "ARQOS",
         "ARVALID", "ARREADY", "RID", "RDATA", "RRESP", "RLAST", "RVALID", "RREADY",
         "AWID", "AWADDR", "AWLEN", "AWSIZE", "AWBURST", "AWLOCK", "AWCACHE", "AWPROT", "AWQOS",
         "AWVALID", "AWREADY", "WDATA", "WSTRB", "WLAST", "WVALID", "WREADY",
         "BID", "BRESP", "BVALID", "BREADY")
_AXI4_LITE = ("AWADDR", "AWPROT", "AWVALID", "AWREADY", "WDATA", "WSTRB", "WVALID", "WREADY",
              "BRESP", "BVALID", "BREADY", "ARADDR", "ARPROT", "ARVALID", "ARREADY", "RDATA",
              "RRESP", "RVALID", "RREADY")
#: the signals an interface must have (an AXI4 master at least its read channels)
_AXI4_NEEDS = ("ARADDR", "ARLEN", "ARSIZE", "ARBURST", "ARVALID", "ARREADY", "RDATA", "RRESP",
               "RLAST", "RVALID", "RREADY")
_AXI4_LITE_NEEDS = tuple(name for name in _AXI4_LITE if not name.endswith("PROT"))
_WRITE = ("AW", "W", "B")

_DECLARATION = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
                          r"(?:\[(\d+):(\d+)\]\s*)?(\w+)\s*;", re.M)
_MASTER = re.compile(r"m_axi\d*")
_PORT = re.compile(r"(m_axi\d*|s_axil)_([a-z]+)")
#: the ports of the top other than its AXI interfaces
_SIGNALS = ("clk", "rst", "done")
_PORT_RULE = "clk, rst, done, m_axi<k>_<AXI4 signal> or s_axil_<AXI4-Lite signal>"

#: the IP's vendor, library and version in Vivado's catalogue
_VENDOR, _LIBRARY, _VERSION = "ternforge", "ternforge", "1.0"
#: the smallest address range Vivado assigns a slave
_MIN_RANGE = 4096


@dataclass(frozen=True, kw_only=True)
class VivadoDesign:
    """An accelerator top as Vivado takes it: which part, which board, which clock and
    which ports.

    Parameters
    ----------
    top : str
        The Verilog module name of the top.
    board : str
        The board's name (for the scripts' comments and messages).
    part : str
        The FPGA part, e.g. ``"xck26-sfvc784-2LV-c"``.
    board_part : str
        Vivado's board part (:attr:`ternforge.boards.Board.board_part`); the block design
        takes the processing system's presets from it, or from the newest installed version
        of the same board when that version is not installed.
    clock_hz : float
        The fabric clock, in hertz.
    ports : Mapping[str, int]
        The top's ports and their widths in bits: ``clk``, ``rst`` (synchronous, active
        high), ``done`` (a level interrupt), one to :data:`HP_PORTS` AXI4 masters
        (``m_axi_*`` or ``m_axi0_*``, ``m_axi1_*`` ...; 32-, 64- or 128-bit data, as an HP
        port takes) and the AXI4-Lite slave ``s_axil_*``.
    verilog : tuple of str
        The Verilog files, as POSIX paths relative to the folder of the scripts.

    Members
    -------
    period_ns : float
        The clock period, in nanoseconds, to the picosecond.
    masters : tuple of str
        The AXI4 masters, in the order of the HP ports they take.
    interfaces : Mapping[str, Mapping[str, str]]
        Each AXI interface's logical signals (Vivado's ``aximm`` names) and the ports that
        carry them: the masters, then ``s_axil``.
    read_only(master) : bool
        Whether an AXI4 master has no write channels.
    data_bits(interface), addr_bits(interface) : int
        An AXI interface's data and address widths.
    register_bytes : int
        The address range of the registers (at least Vivado's 4 KiB).
    """

    top: str
    board: str
    part: str
    board_part: str
    clock_hz: float
    ports: Mapping[str, int]
    verilog: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.top, str) or not re.fullmatch(r"[A-Za-z_]\w*", self.top):
            raise ValueError(f"Top name must be an identifier, not {self.top!r}")
        if not isinstance(self.board, str) or not re.fullmatch(r"[\w.+-]+", self.board):
            raise ValueError(f"Board name must be letters, digits and _.+-, "
                             f"not {self.board!r}")
        if not isinstance(self.part, str) or not re.fullmatch(r"[\w-]+", self.part):
            raise ValueError(f"Part must be a Xilinx part number, not {self.part!r}")
        _check_board_part(self.board, self.board_part)
        if isinstance(self.clock_hz, bool) or not isinstance(self.clock_hz, (int, float)) \
                or not self.clock_hz > 0:
            raise ValueError(f"Clock frequency must be a positive number of hertz, "
                             f"not {self.clock_hz!r}")
        self._check_verilog()
        object.__setattr__(self, "ports", MappingProxyType(dict(self.ports)))
        self._check_ports()

    def _check_verilog(self) -> None:
        if not isinstance(self.verilog, tuple) or not self.verilog or not all(
                isinstance(path, str) and re.fullmatch(r"[\w./-]+", path)
                and not PurePosixPath(path).is_absolute() for path in self.verilog):
            raise ValueError(f"Verilog files must be a non-empty tuple of relative paths, "
                             f"not {self.verilog!r}")

    def _check_ports(self) -> None:
        groups: dict[str, dict[str, str]] = {}
        for name, width in self.ports.items():
            match = _PORT.fullmatch(name) if isinstance(name, str) else None
            signals = (() if match is None else
                       _AXI4 if _MASTER.fullmatch(match[1]) else _AXI4_LITE)
            if name not in _SIGNALS and (match is None or match[2].upper() not in signals):
                raise ValueError(f"Top port must be {_PORT_RULE}, not {name!r}")
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"Width of port {name} must be a positive integer, "
                                 f"not {width!r}")
            if match is not None:
                groups.setdefault(match[1], {})[match[2].upper()] = name
        for name in _SIGNALS:
            if name not in self.ports:
                raise ValueError(f"Top ports must include {', '.join(_SIGNALS)}, "
                                 f"not lack {name}")
        masters = sorted((name for name in groups if name != "s_axil"),
                         key=lambda name: int(name[5:] or 0))
        if not 1 <= len(masters) <= HP_PORTS or "s_axil" not in groups:
            raise ValueError(f"Top ports must make 1 to {HP_PORTS} AXI4 masters and the "
                             f"AXI4-Lite slave s_axil, not {sorted(groups)!r}")
        for name in masters + ["s_axil"]:
            needs = _AXI4_LITE_NEEDS if name == "s_axil" else _AXI4_NEEDS
            missing = [signal for signal in needs if signal not in groups[name]]
            if missing:
                raise ValueError(f"AXI interface {name} must have the signals "
                                 f"{', '.join(needs)}, not lack {', '.join(missing)}")
        object.__setattr__(self, "_interfaces", MappingProxyType(
            {name: MappingProxyType(groups[name]) for name in masters + ["s_axil"]}))
        for name in masters:
            if self.data_bits(name) not in (32, 64, 128):
                raise ValueError(f"Data width of {name} must be 32, 64 or 128 bits (an HP "
                                 f"port's), not {self.data_bits(name)!r}")

    @property
    def period_ns(self) -> float:
        return round(1e9 / self.clock_hz, 3)

    @property
    def masters(self) -> tuple[str, ...]:
        return tuple(name for name in self._interfaces if name != "s_axil")

    @property
    def interfaces(self) -> Mapping[str, Mapping[str, str]]:
        return self._interfaces

    def read_only(self, master: str) -> bool:
        return not any(signal.startswith(_WRITE) for signal in self._interfaces[master])

    def data_bits(self, interface: str) -> int:
        return self.ports[self._interfaces[interface]["RDATA"]]

    def addr_bits(self, interface: str) -> int:
        return self.ports[self._interfaces[interface]["ARADDR"]]

    @property
    def register_bytes(self) -> int:
        return max(_MIN_RANGE, 1 << self.addr_bits("s_axil"))


def _check_board_part(board: str, board_part: object) -> None:
    if board_part is None:
        raise ValueError(f"Vivado board part of {board} must be set for its block design, "
                         f"not None")
    check_board_part(board_part)


def check_board(board: Board) -> None:
    """Refuse (``ValueError``) a board that Vivado has no board files for (no
    :attr:`~ternforge.boards.Board.board_part`): a command checks it before any work."""
    _check_board_part(board.name, board.board_part)


def top_ports(verilog: str, top: str = TOP) -> dict[str, int]:
    """The ports of module ``top`` in the Verilog text ``verilog`` (as Amaranth writes it: a
    header of names, then one ``input``/``output`` declaration each) and their widths."""
    header = re.search(rf"^module {re.escape(top)}\((.*?)\);(.*?)^endmodule", verilog,
                       re.M | re.S)
    if header is None:
        modules = re.findall(r"^module (\w+)", verilog, re.M)
        raise ValueError(f"Verilog must define module {top}, not only {modules!r}")
    names = [name.strip() for name in header[1].split(",") if name.strip()]
    widths = {match[4]: 1 if match[2] is None else abs(int(match[2]) - int(match[3])) + 1
              for match in _DECLARATION.finditer(header[2])}
    missing = [name for name in names if name not in widths]
    if missing:
        raise ValueError(f"Ports of module {top} must be declared input or output, not "
                         f"{', '.join(missing)}")
    return {name: widths[name] for name in names}


def vivado_design(verilog: str, board: Board, *, top: str = TOP,
                  sources: tuple[str, ...] = (f"../verilog/{TOP}.v",)) -> VivadoDesign:
    """The top ``top`` of the Verilog text ``verilog`` on ``board`` as Vivado takes it: the
    ports of that very text, the files ``sources`` where ``ternforge generate`` writes them
    (``verilog/<top>.v``, beside the scripts' folder ``vivado/``). Refuses (``ValueError``)
    a board without a Vivado board part, and ports other than :class:`VivadoDesign`'s."""
    check_board(board)
    return VivadoDesign(top=top, board=board.name, part=board.part,
                        board_part=board.board_part, clock_hz=board.clock_hz,
                        ports=top_ports(verilog, top), verilog=sources)


def constraints_xdc(design: VivadoDesign) -> str:
    """The clock constraint of the top (``<top>.xdc``)."""
    return (f"# {design.top} on {design.board}: the fabric clock, "
            f"{design.clock_hz / 1e6:g} MHz\n"
            f"create_clock -period {design.period_ns:.3f} -name clk [get_ports clk]\n")


_PROLOGUE = """\
set here [file dirname [file normalize [info script]]]
# the parallel jobs of a run: the first of -tclargs, or 4
set jobs [expr {$argc > 0 ? [lindex $argv 0] : 4}]
if {![string is integer -strict $jobs] || $jobs < 1} {
    puts stderr "ternforge: jobs must be a positive integer, not '$jobs'"
    exit 1
}

# Launch a run, wait for it, and end the script (exit status 1) unless it completed (failed
# timing is a completed run: "route_design Complete, Failed Timing!").
proc ternforge_run {name args} {
    launch_runs $name -jobs $::jobs {*}$args
    wait_on_run $name
    set status [get_property STATUS [get_runs $name]]
    if {[get_property PROGRESS [get_runs $name]] ne "100%"
            || ![string match "*Complete*" $status]} {
        puts stderr "ternforge: Vivado run $name failed ($status): see\\
            [get_property DIRECTORY [get_runs $name]]"
        exit 1
    }
}
"""


def _header(design: VivadoDesign, what: str, script: str, writes: str) -> str:
    return (f"# ternforge: {what}\n"
            f"# {design.top} on {design.board} ({design.part}, {design.clock_hz / 1e6:g} MHz).\n"
            f"# Run with: vivado -mode batch -source {script} [-tclargs <jobs>]\n"
            f"# It writes, beside this script, {writes}.\n\n")


def _sources(design: VivadoDesign) -> str:
    paths = "".join(f" \\\n    [file normalize [file join $here {path}]]"
                    for path in design.verilog)
    return f"add_files -norecurse [list{paths}]\n"


def project_tcl(design: VivadoDesign) -> str:
    """The script that synthesises and implements the top out of context and writes its
    utilisation, timing and power reports."""
    xdc = f"{design.top}.xdc"
    return (
        _header(design, "out-of-context synthesis and implementation, with reports",
                SCRIPTS["project"], "project/ (the Vivado project) and reports/")
        + _PROLOGUE + "\n"
        + f"create_project {design.top} [file join $here project] -part {design.part} \\\n"
          "    -force\n"
        + _sources(design)
        + f"set_property top {design.top} [current_fileset]\n"
        + f"add_files -fileset constrs_1 -norecurse [file join $here {xdc}]\n"
        + "update_compile_order -fileset sources_1\n"
        + "# out of context: the AXI ports stay nets, not package pins\n"
        + "set_property -name {STEPS.SYNTH_DESIGN.ARGS.MORE OPTIONS} "
          "-value {-mode out_of_context} \\\n    -objects [get_runs synth_1]\n\n"
        + "ternforge_run synth_1\n"
        + "ternforge_run impl_1\n"
        + "open_run impl_1\n"
        + "set reports [file join $here reports]\n"
        + "file mkdir $reports\n"
        + "report_utilization -file [file join $reports utilization.txt]\n"
        + "report_utilization -hierarchical \\\n"
          "    -file [file join $reports utilization_hierarchical.txt]\n"
        + "report_timing_summary -max_paths 10 -file [file join $reports timing_summary.txt]\n"
        + "report_power -file [file join $reports power.txt]\n"
        + "set wns [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]]\n"
        + f'puts "ternforge: {design.top} worst setup slack $wns ns at '
          f'{design.clock_hz / 1e6:g} MHz; reports in $reports"\n'
        + 'if {$wns ne "" && $wns < 0} {\n'
        + f'    puts "ternforge: timing not met at {design.clock_hz / 1e6:g} MHz '
          f'(see timing_summary.txt)"\n'
        + "}\n")


_IP_PROCS = """\
# A bus interface of the IP: its type (a VLNV without the version), mode and port map
# (logical name, port, ...).
proc ternforge_interface {name type mode map} {
    set interface [ipx::add_bus_interface $name [ipx::current_core]]
    set_property abstraction_type_vlnv ${type}_rtl:1.0 $interface
    set_property bus_type_vlnv ${type}:1.0 $interface
    set_property interface_mode $mode $interface
    foreach {logical port} $map {
        set_property physical_name $port [ipx::add_port_map $logical $interface]
    }
    return $interface
}

proc ternforge_parameter {interface name value} {
    set_property value $value [ipx::add_bus_parameter $name $interface]
}

# An AXI4 master: its port map and an address space of the width of its addresses.
proc ternforge_master {name addr_bits read_only map} {
    set interface [ternforge_interface $name xilinx.com:interface:aximm master $map]
    ternforge_parameter $interface PROTOCOL AXI4
    if {$read_only} {
        ternforge_parameter $interface READ_WRITE_MODE READ_ONLY
    }
    set space [ipx::add_address_space $name [ipx::current_core]]
    set_property range [expr {wide(1) << $addr_bits}] $space
    set_property width $addr_bits $space
    set_property master_address_space_ref $name $interface
}

# An AXI4-Lite slave: its port map and a memory map of one block of registers.
proc ternforge_slave {name range map} {
    set interface [ternforge_interface $name xilinx.com:interface:aximm slave $map]
    ternforge_parameter $interface PROTOCOL AXI4LITE
    set memory [ipx::add_memory_map $name [ipx::current_core]]
    set_property slave_memory_map_ref $name $interface
    set block [ipx::add_address_block registers $memory]
    set_property range $range $block
    set_property width 32 $block
    set_property usage register $block
}
"""


def _map(interface: Mapping[str, str]) -> str:
    pairs = [f"{logical} {port}" for logical, port in interface.items()]
    lines = [" ".join(pairs[i:i + 4]) for i in range(0, len(pairs), 4)]
    return "{\n    " + "\n    ".join(lines) + "\n}"


def _package(design: VivadoDesign) -> str:
    vlnv = f"{_VENDOR}:{_LIBRARY}:{design.top}:{_VERSION}"
    busif = ":".join((*design.masters, "s_axil"))
    lines = [
        "# 1. The top as an IP in ip/, its interfaces mapped port by port (what Vivado",
        "# infers when it packages the project is replaced)",
        f"create_project {design.top}_ip [file join $here ip_project] -part {design.part} \\\n"
        "    -force",
        _sources(design).rstrip("\n"),
        f"set_property top {design.top} [current_fileset]",
        "update_compile_order -fileset sources_1",
        f"ipx::package_project -root_dir [file join $here ip] -vendor {_VENDOR} "
        f"-library {_LIBRARY} \\\n    -taxonomy /UserIP -import_files -set_current true -force",
        "set core [ipx::current_core]",
        f"set_property name {design.top} $core",
        f"set_property version {_VERSION} $core",
        f"set_property display_name {{ternforge accelerator ({design.board})}} $core",
        "foreach interface [ipx::get_bus_interfaces -of_objects $core] {",
        "    ipx::remove_bus_interface [get_property NAME $interface] $core",
        "}",
        "foreach memory [ipx::get_memory_maps -of_objects $core] {",
        "    ipx::remove_memory_map [get_property NAME $memory] $core",
        "}",
        "foreach space [ipx::get_address_spaces -of_objects $core] {",
        "    ipx::remove_address_space [get_property NAME $space] $core",
        "}",
    ]
    for name in design.masters:
        read_only = int(design.read_only(name))
        lines.append(f"ternforge_master {name} {design.addr_bits(name)} {read_only} "
                     f"{_map(design.interfaces[name])}")
    lines += [
        f"ternforge_slave s_axil {design.register_bytes} {_map(design.interfaces['s_axil'])}",
        "set clock [ternforge_interface clk xilinx.com:signal:clock slave {CLK clk}]",
        f"ternforge_parameter $clock ASSOCIATED_BUSIF {busif}",
        "ternforge_parameter $clock ASSOCIATED_RESET rst",
        "set reset [ternforge_interface rst xilinx.com:signal:reset slave {RST rst}]",
        "ternforge_parameter $reset POLARITY ACTIVE_HIGH",
        "set done [ternforge_interface done xilinx.com:signal:interrupt master "
        "{INTERRUPT done}]",
        "ternforge_parameter $done SENSITIVITY LEVEL_HIGH",
        "ipx::create_xgui_files $core",
        "ipx::update_checksums $core",
        "ipx::check_integrity $core",
        "ipx::save_core $core",
        "close_project",
        "",
    ]
    return "\n".join(lines) + "\n"


def _pl_clk0_hz(design: VivadoDesign) -> float:
    """``pl_clk0``: the fabric clock if the PS makes it, else the MMCM's input."""
    return design.clock_hz if ps_makes(design.clock_hz) else MMCM_INPUT_HZ


def _ps_config(design: VivadoDesign) -> str:
    """The processing system's settings: HPM0_FPD for the registers, one HP port for each
    master (the others off: an enabled port's clock must be driven), the interrupt and
    ``pl_clk0``."""
    used = {2 + k: design.data_bits(name) for k, name in enumerate(design.masters)}
    settings = [("PSU__USE__M_AXI_GP0", 1), ("PSU__MAXIGP0__DATA_WIDTH", 32),
                ("PSU__USE__M_AXI_GP1", 0), ("PSU__USE__M_AXI_GP2", 0),
                ("PSU__USE__S_AXI_GP0", 0), ("PSU__USE__S_AXI_GP1", 0)]
    for gp in range(2, 2 + HP_PORTS):  # S_AXI_GP2 to GP5 are S_AXI_HP0_FPD to HP3_FPD
        settings.append((f"PSU__USE__S_AXI_GP{gp}", int(gp in used)))
        if gp in used:
            settings.append((f"PSU__SAXIGP{gp}__DATA_WIDTH", used[gp]))
    settings += [("PSU__USE__S_AXI_GP6", 0), ("PSU__USE__S_AXI_ACP", 0),
                 ("PSU__USE__S_AXI_ACE", 0), ("PSU__USE__IRQ0", 1),
                 ("PSU__FPGA_PL0_ENABLE", 1),
                 ("PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ", f"{_pl_clk0_hz(design) / 1e6:g}")]
    return ("set_property -dict [list \\\n"
            + "".join(f"    CONFIG.{key} {{{value}}} \\\n" for key, value in settings)
            + "] $ps\n")


def _fabric_clock(design: VivadoDesign) -> str:
    """The pin every clock of the block design comes from."""
    return "zynq_ps/pl_clk0" if ps_makes(design.clock_hz) else "fabric_clock/clk_out1"


def _mmcm(design: VivadoDesign) -> list[str]:
    """The MMCM that makes a fabric clock the PS does not (none when it does): fed by
    ``pl_clk0`` already on a global buffer, no reset (``pl_clk0`` runs from power-up), its
    ``locked`` holding the reset."""
    if ps_makes(design.clock_hz):
        return []
    mhz = f"{design.clock_hz / 1e6:g}"
    return [
        "set mmcm [create_bd_cell -type ip -vlnv xilinx.com:ip:clk_wiz fabric_clock]",
        "set_property -dict [list CONFIG.PRIM_SOURCE {No_buffer} \\\n"
        f"    CONFIG.PRIM_IN_FREQ {{{MMCM_INPUT_HZ / 1e6:g}}} "
        f"CONFIG.CLKOUT1_REQUESTED_OUT_FREQ {{{mhz}}} \\\n"
        "    CONFIG.USE_RESET {false} CONFIG.USE_LOCKED {true}] $mmcm",
        "set fabric_hz [get_property CONFIG.FREQ_HZ [get_bd_pins fabric_clock/clk_out1]]",
        f'puts "ternforge: the fabric clock from an MMCM at $fabric_hz Hz ({mhz} MHz asked)"',
    ]


def _system(design: VivadoDesign) -> str:
    board = design.board_part.rsplit(":", 1)[0]
    mhz = f"{design.clock_hz / 1e6:g}"
    hp = [(name, f"ddr_smc{k}", f"S_AXI_HP{k}_FPD", f"saxihp{k}_fpd_aclk")
          for k, name in enumerate(design.masters)]
    smartconnects = ["ctrl_smc"] + [smc for _, smc, _, _ in hp]
    clocks = (["zynq_ps/maxihpm0_fpd_aclk", "accelerator/clk", "rst_pl/slowest_sync_clk"]
              + [f"zynq_ps/{pin}" for _, _, _, pin in hp]
              + [f"{smc}/aclk" for smc in smartconnects])
    resets = [f"{smc}/aresetn" for smc in smartconnects]

    def pins(names):
        return " \\\n    ".join(f"[get_bd_pins {name}]" for name in names)

    lines = [
        "# 2. The block design: the processing system from the board's presets, the IP,",
        "# a SmartConnect for the registers and one for each HP port",
        f"set board_part [get_board_parts -quiet {design.board_part}]",
        'if {$board_part eq ""} {',
        f"    set board_part [lindex [get_board_parts -quiet -latest_file_version \\\n"
        f"        {board}:*] 0]",
        "}",
        'if {$board_part eq ""} {',
        f'    puts stderr "ternforge: Vivado has no board files for {design.board_part}:\\\n'
        f'        install them (Vivado Store, Boards)"',
        "    exit 1",
        "}",
        f"create_project {design.top}_system [file join $here system] -part {design.part} \\\n"
        "    -force",
        "set_property board_part $board_part [current_project]",
        "set_property ip_repo_paths [list [file join $here ip]] [current_project]",
        "update_ip_catalog",
        "create_bd_design system",
        "set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e zynq_ps]",
        "apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e "
        '-config {apply_board_preset "1"} $ps',
        _ps_config(design).rstrip("\n"),
        "set pl_mhz [get_property CONFIG.PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ $ps]",
        f'puts "ternforge: pl_clk0 at $pl_mhz MHz ({_pl_clk0_hz(design) / 1e6:g} MHz asked)"',
        *_mmcm(design),
        f"create_bd_cell -type ip -vlnv {_VENDOR}:{_LIBRARY}:{design.top}:{_VERSION} "
        "accelerator",
        "create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_pl",
    ]
    for smc in smartconnects:
        lines += [f"set smc [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect {smc}]",
                  "set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {1}] $smc"]
    lines += [
        "connect_bd_intf_net [get_bd_intf_pins zynq_ps/M_AXI_HPM0_FPD] \\\n"
        "    [get_bd_intf_pins ctrl_smc/S00_AXI]",
        "connect_bd_intf_net [get_bd_intf_pins ctrl_smc/M00_AXI] \\\n"
        "    [get_bd_intf_pins accelerator/s_axil]",
    ]
    for name, smc, port, _ in hp:
        lines += [f"connect_bd_intf_net [get_bd_intf_pins accelerator/{name}] \\\n"
                  f"    [get_bd_intf_pins {smc}/S00_AXI]",
                  f"connect_bd_intf_net [get_bd_intf_pins {smc}/M00_AXI] \\\n"
                  f"    [get_bd_intf_pins zynq_ps/{port}]"]
    lines += [
        f"connect_bd_net [get_bd_pins {_fabric_clock(design)}] \\\n    {pins(clocks)}",
        *([] if ps_makes(design.clock_hz) else [
            "connect_bd_net [get_bd_pins zynq_ps/pl_clk0] [get_bd_pins fabric_clock/clk_in1]",
            "connect_bd_net [get_bd_pins fabric_clock/locked] [get_bd_pins rst_pl/dcm_locked]"]),
        "connect_bd_net [get_bd_pins zynq_ps/pl_resetn0] [get_bd_pins rst_pl/ext_reset_in]",
        "connect_bd_net [get_bd_pins rst_pl/peripheral_reset] [get_bd_pins accelerator/rst]",
        f"connect_bd_net [get_bd_pins rst_pl/interconnect_aresetn] \\\n    {pins(resets)}",
        "connect_bd_net [get_bd_pins accelerator/done] [get_bd_pins zynq_ps/pl_ps_irq0]",
        "assign_bd_address",
        "validate_bd_design",
        "save_bd_design",
        "",
        "# 3. The bitstream and the hardware platform",
        "make_wrapper -files [get_files system.bd] -top -import",
        "set_property top system_wrapper [current_fileset]",
        "update_compile_order -fileset sources_1",
        "ternforge_run synth_1",
        "ternforge_run impl_1 -to_step write_bitstream",
        "write_hw_platform -fixed -include_bit -force -file [file join $here system.xsa]",
        'puts "ternforge: wrote [file join $here system.xsa]"',
        "",
    ]
    return "\n".join(lines)


def block_design_tcl(design: VivadoDesign) -> str:
    """The script that packages the top as an IP and builds the block design with the
    processing system, then its bitstream and hardware platform."""
    return (_header(design, "the accelerator as an IP in a block design with the Zynq "
                            "UltraScale+ processing system",
                    SCRIPTS["block design"],
                    "ip/ (the IP), ip_project/, system/ (the project) and system.xsa")
            + _PROLOGUE + "\n" + _IP_PROCS + "\n" + _package(design) + "\n" + _system(design))


def write_vivado(design: VivadoDesign, folder: Path) -> list[Path]:
    """Write :data:`SCRIPTS` and the clock constraint (``<top>.xdc``) into ``folder`` (made
    if missing); return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {SCRIPTS["project"]: project_tcl(design),
             SCRIPTS["block design"]: block_design_tcl(design),
             f"{design.top}.xdc": constraints_xdc(design)}
    for name, text in files.items():
        (folder / name).write_text(text)
    return [folder / name for name in files]
