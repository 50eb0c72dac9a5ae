import json

import pytest
from amaranth import Module, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternforge.gen import synthesis
from ternforge.gen.synthesis import (default_cache_dir, logic_levels, name_registers,
                                     resources_of_cells, slowest_paths, synthesize,
                                     synthesize_component)
from ternforge.gen.timing import DelayModel, delay_model


class RegisteredAdder(wiring.Component):
    a: In(8)
    b: In(8)
    total: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.total.eq(self.a + self.b)
        return m


class RegisteredMultiplier(wiring.Component):
    a: In(16)
    b: In(16)
    product: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.product.eq(self.a * self.b)
        return m


class UltraMemory(wiring.Component):
    addr: In(12)
    write_data: In(72)
    write_en: In(1)
    read_data: Out(72)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=72, depth=4096, init=[],
                                        attrs={"ram_style": "ultra"})
        write, read = mem.write_port(), mem.read_port()
        m.d.comb += [
            write.addr.eq(self.addr), write.data.eq(self.write_data), write.en.eq(self.write_en),
            read.addr.eq(self.addr), self.read_data.eq(read.data),
        ]
        return m


def fail_if_run(argv, *, cwd):
    raise AssertionError("Yosys must not run on a cache hit")


def test_resources_of_cells():
    cells = {"LUT2": 3, "LUT6_2": 1, "RAM64M": 2, "SRLC32E": 1, "FDRE": 5, "FDCE": 1,
             "CARRY4": 3, "CARRY8": 1, "DSP48E2": 2, "RAMB36E2": 1, "RAMB18E2": 1,
             "URAM288": 4, "IBUF": 10, "BUFG": 1}
    assert resources_of_cells(cells) == {
        "LUT": 13, "FF": 6, "CARRY8": 3, "DSP": 2, "BRAM36": 1.5, "URAM": 4,
    }
    whole = resources_of_cells({"RAMB18E2": 2})
    assert whole["BRAM36"] == 1 and isinstance(whole["BRAM36"], int)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TERNFORGE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "synth"
    monkeypatch.delenv("TERNFORGE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "ternforge" / "synth"


@pytest.mark.parametrize("top", ["", "a b", "top;stat", None])
def test_bad_top(tmp_path, top):
    with pytest.raises(ValueError, match="^Top module name must be a non-empty string without "
                                         "whitespace or ';', not "):
        synthesize("", top=top, cache_dir=tmp_path)


@pytest.mark.yosys
def test_registered_adder(tmp_path):
    report = synthesize_component(RegisteredAdder(), name="adder", cache_dir=tmp_path)
    assert report["source"] == "yosys-synth_xilinx"
    assert report["FF"] == 8
    assert report["LUT"] > 0
    assert report["CARRY8"] >= 1
    assert report["DSP"] == report["BRAM36"] == report["URAM"] == 0
    assert report["cells"]["FDRE"] == 8


@pytest.mark.yosys
def test_dsp_option(tmp_path):
    with_dsp = synthesize_component(RegisteredMultiplier(), name="mul", cache_dir=tmp_path)
    without = synthesize_component(RegisteredMultiplier(), name="mul", dsp=False,
                                   cache_dir=tmp_path)
    assert with_dsp["DSP"] == 1
    assert without["DSP"] == 0
    assert without["LUT"] > 100 and without["CARRY8"] >= 1


@pytest.mark.yosys
def test_cache_hit(monkeypatch, tmp_path):
    text = rtlil.convert(RegisteredAdder(), name="adder")
    first = synthesize(text, top="adder", cache_dir=tmp_path)
    [cached] = tmp_path.iterdir()
    assert cached.suffix == ".json" and json.loads(cached.read_text()) == first
    monkeypatch.setattr(synthesis, "_run_yosys", fail_if_run)
    second = synthesize(text, top="adder", cache_dir=tmp_path)
    assert second == first and list(second) == list(first)
    with pytest.raises(AssertionError, match="must not run"):
        synthesize(text, top="adder", dsp=False, cache_dir=tmp_path)


@pytest.mark.yosys
@pytest.mark.parametrize("damage", [b"", b'{"LUT": 3', b"5", b'{"LUT": 1}'],
                         ids=["emptied", "cut short", "not a report", "keys missing"])
def test_a_damaged_cache_entry_is_synthesised_again(tmp_path, damage):
    text = rtlil.convert(RegisteredAdder(), name="adder")
    first = synthesize(text, top="adder", cache_dir=tmp_path)
    [cached] = tmp_path.iterdir()
    cached.write_bytes(damage)
    assert synthesize(text, top="adder", cache_dir=tmp_path) == first
    assert json.loads(cached.read_text()) == first


@pytest.mark.yosys
def test_ultra_ram(tmp_path):
    report = synthesize_component(UltraMemory(), name="uram", cache_dir=tmp_path)
    assert report["URAM"] == 1
    assert report["BRAM36"] == 0
    assert report["cells"]["URAM288"] == 1


@pytest.mark.yosys
def test_yosys_failure(tmp_path):
    text = rtlil.convert(RegisteredAdder(), name="adder")
    log = tmp_path / "logs" / "yosys-nosuch.log"
    with pytest.raises(RuntimeError, match=(
            f"(?s)^Yosys failed to synthesise module 'nosuch' \\(exit code 1\\); log: {log}\n"
            ".*ERROR: Module `nosuch' not found!$")):
        synthesize(text, top="nosuch", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / "logs"]  # no result, no lock, no work
    assert "ERROR: Module `nosuch' not found!" in log.read_text()


@pytest.mark.yosys
def test_a_yosys_run_killed_by_a_signal_is_tried_again(monkeypatch, tmp_path):
    import subprocess

    real, calls = synthesis.guard.run, []

    def crashing_once(argv, **kwargs):
        calls.append(argv)
        if len(calls) == 1:  # as YoWASP's cold cache raced by another process did
            return subprocess.CompletedProcess(argv, -7, "", "")
        return real(argv, **kwargs)

    monkeypatch.setattr(synthesis.guard, "run", crashing_once)
    report = synthesize(rtlil.convert(RegisteredAdder(), name="adder"), top="adder",
                        cache_dir=tmp_path)
    assert len(calls) == 2 and report["FF"] == 8


# Hand-made netlists in the form of Yosys's ``write_json`` (flattened), for `logic_levels`.
_PINS = {"FDRE": ({"C": 1, "CE": 1, "D": 1, "R": 1}, {"Q": 1}),
         "CARRY4": ({"CI": 1, "CYINIT": 1, "DI": 4, "S": 4}, {"O": 4, "CO": 4}),
         "RAM64M8": ({"WCLK": 1, "WE": 1, **{f"ADDR{x}": 6 for x in "ABCDEFGH"},
                      **{f"DI{x}": 1 for x in "ABCDEFGH"}}, {f"DO{x}": 1 for x in "ABCDEFGH"}),
         "DSP48E2": ({"CLK": 1, "A": 30, "B": 18}, {"P": 48}),
         "INV": ({"I": 1}, {"O": 1})}


def _cell(kind, signal=None, parameters=None, **connections):
    inputs, outputs = _PINS.get(kind) or ({f"I{i}": 1 for i in range(int(kind[3]))},
                                          {"O": 1})
    wired = {pin: list(connections.get(pin, ["0"] * width))
             for pin, width in {**inputs, **outputs}.items()}
    return {"type": kind, "parameters": parameters or {},
            "attributes": {"ternforge_signal": signal} if signal else {},
            "port_directions": {**dict.fromkeys(inputs, "input"),
                                **dict.fromkeys(outputs, "output")},
            "connections": wired}


def _module(cells, ports=None):
    return {"ports": ports or {"clk": {"direction": "input", "bits": [1]}}, "cells": cells}


def _on_path(*kinds, module=""):
    """Cells of a path, each one level entered through its data inputs."""
    return [{"type": kind, "module": module, "carry_in": False, "levels": 1} for kind in kinds]


def _carry_chain(cells, length, first_s, last_o, *, name="$carry", first_at=0):
    """``length`` chained CARRY4 cells added to ``cells`` (``name0``, ``name1``, ...), wire
    ``first_s`` into S of the one at ``first_at``, the last's O into ``last_o``; the carry
    between them on wires 1000 and up."""
    for k in range(length):
        pins = {"CI": [1000 + k - 1]} if k else {}
        if k == first_at:
            pins["S"] = [first_s, "0", "0", "0"]
        pins["CO"] = ["x", "x", "x", 1000 + k] if k < length - 1 else ["x"] * 4
        if k == length - 1:
            pins["O"] = [last_o, "x", "x", "x"]
        cells[f"{name}{k}"] = _cell("CARRY4", **pins)
    return cells


def test_logic_levels_of_three_luts_between_two_registers():
    cells = {"$ff1": _cell("FDRE", "counter.count", C=[1], Q=[2]),
             "$lut1": _cell("LUT2", I0=[2], I1=[2], O=[3]),
             "$lut2": _cell("LUT4", I0=[3], O=[4]),
             "$lut3": _cell("LUT6", I0=[4], I5=[2], O=[5]),
             "$ff2": _cell("FDRE", "sum.total", C=[1], D=[5], Q=[6]),
             "$short": _cell("LUT1", I0=[2], O=[7]),
             "$ff3": _cell("FDRE", "other", C=[1], D=[7])}
    assert logic_levels(_module(cells)) == {
        "levels": 3, "from": "counter.count", "from_type": "FDRE", "to": "sum.total",
        "to_type": "FDRE", "cells": _on_path("LUT2", "LUT4", "LUT6")}


def test_an_inverter_is_no_level():
    cells = {"$ff1": _cell("FDRE", "a", C=[1], Q=[2]),
             "$inv": _cell("INV", I=[2], O=[3]),
             "$lut": _cell("LUT2", I0=[3], I1=[2], O=[4]),
             "$ff2": _cell("FDRE", "b", C=[1], D=[4])}
    path = logic_levels(_module(cells))
    assert path["levels"] == 1
    assert [(cell["type"], cell["levels"]) for cell in path["cells"]] == [("INV", 0),
                                                                           ("LUT2", 1)]


def test_logic_levels_counts_chained_carry4_cells_as_carry8s():
    """Four CARRY4 cells chained from the head of the chain are two CARRY8s: a LUT and
    ceil(4 / 2) carries; a path entering the chain at its second cell crosses both
    CARRY8s too. A CARRY4 entered from the one below is entered through its carry-in; the
    upper one of a CARRY8 so entered counts no level."""
    def chain(first_at):
        cells = {"$ff": _cell("FDRE", "a", C=[1], Q=[10]),
                 "$lut": _cell("LUT1", I0=[10], O=[11]),
                 "$end": _cell("FDRE", "b", C=[1], D=[33])}
        return _carry_chain(cells, 4, 11, 33, first_at=first_at)
    levels = logic_levels(_module(chain(0)))
    assert levels["levels"] == 1 + 2 and (levels["from"], levels["to"]) == ("a", "b")
    assert [(cell["type"], cell["carry_in"], cell["levels"]) for cell in levels["cells"]] == [
        ("LUT1", False, 1), ("CARRY4", False, 1), ("CARRY4", True, 0), ("CARRY4", True, 1),
        ("CARRY4", True, 0)]
    assert logic_levels(_module(chain(1)))["levels"] == 1 + 2
    assert logic_levels(_module(chain(2)))["levels"] == 1 + 1  # (the second CARRY8 only)


def test_the_slowest_path_is_timed_not_the_deepest():
    """A 40-bit adder (a LUT, then ten CARRY4: five CARRY8 levels) is deeper than four LUTs
    but faster: its carry runs on the dedicated carry route (0.05 ns a CARRY8 at -2, no
    net), where each LUT takes a routed net (0.45 ns)."""
    cells = {"$a": _cell("FDRE", "adder.a", C=[1], Q=[10]),
             "$lut": _cell("LUT2", I0=[10], O=[11]),
             "$sum": _cell("FDRE", "adder.sum", C=[1], D=[12]),
             "$c": _cell("FDRE", "logic.c", C=[1], Q=[20]),
             **{f"$l{k}": _cell("LUT6", I0=[20 + k], O=[21 + k]) for k in range(4)},
             "$d": _cell("FDRE", "logic.d", C=[1], D=[24])}
    levels = logic_levels(_module(_carry_chain(cells, 10, 11, 12)))
    assert levels["levels"] == 1 + 5  # (the adder's)
    assert (levels["from"], levels["to"]) == ("logic.c", "logic.d")
    assert levels["cells"] == _on_path(*["LUT6"] * 4)
    assert [(path["from"], path["to"], path["levels"], path["delay_ns"])
            for path in slowest_paths(_module(cells), 2)] == [
        ("logic.c", "logic.d", 4, pytest.approx(0.30 + 4 * 0.45)),
        ("adder.a", "adder.sum", 6, pytest.approx(0.30 + 0.45 + 0.50 + 4 * 0.05))]


def test_a_carry_in_from_a_lut_is_a_routed_level():
    """Only a carry-in driven by the carry cell below takes the dedicated route: the head of
    a chain whose carry-in a LUT drives is timed as a CARRY8 with its net."""
    cells = {"$a": _cell("FDRE", "a", C=[1], Q=[10]),
             "$lut": _cell("LUT2", I0=[10], O=[11]),
             "$b": _cell("FDRE", "b", C=[1], D=[12])}
    _carry_chain(cells, 2, "0", 12)
    cells["$carry0"]["connections"]["CI"] = [11]
    levels = logic_levels(_module(cells))
    assert (levels["levels"], levels["from"]) == (2, "a")
    assert [(cell["carry_in"], cell["levels"]) for cell in levels["cells"]] == [
        (False, 1), (False, 1), (True, 0)]
    assert slowest_paths(_module(cells))[0]["delay_ns"] == pytest.approx(0.30 + 0.45 + 0.50)


def test_slowest_paths_lists_each_register_once_slowest_first():
    """Every bit of a register is one end, timed by its slowest bit; ``count`` keeps the
    slowest; a model of another grade scales the delays, not the order."""
    cells = {"$a": _cell("FDRE", "a", C=[1], Q=[10]),
             "$l1": _cell("LUT2", I0=[10], O=[11]), "$l2": _cell("LUT2", I0=[11], O=[12]),
             "$y0": _cell("FDRE", "unit.y", C=[1], D=[11]),
             "$y1": _cell("FDRE", "unit.y", C=[1], D=[12]),
             "$w": _cell("FDRE", "w", C=[1], D=[10])}
    cells["$a"]["connections"]["D"] = [11]
    paths = slowest_paths(_module(cells))
    assert [(path["to"], path["levels"]) for path in paths] == [("unit.y", 2), ("a", 1),
                                                                ("w", 0)]
    assert paths[0] == {"from": "a", "from_type": "FDRE", "to": "unit.y", "to_type": "FDRE",
                        "cells": _on_path("LUT2", "LUT2"), "levels": 2,
                        "delay_ns": pytest.approx(1.20)}
    assert slowest_paths(_module(cells), 2) == paths[:2]
    kv260 = delay_model("xck26-sfvc784-2LV-c")
    slower = slowest_paths(_module(cells), model=kv260)
    assert [path["to"] for path in slower] == ["unit.y", "a", "w"]
    assert slower[0]["delay_ns"] == pytest.approx(kv260.path_ns(["LUT2"] * 2), abs=1e-4)
    assert DelayModel().path_ns(paths[0]["cells"]) == pytest.approx(paths[0]["delay_ns"])


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "3"])
def test_slowest_paths_refuses_a_bad_count(count):
    with pytest.raises(ValueError,
                       match=rf"^Count must be a positive integer or None, not {count!r}$"):
        slowest_paths(_module({}), count)


