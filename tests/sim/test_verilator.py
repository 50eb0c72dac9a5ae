"""The Verilator build cache: a build is published by its manifest, and a killed build or a
damaged simulator is built again rather than reused."""

import json
import os
from pathlib import Path

import pytest

from ternforge.sim import verilator

VERILOG = "module cache_probe(input clk, output reg q); always @(posedge clk) q <= ~q; endmodule\n"


def _build(root):
    return verilator.build(VERILOG, toplevel="cache_probe", build_root=root)


@pytest.mark.verilator
def test_damaged_builds_are_built_again(tmp_path):
    directory = _build(tmp_path)
    simulator = directory / "cache_probe"
    manifest = json.loads((directory / verilator.MANIFEST).read_text())
    assert manifest["sha256"] == verilator._sha256(simulator)
    assert not list(directory.glob("*.gch"))  # precompiled headers are not kept
    size = simulator.stat().st_size

    def damaged(damage):
        damage()
        assert _build(tmp_path) == directory
        assert simulator.stat().st_size == size
        assert verilator._sha256(simulator) == manifest["sha256"]

    # truncated to half, deleted (truncated to nothing is the killed build's, below)
    damaged(lambda: simulator.write_bytes(simulator.read_bytes()[:size // 2]))
    damaged(simulator.unlink)
    # a build killed before it finished: a 0-byte simulator and no manifest
    def killed():
        (directory / verilator.MANIFEST).unlink()
        simulator.write_bytes(b"")
        os.utime(simulator)  # newer than every source: make alone would take it as built
    damaged(killed)


def test_a_manifest_of_another_build_is_not_trusted(tmp_path):
    (tmp_path / "cache_probe").write_bytes(b"x")
    (tmp_path / verilator.MANIFEST).write_text(json.dumps(
        {"key": "other", "simulator": "cache_probe", "sha256": verilator._sha256(
            tmp_path / "cache_probe")}))
    assert not verilator._intact(tmp_path, "cache_probe", "mine")
    (tmp_path / verilator.MANIFEST).write_text("{")
    assert not verilator._intact(tmp_path, "cache_probe", "other")


@pytest.mark.verilator
def test_a_failed_build_names_the_module_and_its_kept_log(tmp_path, monkeypatch):
    monkeypatch.setenv("TERNFORGE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RuntimeError) as error:
        verilator.build("module broken(input clk); always @(posedge clk) q <= ; endmodule\n",
                        toplevel="broken", build_root=tmp_path / "builds")
    first, *_ = str(error.value).splitlines()
    log = next((tmp_path / "cache" / "logs").glob("verilator-broken-*.log"))
    assert first == f"Verilator failed to build module 'broken' (verilator failed with " \
                    f"return code 1); log: {log}"
    assert "syntax error" in log.read_text()


def test_a_design_from_another_checkout_is_the_same_build():
    """Amaranth's ``src`` attributes name the generator's files by absolute path; builds are
    keyed on the Verilog without them."""
    from amaranth.back import verilog as verilog_backend

    from ternforge.hdl.common.words import WordPacker
    from ternforge.sim.verilator import without_sources

    text = verilog_backend.convert(WordPacker(word_bits=32, beat_bits=8), name="packer")
    root = str(Path(__file__).resolve().parents[2])
    assert '(* src = "' in text and root in text
    elsewhere = text.replace(root, "/home/someone/ternforge")
    assert without_sources(text) == without_sources(elsewhere)
    assert "src =" not in without_sources(text) and "module packer(" in without_sources(text)


def test_only_the_tops_ports_are_made_public():
    """Every signal public makes Verilator evaluate the logic that reads it on every call
    into the model; the control file names the top's ports alone, in either header style."""
    from ternforge.sim.verilator import control_file

    assert control_file(VERILOG, "cache_probe") == (
        "`verilator_config\n"
        'public_flat_rw -module "cache_probe" -var "clk"\n'
        'public_flat_rw -module "cache_probe" -var "q"\n')
    plain = "module top(a, \\b$1 , c);\n  input a;\nendmodule\nmodule other(d);\nendmodule\n"
    assert control_file(plain, "top").count("public_flat_rw") == 3
    assert '-var "b$1"' in control_file(plain, "top")
    with pytest.raises(ValueError, match="^Top-level module must be in the Verilog, not 'x'$"):
        control_file(plain, "x")
