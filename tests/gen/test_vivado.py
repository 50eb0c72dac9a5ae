"""The Vivado hand-off: the scripts run in tclsh against stub Vivado commands
(``vivado_stub.tcl``) that record their calls, whose order and arguments are checked."""

import contextlib
import dataclasses
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import ternforge.gen.cli.design as design_command
from cli_support import invoke
from ternforge.boards import get_board
from ternforge.boards.builtin import KV260
from ternforge.gen.accelerator import TOP
from ternforge.gen.cli import main
from ternforge.gen.vivado import (SCRIPTS, constraints_xdc, ps_makes, top_ports,
                                  vivado_design, write_vivado)

STUB = Path(__file__).with_name("vivado_stub.tcl")


@pytest.fixture(scope="module")
def tclsh():
    path = shutil.which("tclsh")
    if path is None:
        pytest.fail("tclsh must be installed to run the Vivado scripts against stub commands "
                    "(Debian: apt-get install tcl)")
    return path


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """``ternforge generate --model tiny --vivado`` of the kv260 once for the module (the
    report left out: ``test_accelerator`` checks it): its output folder and stdout."""
    out = tmp_path_factory.mktemp("generate") / "build"
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(stderr):
        patch.setattr(design_command, "accelerator_report", lambda *args, **kwargs: {})
        patch.setattr(design_command, "accelerator_table", lambda report: "")
        try:
            main(["generate", "--model", "tiny", "--vivado", "--out", str(out)])
        except SystemExit as exit_:
            pytest.fail(f"generate failed ({exit_.code}): {stderr.getvalue()}")
    return out, stdout.getvalue()


@pytest.fixture(scope="module")
def verilog(generated):
    """The tiny model's top (on four HP ports)."""
    out, _ = generated
    return (out / "verilog" / f"{TOP}.v").read_text()


@pytest.fixture(scope="module")
def design(verilog):
    """The Vivado design of the tiny model's top on a board, over 4, 2 or 1 HP ports (fewer
    by dropping the other masters' ports: the top's ports are those of
    :class:`~ternforge.hdl.common.striper.AxiStriper`, or of one master on one port)."""
    def design(board="kv260", hp_ports=4):
        vivado = vivado_design(verilog, get_board(board))
        ports = {name: width for name, width in vivado.ports.items()
                 if not name.startswith("m_axi") or int(name[5]) < hp_ports}
        if hp_ports == 1:
            ports = {re.sub(r"^m_axi0_", "m_axi_", name): width for name, width in ports.items()}
        return dataclasses.replace(vivado, ports=ports)
    return design


def handoff(tmp_path, vivado):
    """The scripts of ``vivado`` in ``tmp_path / "vivado"``, beside a stand-in for the top's
    Verilog, as ``ternforge generate --vivado`` lays them out."""
    (tmp_path / "verilog").mkdir()
    (tmp_path / "verilog" / f"{TOP}.v").write_text(f"module {TOP}(clk);\nendmodule\n")
    write_vivado(vivado, tmp_path / "vivado")
    return tmp_path / "vivado"


def _field(text):
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text)


def run_script(tclsh, script, *tclargs, **env):
    """Run ``script`` in tclsh after the stub commands, as ``vivado -mode batch -source
    script -tclargs tclargs`` would; return its exit status, the recorded calls (tuples of
    the command and its arguments), its stderr and its stdout."""
    log, driver = script.parent / "stub.log", script.parent / "stub_driver.tcl"
    driver.write_text(f"set argv [list {' '.join(tclargs)}]\nset argc {len(tclargs)}\n"
                      f"source {{{STUB}}}\nsource {{{script}}}\n")
    result = subprocess.run([tclsh, str(driver)], capture_output=True, text=True, timeout=60,
                            env={**{key: value for key, value in os.environ.items()
                                    if not key.startswith("VIVADO_STUB_")},
                                 "VIVADO_STUB_LOG": str(log),
                                 **{f"VIVADO_STUB_{key.upper()}": value
                                    for key, value in env.items()}})
    calls = [tuple(_field(field) for field in line.split("\x1f"))
             for line in log.read_text().splitlines()] if log.exists() else []
    return result.returncode, calls, result.stderr, result.stdout


def called(calls, command):
    """The arguments of each call of ``command``."""
    return [call[1:] for call in calls if call[0] == command]


