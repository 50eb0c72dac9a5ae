"""The accelerator of a model on a board: its parameters from a configuration, its memory
map (the runtime's layout from the model's shapes alone), its report and ``generate``."""

import dataclasses
import json
import re

import pytest

import ternforge.gen.accelerator as generator
from cli_support import invoke
from ternforge.boards import RESOURCE_KEYS
from ternforge.boards.builtin import KV260
from ternforge.gen.accelerator import (TOP, accelerator_parameters, check_memory,
                                       check_resources)
from ternforge.gen.config import AcceleratorConfig, AttentionConfig, DesignConfig
from ternforge.hdl.accelerator.controller import REGISTERS
from ternforge.hdl.accelerator.model import preset
from ternforge.sim.models.bitnet import random_weights
from ternforge.sim.runtime import Image, ModelLayout, generation, memory_map

TINY = preset("tiny")


def test_the_default_configuration_gives_the_07b_accelerator_on_four_hp_ports():
    p = accelerator_parameters(DesignConfig(), preset("bitnet-0.7b"))
    assert (p.data_bits, p.hp_ports, p.port_bits) == (512, 4, 128)
    assert (p.context, p.engine.macs_per_cycle) == (2048, 384)
    assert (p.engine.max_k, p.engine.max_n) == (4096, 4096)  # the FFN's 4,096
    # eight float32 lanes (96 / 8 elements each); a tile of one query row (0.7B's group)
    # by 64 keys
    engine = p.attention.engine
    assert (engine.lanes, engine.rows, engine.cols, engine.head_dim) == (8, 1, 64, 96)
    assert (p.vector.max_length, p.vector.activation) == (4096, "silu")
    assert p.attention.paired  # a key beat and a value beat a 512-bit word
    assert p.vector.lanes == 2  # two elements a cycle of the element-wise work
    # by default: one lane on one HP port (the most it takes), one for 2B4T (no room for two)
    narrow = AcceleratorConfig(hp_ports=1, attention_lanes=4)
    assert accelerator_parameters(DesignConfig(accelerator=narrow),
                                  preset("bitnet-0.7b")).vector.lanes == 1
    assert accelerator_parameters(DesignConfig(), preset("bitnet-2b4t")).vector.lanes == 1
    wide = AcceleratorConfig(vector_lanes=4)
    assert accelerator_parameters(DesignConfig(accelerator=wide),
                                  preset("bitnet-0.7b")).vector.lanes == 4
    short = accelerator_parameters(DesignConfig(accelerator=AcceleratorConfig(context=1024)),
                                   preset("bitnet-0.7b"))
    assert short.context == 1024
    # the separate attention units' section is not the accelerator's
    assert accelerator_parameters(DesignConfig(attention=AttentionConfig(
        format="bfloat16", rows=8, decode_lanes=8)), preset("bitnet-0.7b")) == p


def test_a_board_of_twice_the_kv260s_luts_takes_the_wide_design_by_default():
    """The zcu104: 16 attention lanes, tiles of 128 keys for one query row a KV head (64 for
    2B4T's four), 4 vector lanes; each at most what the bus and the head dimension take, and
    what a configuration names kept."""
    zcu104 = DesignConfig(board="zcu104")
    shapes = {}
    for model in ("bitnet-0.7b", "bitnet-2b4t", "tiny"):
        p = accelerator_parameters(zcu104, preset(model))
        shapes[model] = (p.attention.engine.lanes, p.attention.engine.cols, p.vector.lanes)
    assert shapes == {"bitnet-0.7b": (16, 128, 4), "bitnet-2b4t": (16, 64, 4),
                      "tiny": (16, 64, 4)}
    two_ports = accelerator_parameters(zcu104.replace("accelerator.hp_ports", 2),
                                       preset("bitnet-0.7b"))
    assert (two_ports.attention.engine.lanes, two_ports.vector.lanes) == (8, 2)  # 256 bits
    named = zcu104.replace("accelerator.attention_lanes", 8).replace(
        "accelerator.vector_lanes", 1)
    p = accelerator_parameters(named, preset("bitnet-0.7b"))
    assert (p.attention.engine.lanes, p.attention.engine.cols, p.vector.lanes) == (8, 128, 1)
    assert accelerator_parameters(DesignConfig(board="kv260"), preset("bitnet-0.7b")) == \
        accelerator_parameters(DesignConfig(), preset("bitnet-0.7b"))


