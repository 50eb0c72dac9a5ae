import json

import pytest
from amaranth import Module
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ternforge.gen import synthesis
from ternforge.gen.synthesis import (default_cache_dir, resources_of_cells, synthesize,
                                     synthesize_component)


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