def position(calls, *call):
    """Where the first call that starts with ``call`` is."""
    return next(i for i, c in enumerate(calls) if c[:len(call)] == call)


def option(arguments, name):
    return arguments[arguments.index(name) + 1]


# project.tcl

@pytest.mark.parametrize("board,period,part", [("kv260", "5.556", "xck26-sfvc784-2LV-c"),
                                               ("zcu104", "6.000", "xczu7ev-ffvc1156-2-e")])
def test_the_project_is_synthesised_then_implemented_then_reported(tclsh, tmp_path, design,
                                                                   board, period, part):
    folder = handoff(tmp_path, design(board))
    status, calls, err, _ = run_script(tclsh, folder / SCRIPTS["project"])
    assert status == 0, err
    (project,) = called(calls, "create_project")
    assert project[0] == TOP and option(project, "-part") == part and "-force" in project
    assert Path(project[1]) == folder / "project"
    verilog, xdc = called(calls, "add_files")
    assert verilog[:1] == ("-norecurse",) and Path(verilog[1]) == tmp_path / "verilog" / f"{TOP}.v"
    assert Path(verilog[1]).exists()
    assert option(xdc, "-fileset") == "constrs_1" and Path(xdc[-1]).exists()
    assert f"create_clock -period {period} -name clk [get_ports clk]\n" in \
        Path(xdc[-1]).read_text()
    assert ("top", TOP, "sources_1") in called(calls, "set_property")
    assert ("-name", "STEPS.SYNTH_DESIGN.ARGS.MORE OPTIONS", "-value",
            "-mode out_of_context", "-objects", "synth_1") in called(calls, "set_property")
    order = [position(calls, *call) for call in (
        ("set_property", "-name"), ("launch_runs", "synth_1", "-jobs", "4"),
        ("wait_on_run", "synth_1"), ("launch_runs", "impl_1", "-jobs", "4"),
        ("wait_on_run", "impl_1"), ("open_run", "impl_1"), ("report_utilization",),
        ("report_timing_summary",), ("report_power",))]
    assert order == sorted(order)
    reports = [Path(option(arguments, "-file")) for command in
               ("report_utilization", "report_timing_summary", "report_power")
               for arguments in called(calls, command)]
    assert [path.name for path in reports] == ["utilization.txt", "utilization_hierarchical.txt",
                                               "timing_summary.txt", "power.txt"]
    assert all(path.parent == folder / "reports" for path in reports)
    assert (folder / "reports").is_dir()


def test_the_jobs_are_the_scripts_argument(tclsh, tmp_path, design):
    folder = handoff(tmp_path, design())
    status, calls, err, _ = run_script(tclsh, folder / SCRIPTS["project"], "8")
    assert status == 0, err
    assert [option(arguments, "-jobs") for arguments in called(calls, "launch_runs")] == ["8"] * 2
    status, calls, err, _ = run_script(tclsh, folder / SCRIPTS["project"], "many")
    assert (status, err) == (1, "ternforge: jobs must be a positive integer, not 'many'\n")
    assert not calls


def test_failed_timing_is_reported_not_a_failed_run(tclsh, tmp_path, design):
    folder = handoff(tmp_path, design())
    reports = folder / "reports"
    status, _, err, out = run_script(tclsh, folder / SCRIPTS["project"])
    assert status == 0, err
    mhz = f"{get_board('kv260').clock_hz / 1e6:g}"
    assert out == (f"ternforge: {TOP} worst setup slack 0.125 ns at {mhz} MHz; reports in "
                   f"{reports}\n")
    status, calls, err, out = run_script(tclsh, folder / SCRIPTS["project"], slack="-0.412")
    assert status == 0, err
    assert out.splitlines() == [
        f"ternforge: {TOP} worst setup slack -0.412 ns at {mhz} MHz; reports in {reports}",
        f"ternforge: timing not met at {mhz} MHz (see timing_summary.txt)"]
    assert len(called(calls, "report_timing_summary")) == 1