def test_logic_levels_follows_a_path_through_submodules():
    """Yosys names a flattened cell after the submodule it came from: the path is counted
    whole, and each cell says where it was."""
    cells = {"$ff": _cell("FDRE", "count", C=[1], Q=[2]),
             "$abc$1$lut": _cell("LUT2", I0=[2], O=[3]),
             "$flatten\\inner.$abc$2$lut": _cell("LUT3", I0=[3], O=[4]),
             "$flatten\\inner.\\deeper.$abc$3$lut": _cell("LUT5", I0=[4], O=[5]),
             "$flatten\\inner.$ff": _cell("FDRE", "inner.total", C=[1], D=[5])}
    levels = logic_levels(_module(cells))
    assert (levels["levels"], levels["from"], levels["to"]) == (3, "count", "inner.total")
    assert [cell["module"] for cell in levels["cells"]] == ["", "inner", "inner.deeper"]


def test_logic_levels_reads_lut_ram_asynchronously_and_ends_at_its_writes():
    cells = {"$addr": _cell("FDRE", "addr", C=[1], Q=[2]),
             "$ram": _cell("RAM64M8", WCLK=[1], ADDRA=[2] * 6, DIB=[7], DOA=[3], DOB=[8]),
             "$lut": _cell("LUT2", I0=[3], O=[4]),
             "$data": _cell("FDRE", "data", C=[1], D=[4]),
             "$w1": _cell("LUT2", I0=[2], O=[5]), "$w2": _cell("LUT2", I0=[5], O=[6]),
             "$w3": _cell("LUT2", I0=[6], O=[7])}
    levels = logic_levels(_module(cells))
    assert (levels["levels"], levels["from"], levels["to"], levels["to_type"]) == (
        3, "addr", "$ram (RAM64M8)", "RAM64M8")
    del cells["$w3"], cells["$ram"]["connections"]["DIB"]
    levels = logic_levels(_module(cells))
    assert (levels["levels"], levels["to"]) == (2, "data")
    assert [cell["type"] for cell in levels["cells"]] == ["RAM64M8", "LUT2"]