@pytest.mark.parametrize("accelerator, message", [
    (AcceleratorConfig(attention_lanes=8, attention_cols=64, hp_ports=1),
     "Attention lanes (float32 elements of a 128-bit word) must be an integer from 1 to 4, "
     "not 8"),
    (AcceleratorConfig(attention_cols=6), "Columns must be a multiple of the 8 lanes, not 6"),
    (AcceleratorConfig(attention_rows=1, attention_cols=4, attention_lanes=4),
     "Rows times columns per lane must be at least the fma latency (7), not 1"),
    (AcceleratorConfig(attention_rows=3),
     "Attention rows (at least bitnet-2b4t's query heads per KV head) must be an integer from "
     "4 to 64, not 3"),
    (AcceleratorConfig(vector_lanes=3),
     "Vector lanes must divide bitnet-0.7b's hidden and FFN sizes (1536, 4096), not 3"),
    (AcceleratorConfig(vector_lanes=2, attention_lanes=4, hp_ports=1),
     "Vector lanes must be a power of two from 1 to 1 (a quarter of the float32 elements of "
     "a 128-bit word), not 2"),
    (AcceleratorConfig(vector_lanes=8),
     "Vector lanes must be a power of two from 1 to 4 (a quarter of the float32 elements of "
     "a 512-bit word), not 8"),
])
def test_an_accelerator_the_port_or_model_cannot_take_is_refused(accelerator, message):
    model = preset("bitnet-2b4t" if accelerator.attention_rows == 3 else "bitnet-0.7b")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        accelerator_parameters(DesignConfig(accelerator=accelerator), model)
    # by default a tile holds a decode job's query heads
    assert accelerator_parameters(DesignConfig(), preset("bitnet-2b4t")).attention.engine.rows == 4


@pytest.mark.parametrize("hp_ports", [1, 4])
def test_part_names_are_the_tops_parts(hp_ports):
    accelerator = AcceleratorConfig(hp_ports=hp_ports, attention_lanes=4)
    p = accelerator_parameters(DesignConfig(accelerator=accelerator), TINY)
    assert generator.part_names(p) == tuple(generator.accelerator(p).parts)


def test_the_accelerators_attention_is_float32():
    p = accelerator_parameters(DesignConfig(), TINY)
    engine = dataclasses.replace(p.attention.engine, format="bfloat16")
    with pytest.raises(ValueError, match="^Attention format of the accelerator must be "
                                         "float32, not 'bfloat16'$"):
        dataclasses.replace(p, attention=dataclasses.replace(p.attention, engine=engine))


def test_the_memory_map_is_the_runtimes_layout():
    """From shapes alone, every region where the runtime puts it with real weights, and
    the programs as long as the ones it writes."""
    p = accelerator_parameters(DesignConfig(), TINY)
    weights = random_weights(TINY, seed=3)
    image = Image(1 << 24)
    ModelLayout(image, weights, gemv=p.gemv, attention=p.attention, max_tokens=9,
                word_bytes=16)
    memory = memory_map(TINY, gemv=p.gemv, attention=p.attention, data_bits=128,
                        prompt_tokens=9, memory_bytes=1 << 24)
    regions = [(r["name"], r["address"], r["bytes"]) for r in memory["regions"]]
    assert regions[:len(image.regions)] == image.regions
    assert [name for name, _, _ in regions[len(image.regions):]] == [
        "program.prefill", "program.decode"]
    _, job = generation(weights, prompt_tokens=9, new_tokens=2, gemv=p.gemv,
                        attention=p.attention, data_bits=128, memory_bytes=1 << 24)
    assert memory["programs"]["prefill"]["instructions"] == job["prefill"][1]
    assert memory["programs"]["decode"]["instructions"] == job["decode"][0][1]
    assert sum(memory["kinds"].values()) == sum(r["bytes"] for r in memory["regions"])
    # layers share their scratch and RoPE tables; each has its own weights and cache
    names = {r["name"] for r in memory["regions"]}
    assert {"layer1.kv_cache", "layer1.weights.down", "scratch.acc", "rope.cos"} <= names
    assert not any(name.startswith("layer1.scratch") for name in names)