@pytest.mark.parametrize("script,run,last", [
    ("project", "synth_1", ("wait_on_run", "synth_1")),
    ("project", "impl_1", ("wait_on_run", "impl_1")),
    ("block design", "impl_1", ("wait_on_run", "impl_1")),
])
def test_a_run_that_does_not_complete_ends_the_script_with_status_1(tclsh, tmp_path, design,
                                                                    script, run, last):
    folder = handoff(tmp_path, design())
    status, calls, err, _ = run_script(tclsh, folder / SCRIPTS[script], fail=run)
    assert status == 1
    assert err == f"ternforge: Vivado run {run} failed ({run} ERROR): see /project/runs/{run}\n"
    assert [call for call in calls if call[0] not in ("get_runs", "get_property")][-1] == last
    assert not called(calls, "report_utilization") and not called(calls, "write_hw_platform")


# block_design.tcl

def test_the_top_is_packaged_with_every_port_in_one_interface(tclsh, tmp_path, design):
    vivado = design()
    folder = handoff(tmp_path, vivado)
    status, calls, err, _ = run_script(tclsh, folder / SCRIPTS["block design"])
    assert status == 0, err
    packaged = called(calls, "ipx::package_project")
    assert len(packaged) == 1 and Path(option(packaged[0], "-root_dir")) == folder / "ip"
    assert "-import_files" in packaged[0]
    added = position(calls, "ipx::add_bus_interface")
    # what Vivado inferred (the stub: m_axi0, clk, s_axil's map, m_axi0's space) goes first
    assert [position(calls, "ipx::remove_bus_interface", name) for name in ("m_axi0", "clk")] \
        < [added] * 2
    assert position(calls, "ipx::remove_memory_map", "s_axil") < added
    assert position(calls, "ipx::remove_address_space", "m_axi0") < added
    interfaces = [arguments[0] for arguments in called(calls, "ipx::add_bus_interface")]
    assert interfaces == ["m_axi0", "m_axi1", "m_axi2", "m_axi3", "s_axil", "clk", "rst", "done"]
    properties = called(calls, "set_property")
    maps = [(port, target.split(":")[2]) for name, port, target in properties
            if name == "physical_name"]
    mapped = dict(maps)
    assert len(maps) == len(mapped) and sorted(mapped) == sorted(vivado.ports)  # each once
    assert mapped["m_axi2_rdata"] == "m_axi2" and mapped["s_axil_wstrb"] == "s_axil"
    assert (mapped["clk"], mapped["rst"], mapped["done"]) == ("clk", "rst", "done")
    assert ("physical_name", "m_axi1_araddr", "port_map:bus:m_axi1:ARADDR") in properties
    assert ("interface_mode", "master", "bus:m_axi3") in properties
    assert ("interface_mode", "slave", "bus:s_axil") in properties
    assert ("abstraction_type_vlnv", "xilinx.com:interface:aximm_rtl:1.0", "bus:m_axi0") \
        in properties
    assert ("bus_type_vlnv", "xilinx.com:signal:interrupt:1.0", "bus:done") in properties
    values = {target: value for name, value, target in properties if name == "value"}
    assert values["parameter:bus:clk:ASSOCIATED_BUSIF"] == "m_axi0:m_axi1:m_axi2:m_axi3:s_axil"
    assert values["parameter:bus:clk:ASSOCIATED_RESET"] == "rst"
    assert values["parameter:bus:rst:POLARITY"] == "ACTIVE_HIGH"
    assert values["parameter:bus:done:SENSITIVITY"] == "LEVEL_HIGH"
    assert values["parameter:bus:s_axil:PROTOCOL"] == "AXI4LITE"
    # m_axi0 reads and writes; the others only read
    assert [values.get(f"parameter:bus:m_axi{k}:READ_WRITE_MODE") for k in range(4)] == \
        [None, "READ_ONLY", "READ_ONLY", "READ_ONLY"]
    # each master an address space of 32 bits, the registers a 4 KiB block
    assert [arguments[0] for arguments in called(calls, "ipx::add_address_space")] == \
        ["m_axi0", "m_axi1", "m_axi2", "m_axi3"]
    assert ("range", "4294967296", "space:m_axi3") in properties
    assert ("master_address_space_ref", "m_axi3", "bus:m_axi3") in properties
    assert ("slave_memory_map_ref", "s_axil", "bus:s_axil") in properties
    assert ("range", "4096", "block:registers") in properties
    end = [position(calls, command) for command in (
        "ipx::create_xgui_files", "ipx::update_checksums", "ipx::check_integrity",
        "ipx::save_core", "close_project")]
    assert end == sorted(end) and end[0] > position(calls, "ipx::add_address_block")