@pytest.mark.parametrize("registers,expected", [
    ({"AREG": 0, "BREG": 0, "MREG": 0, "PREG": 0}, (4, "a", "p")),  # LUT, DSP, 2 LUTs
    ({"AREG": 0, "BREG": 0, "MREG": 0, "PREG": 1}, (2, "$dsp (DSP48E2)", "p")),
])
def test_logic_levels_of_a_dsp_depends_on_its_registers(registers, expected):
    cells = {"$a": _cell("FDRE", "a", C=[1], Q=[2]),
             "$in": _cell("LUT2", I0=[2], O=[3]),
             "$dsp": _cell("DSP48E2", parameters=registers, CLK=[1], A=[3] * 30, P=[4] * 48),
             "$out": _cell("LUT2", I0=[4], O=[6]), "$more": _cell("LUT2", I0=[6], O=[5]),
             "$p": _cell("FDRE", "p", C=[1], D=[5])}
    levels = logic_levels(_module(cells))
    assert (levels["levels"], levels["from"], levels["to"]) == expected


def test_logic_levels_of_ports():
    ports = {"a": {"direction": "input", "bits": [2]},
             "y": {"direction": "output", "bits": [3]}}
    cells = {"$lut": _cell("LUT2", I0=[2], O=[3])}
    assert logic_levels(_module(cells, ports)) == {
        "levels": 1, "from": "port a", "from_type": "port", "to": "port y", "to_type": "port",
        "cells": _on_path("LUT2")}