def test_a_model_larger_than_the_boards_ddr_is_refused():
    small = dataclasses.replace(KV260, ddr_size_bytes=100 << 20)
    p = accelerator_parameters(DesignConfig(), preset("bitnet-0.7b"))
    with pytest.raises(ValueError, match=r"^Model bitnet-0.7b must fit kv260's DDR: its "
                       r"weights, KV cache of 2,048 tokens and scratch take [\d,]+ bytes, "
                       r"not more than 104,857,600$"):
        check_memory(p, small)
    assert check_memory(p, KV260)["bytes"] < KV260.ddr_size_bytes


def _synthesised(counts):
    """A stand-in for Yosys: each part's counts by its top's name, recorded."""
    seen = []

    def synthesize(text, *, top, levels=False):
        seen.append(top)
        assert text.startswith("attribute") or "module" in text  # RTLIL of the part
        path = {"levels": 3, "path": {"from": f"{top}.a", "from_type": "FDRE", "to": "b",
                                      "to_type": "FDRE", "cells": [{"type": "LUT6",
                                                                    "module": ""}] * 3}}
        return {**counts(top), "cells": {}, **(path if levels else {})}
    return synthesize, seen


def test_an_accelerator_larger_than_the_board_is_refused():
    total = dict.fromkeys(RESOURCE_KEYS, 0) | {"URAM": 40, "LUT": 100}
    check_resources(total, TINY, KV260)
    small = dataclasses.replace(KV260, resources={**KV260.resources, "URAM": 32})
    with pytest.raises(ValueError, match=r"^The accelerator of tiny must fit kv260 \(URAM: 40 "
                       r"used, only 32 on kv260\)$"):
        check_resources(total, TINY, small)


#: a stand-in for the activity measured on Verilator (:func:`ternforge.sim.activity.measure`)
MEASURED = {"source": "verilator-saif", "workload": {"prompt_tokens": 4}, "accelerator": {},
            "build": "b", "nets": "registers", "cycles": {"prefill": 100, "decode": 50},
            "activity": {phase: {p: 0.01 * (i + 1) for i, p in enumerate(
                ("controller", "interconnect", "copy", "vector", "gemv", "rope", "attention"))}
                for phase in ("prefill", "decode")},
            "mean": {"prefill": 0.02, "decode": 0.02}}