def _config(calls, key="CONFIG.PSU__USE__IRQ0"):
    """The CONFIG settings of the cell set with ``key`` (the processing system's)."""
    (arguments,) = [a for a in called(calls, "set_property") if a[0] == "-dict"
                    and key in a[1]]
    words = arguments[1].split()
    return dict(zip(words[::2], words[1::2]))


def _nets(calls, command):
    return [tuple(pin.lstrip("/") for pin in arguments) for arguments in called(calls, command)]


@pytest.mark.parametrize("board,hp_ports", [("kv260", 4), ("zcu104", 2), ("kv260", 1)])
def test_each_master_takes_its_own_hp_port_and_the_registers_hpm0(tclsh, tmp_path, design,
                                                                  board, hp_ports):
    vivado = design(board, hp_ports)
    folder = handoff(tmp_path, vivado)
    status, calls, err, _ = run_script(tclsh, folder / SCRIPTS["block design"])
    assert status == 0, err
    projects = called(calls, "create_project")
    assert [Path(arguments[1]).name for arguments in projects] == ["ip_project", "system"]
    assert all(option(arguments, "-part") == vivado.part for arguments in projects)
    assert ("board_part", vivado.board_part, "project") in called(calls, "set_property")
    assert ("ip_repo_paths", str(folder / "ip"), "project") in called(calls, "set_property")
    cells = {arguments[-1]: option(arguments, "-vlnv")
             for arguments in called(calls, "create_bd_cell")}
    masters = vivado.masters
    direct = ps_makes(vivado.clock_hz)  # the PS makes the clock, or an MMCM does
    assert cells == {"zynq_ps": "xilinx.com:ip:zynq_ultra_ps_e",
                     "accelerator": f"ternforge:ternforge:{TOP}:1.0",
                     "rst_pl": "xilinx.com:ip:proc_sys_reset",
                     "ctrl_smc": "xilinx.com:ip:smartconnect",
                     **({} if direct else {"fabric_clock": "xilinx.com:ip:clk_wiz"}),
                     **{f"ddr_smc{k}": "xilinx.com:ip:smartconnect" for k in range(hp_ports)}}
    assert called(calls, "apply_bd_automation") == [
        ("-rule", "xilinx.com:bd_rule:zynq_ultra_ps_e", "-config", 'apply_board_preset "1"',
         "/zynq_ps")]
    config = _config(calls)
    mhz = f"{get_board(board).clock_hz / 1e6:g}"
    assert config["CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == (mhz if direct else "100")
    if not direct:
        mmcm = _config(calls, "CONFIG.CLKOUT1_REQUESTED_OUT_FREQ")
        assert mmcm["CONFIG.CLKOUT1_REQUESTED_OUT_FREQ"] == mhz
        assert mmcm["CONFIG.PRIM_IN_FREQ"] == "100"
    assert config["CONFIG.PSU__USE__IRQ0"] == config["CONFIG.PSU__USE__M_AXI_GP0"] == "1"
    # S_AXI_GP2 to GP5 are S_AXI_HP0_FPD to HP3_FPD: one for each master, 128 bits wide
    assert [config[f"CONFIG.PSU__USE__S_AXI_GP{2 + k}"] for k in range(4)] == \
        ["1"] * hp_ports + ["0"] * (4 - hp_ports)
    assert all(config[f"CONFIG.PSU__SAXIGP{2 + k}__DATA_WIDTH"] == "128"
               for k in range(hp_ports))
    # AXI: every master through its own SmartConnect to a distinct HP port
    links = _nets(calls, "connect_bd_intf_net")
    ports = []
    for k, name in enumerate(masters):
        (smc,) = [b.split("/")[0] for a, b in links if a == f"accelerator/{name}"]
        (port,) = [b for a, b in links if a == f"{smc}/M00_AXI"]
        assert smc == f"ddr_smc{k}"
        ports.append(port)
    assert ports == [f"zynq_ps/S_AXI_HP{k}_FPD" for k in range(hp_ports)]
    assert ("zynq_ps/M_AXI_HPM0_FPD", "ctrl_smc/S00_AXI") in links
    assert ("ctrl_smc/M00_AXI", "accelerator/s_axil") in links
    assert len(links) == 2 + 2 * hp_ports
    # one clock (pl_clk0, or the MMCM's from it) for all; the reset through proc_sys_reset
    # (held until the MMCM locks); done the interrupt
    nets = _nets(calls, "connect_bd_net")
    source = "zynq_ps/pl_clk0" if direct else "fabric_clock/clk_out1"
    (clock,) = [net for net in nets if net[0] == source]
    if not direct:
        assert ("zynq_ps/pl_clk0", "fabric_clock/clk_in1") in nets
        assert ("fabric_clock/locked", "rst_pl/dcm_locked") in nets
    assert set(clock[1:]) == {"accelerator/clk", "rst_pl/slowest_sync_clk",
                              "zynq_ps/maxihpm0_fpd_aclk", "ctrl_smc/aclk",
                              *(f"zynq_ps/saxihp{k}_fpd_aclk" for k in range(hp_ports)),
                              *(f"ddr_smc{k}/aclk" for k in range(hp_ports))}
    assert ("zynq_ps/pl_resetn0", "rst_pl/ext_reset_in") in nets
    assert ("rst_pl/peripheral_reset", "accelerator/rst") in nets
    (resets,) = [net for net in nets if net[0] == "rst_pl/interconnect_aresetn"]
    assert set(resets[1:]) == {"ctrl_smc/aresetn",
                               *(f"ddr_smc{k}/aresetn" for k in range(hp_ports))}
    assert ("accelerator/done", "zynq_ps/pl_ps_irq0") in nets
    # then addresses, validation, the wrapper, the bitstream and the platform, in order
    order = [position(calls, *call) for call in (
        ("connect_bd_net", "/accelerator/done"), ("assign_bd_address",),
        ("validate_bd_design",), ("save_bd_design",), ("make_wrapper",),
        ("set_property", "top", "system_wrapper"), ("launch_runs", "synth_1"),
        ("wait_on_run", "synth_1"), ("launch_runs", "impl_1"), ("wait_on_run", "impl_1"),
        ("write_hw_platform",))]
    assert order == sorted(order)
    assert called(calls, "launch_runs")[1] == ("impl_1", "-jobs", "4", "-to_step",
                                               "write_bitstream")
    (platform,) = called(calls, "write_hw_platform")
    assert Path(option(platform, "-file")) == folder / "system.xsa" and "-include_bit" in platform


def test_the_board_part_is_the_newest_installed_when_its_version_is_not(tclsh, tmp_path,
                                                                       design):
    folder = handoff(tmp_path, design())
    status, calls, err, _ = run_script(
        tclsh, folder / SCRIPTS["block design"],
        board_parts="xilinx.com:kv260_som:part0:1.3 xilinx.com:kv260_som:part0:1.10")
    assert status == 0, err
    assert ("board_part", "xilinx.com:kv260_som:part0:1.10", "project") in \
        called(calls, "set_property")
    status, calls, err, _ = run_script(tclsh, folder / SCRIPTS["block design"],
                                    board_parts="xilinx.com:zcu104:part0:1.1")
    assert status == 1
    assert err == ("ternforge: Vivado has no board files for xilinx.com:kv260_som:part0:1.4: "
                   "install them (Vivado Store, Boards)\n")
    assert not called(calls, "create_bd_design")


# the description

def test_the_ports_are_those_of_the_verilog_top(verilog, design):
    ports = top_ports(verilog)
    assert len(ports) == 78 and list(ports)[:2] == ["s_axil_awvalid", "s_axil_wdata"]
    assert (ports["clk"], ports["m_axi3_rdata"], ports["s_axil_awaddr"]) == (1, 128, 8)
    assert design().ports == ports
    assert top_ports("module top(a, b);\n  input [0:3] a;\n  output signed b;\nendmodule\n",
                     "top") == {"a": 4, "b": 1}
    with pytest.raises(ValueError, match=f"^Verilog must define module {TOP}, "
                                         r"not only \['other'\]$"):
        top_ports("module other(a);\nendmodule\n")
    with pytest.raises(ValueError, match="^Ports of module top must be declared input or "
                                         "output, not b$"):
        top_ports("module top(a, b);\n  input a;\nendmodule\n", "top")


def test_the_clock_constraint_is_the_boards_period(design):
    assert constraints_xdc(design("zcu104")) == (
        f"# {TOP} on zcu104: the fabric clock, 166.667 MHz\n"
        "create_clock -period 6.000 -name clk [get_ports clk]\n")
    assert design().period_ns == 5.556 and design().register_bytes == 4096
    assert design().masters == ("m_axi0", "m_axi1", "m_axi2", "m_axi3")
    assert design(hp_ports=1).masters == ("m_axi",)


@pytest.mark.parametrize("changes,message", [
    ({"board_part": None}, "Vivado board part of kv260 must be set for its block design, "
                           "not None"),
    ({"board_part": "kv260"}, "Vivado board part must be vendor:board:component:version or "
                              "None, not 'kv260'"),
    ({"part": "xck26 sfvc784"}, "Part must be a Xilinx part number, not 'xck26 sfvc784'"),
    ({"top": "top-level"}, "Top name must be an identifier, not 'top-level'"),
    ({"board": "{kv260}"}, "Board name must be letters, digits and _.+-, not '{kv260}'"),
    ({"clock_hz": 0}, "Clock frequency must be a positive number of hertz, not 0"),
    ({"verilog": ("/abs/top.v",)},
     r"Verilog files must be a non-empty tuple of relative paths, not \('/abs/top.v',\)"),
    ({"ports": {"irq": 1}}, "Top port must be clk, rst, done, m_axi<k>_<AXI4 signal> or "
                            "s_axil_<AXI4-Lite signal>, not 'irq'"),
    ({"ports": {"s_axil_arlen": 8}}, "Top port must be .*, not 's_axil_arlen'"),
    ({"ports": {"done": None}}, "Top ports must include clk, rst, done, not lack done"),
    ({"ports": {"clk": 0}}, "Width of port clk must be a positive integer, not 0"),
    ({"ports": {f"m_axi{k}_{s}": 1 for k in (2, 3, 4) for s in ("araddr", "rdata")}},
     r"Top ports must make 1 to 4 AXI4 masters and the AXI4-Lite slave s_axil, "
     r"not \['m_axi0', 'm_axi1', 'm_axi2', 'm_axi3', 'm_axi4', 's_axil'\]"),
    ({"ports": {"m_axi1_rlast": None}},
     "AXI interface m_axi1 must have the signals ARADDR, .*, RREADY, not lack RLAST"),
    ({"ports": {"m_axi1_rdata": 256}},
     "Data width of m_axi1 must be 32, 64 or 128 bits \\(an HP port's\\), not 256"),
])
def test_the_description_is_validated(design, changes, message):
    """Each change to the tiny model's design on two HP ports (``ports``: ports changed,
    None to remove one) is refused."""
    base = design(hp_ports=2)
    if "ports" in changes:
        ports = {**base.ports, **changes["ports"]}
        changes = {"ports": {name: width for name, width in ports.items() if width is not None}}
    with pytest.raises(ValueError, match=f"^{message}$"):
        dataclasses.replace(base, **changes)


# ternforge generate --vivado

def test_generate_writes_the_vivado_scripts_beside_the_verilog(tclsh, generated, verilog):
    """The block design maps every port in the header of the Verilog that ``generate``
    wrote, and both scripts take that file."""
    out, stdout = generated
    assert sorted(path.name for path in (out / "vivado").iterdir()) == sorted(
        [*SCRIPTS.values(), f"{TOP}.xdc"])
    assert f"vivado -mode batch -source {out / 'vivado' / 'project.tcl'}" in stdout
    header = re.search(rf"^module {TOP}\((.*?)\);", verilog, re.M | re.S)[1]
    ports = [port.strip() for port in header.split(",")]
    assert len(ports) == len(set(ports)) == 78
    for script in SCRIPTS.values():
        status, calls, err, _ = run_script(tclsh, out / "vivado" / script)
        assert status == 0, err
        assert Path(called(calls, "add_files")[0][-1]) == out / "verilog" / f"{TOP}.v"
    mapped = [port for name, port, _ in called(calls, "set_property") if name == "physical_name"]
    assert sorted(mapped) == sorted(ports)


def test_generate_refuses_vivado_for_a_board_without_board_files(capsys, tmp_path,
                                                                 monkeypatch):
    import ternforge.boards.builtin as builtin

    monkeypatch.setitem(builtin.BOARDS, "kv260", dataclasses.replace(KV260, board_part=None))
    code, _, err = invoke(capsys, "generate", "--model", "tiny", "--vivado", "--out",
                          str(tmp_path / "build"))
    assert (code, err) == (2, "ternforge: Vivado board part of kv260 must be set for its block "
                              "design, not None\n")
    assert not (tmp_path / "build").exists()