def test_name_registers():
    text = ("module \\top\n  cell $dff $1\n    parameter \\WIDTH 4\n    connect \\D $2\n"
            "    connect \\CLK \\clk\n    connect \\Q \\count [3:0]\n  end\nend\n"
            "module \\top.inner\n  cell $adff $3\n    connect \\Q { \\total [1:0] }\n  end\n"
            "  cell $add $4\n    connect \\Y \\sum\n  end\nend\n")
    named = name_registers(text, "top")
    assert named.count("attribute") == 2
    assert '  attribute \\ternforge_signal "count"\n  cell $dff $1\n' in named
    assert '  attribute \\ternforge_signal "inner.total"\n  cell $adff $3\n' in named
    assert named.replace('  attribute \\ternforge_signal "count"\n', "").replace(
        '  attribute \\ternforge_signal "inner.total"\n', "") == text


class Inner(wiring.Component):
    a: In(16)
    b: In(16)
    y: Out(16)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq((self.a + self.b) ^ (self.a >> 3))
        return m


class Outer(wiring.Component):
    a: In(16)
    b: In(16)
    total: Out(16)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = Inner()
        first, second = Signal(16), Signal(16)
        m.d.sync += [first.eq(self.a), second.eq(self.b), self.total.eq(inner.y + first)]
        m.d.comb += [inner.a.eq(first), inner.b.eq(second)]
        return m


@pytest.mark.yosys
def test_levels_are_counted_across_submodules_in_the_same_run(monkeypatch, tmp_path):
    """The registers keep their Amaranth names; the path runs through the submodule's adder
    into the top's; the resources are those of a run without levels, cached for it too."""
    text = rtlil.convert(Outer(), name="outer", emit_src=False)
    report = synthesize(text, top="outer", levels=True, cache_dir=tmp_path)
    path = report["path"]
    assert path["from"] in ("first", "second") and path["to"] == "total"
    assert {cell["module"] for cell in path["cells"]} == {"", "inner"}
    assert report["levels"] >= 4 and report["FF"] == 48
    assert sum(cell["levels"] for cell in path["cells"]) <= report["levels"]
    monkeypatch.setattr(synthesis, "_run_yosys", fail_if_run)
    plain = synthesize(text, top="outer", cache_dir=tmp_path)
    assert plain == {key: report[key] for key in report if key not in ("levels", "path")}