def test_generate_writes_one_top_and_its_report(capsys, tmp_path, monkeypatch):
    """The top's Verilog, and a report whose total is the sum of the top's parts (Yosys
    replaced by fixed counts: each part's synthesis is the tested ``synthesize``)."""
    synthesize, seen = _synthesised(lambda top: dict.fromkeys(RESOURCE_KEYS, 1) | {"LUT": 10})
    monkeypatch.setattr(generator, "synthesize", synthesize)
    monkeypatch.setattr(generator, "measure_activity", lambda: MEASURED)  # (tests/sim: real)
    code, out, err = invoke(capsys, "generate", "--model", "tiny", "--jobs", "2", "--out",
                            str(tmp_path / "build"))
    assert code == 0, err
    verilog = sorted((tmp_path / "build" / "verilog").iterdir())
    assert [path.name for path in verilog] == [f"{TOP}.v"]
    assert f"module {TOP}(" in verilog[0].read_text()
    report = json.loads((tmp_path / "build" / "report.json").read_text())
    parts = ["controller", "interconnect", "striper", "copy", "vector", "gemv", "rope",
             "attention"]
    assert report["top"] == TOP and report["model"]["name"] == "tiny"
    assert sorted(report["modules"]) == sorted(parts)  # (the JSON's keys are sorted)
    assert sorted(seen) == sorted(f"{TOP}_{name}" for name in parts)
    assert report["total"] == dict.fromkeys(RESOURCE_KEYS, 8) | {"LUT": 80}
    for name, entry in report["modules"].items():  # each part's deepest path, timed
        assert entry["levels"] == 3 and 180 < entry["fmax_mhz"] < 1000
        assert (entry["path"]["from"], entry["path"]["to"]) == (f"{TOP}_{name}.a", "b")
    timing = report["timing"]
    assert (timing["clock_mhz"], timing["speed_grade"], timing["max_levels"]) == (
        180.0, "-2LV", 10)
    assert timing["meets_clock"] is True and timing["too_deep"] == []
    assert timing["worst"]["levels"] == 3 and "levels" in out and "Fmax MHz" in out
    assert [r["name"] for r in report["registers"]] == list(REGISTERS) + [
        f"{unit}_cycles" for unit in ("copy", "vector", "gemv", "rope", "attention")]
    assert [r["offset"] for r in report["registers"]] == list(range(0, 40, 4))
    assert report["memory_map"]["context"] == TINY.max_context
    assert report["accelerator"]["engine"]["macs_per_cycle"] == 384
    power = report["power"]
    assert power["estimate"] is True and power["activity_source"]["kind"] == "verilator-saif"
    assert power["activity"] == {part: MEASURED["activity"]["decode"].get(part, 0.02)
                                 for part in parts}  # the mean for a part not measured
    assert power["activity_source"]["mean_for"] == ["striper"]
    assert power["total_w"] == pytest.approx(
        KV260.static_power_w + sum(power["dynamic_w"].values()), abs=1e-3)
    # the cycle model does not cover tiny's layers on the default design's engine
    assert power["energy_per_token_j"] == power["tokens_per_s"] == {}
    assert "utilization" in report
    assert list(report["ports"]) == ["clk", "done", "m_axi0", "m_axi1", "m_axi2", "m_axi3",
                                     "rst", "s_axil"]  # (sorted)
    assert "S_AXI_HP3_FPD" in report["ports"]["m_axi3"]
    assert (tmp_path / "build" / "config.toml").exists() and TOP in out


@pytest.mark.parametrize("argv,message", [
    (["--model", "gpt2"], "Model must be one of bitnet-0.7b, bitnet-2b4t, tiny, not 'gpt2'"),
    (["--jobs", "0"], "--jobs must be an integer from 1 to 256, not 0"),
])
def test_generate_refuses_bad_arguments_and_writes_nothing(capsys, tmp_path, argv, message):
    code, _, err = invoke(capsys, "generate", *argv, "--out", str(tmp_path / "build"))
    assert (code, err) == (2, f"ternforge: {message}\n")
    assert not (tmp_path / "build").exists()


def test_generate_refuses_a_model_the_boards_ddr_cannot_hold(capsys, tmp_path, monkeypatch):
    import ternforge.boards.builtin as builtin

    monkeypatch.setitem(builtin.BOARDS, "kv260", dataclasses.replace(
        KV260, ddr_size_bytes=64 << 20))
    code, _, err = invoke(capsys, "generate", "--out", str(tmp_path / "build"))
    assert code == 2 and err.startswith("ternforge: Model bitnet-0.7b must fit kv260's DDR")
    assert err.count("\n") == 1 and not (tmp_path / "build").exists()
