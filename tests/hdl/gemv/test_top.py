"""The GEMV/GEMM top's generated Verilog on Verilator, through the cocotb testbench."""

import json
from dataclasses import asdict

import numpy as np
import pytest
from amaranth.back import verilog

from ternforge.gen.config import EngineConfig
from ternforge.gen.elaborate import GEMV_TOP, gemv_top
from ternforge.sim import verilator

CONFIG = EngineConfig(group_size=3, groups_per_cycle=2, rows=4, max_k=256, max_n=128,
                      table_tokens=2)


@pytest.mark.verilator
def test_gemv_top_on_verilator(tmp_path):
    top = gemv_top(CONFIG, data_bits=32, buffer_depth=64)
    build = verilator.build(verilog.convert(top, name=GEMV_TOP), toplevel=GEMV_TOP)
    verilator.run(build, toplevel=GEMV_TOP, test_module="ternforge.tb.gemv_tb", work_dir=tmp_path,
                  env={"TERNFORGE_TB": json.dumps({
                      "engine": asdict(CONFIG.parameters("tlmm-lutram")), "data_bits": 32,
                      "buffer_depth": 64})})


@pytest.mark.verilator
def test_gemv_top_on_the_memory_in_the_simulator(tmp_path):
    """The same top inside the simulator's Verilog memory: the planner's cycles exactly
    (the memory times reads as the Python model does), and exact values under its random
    stalls on every channel."""
    from ternforge.sim.memory import MEMORY_VERILOG, WithMemory, plusargs

    top = WithMemory(gemv_top(CONFIG, data_bits=32, buffer_depth=64), data_bits=32,
                     words=1 << 14)
    name = "gemv_top_in_memory"
    build = verilator.build(verilog.convert(top, name=name) + MEMORY_VERILOG, toplevel=name)
    for stall in (0.0, 0.5):
        verilator.run(build, toplevel=name, test_module="ternforge.tb.gemv_tb", work_dir=tmp_path / str(stall),
                      testcase="gemv_on_the_memory_in_the_simulator",
                      plusargs=plusargs(latency=9, bytes_per_cycle=4, stall=stall, seed=3),
                      env={"TERNFORGE_TB": json.dumps({
                          "engine": asdict(CONFIG.parameters("tlmm-lutram")), "data_bits": 32,
                          "buffer_depth": 64, "in_simulator": True, "memory_latency": 9,
                          "memory_stall": stall})})


@pytest.mark.verilator
def test_run_gemv_command_writes_exact_results(capsys, tmp_path):
    from ternforge.gen.cli import main
    from ternforge.gen.config import DesignConfig

    rng = np.random.default_rng(9)
    weights, acts = rng.integers(-1, 2, (64, 48)).astype(np.int8), \
        rng.integers(-128, 128, (1, 48)).astype(np.int8)
    np.save(tmp_path / "w.npy", weights)
    np.save(tmp_path / "x.npy", acts)
    (tmp_path / "c.toml").write_text(DesignConfig(tlmm=CONFIG).to_toml())
    main(["run", "gemv", "--config", str(tmp_path / "c.toml"), "--weights",
          str(tmp_path / "w.npy"), "--acts", str(tmp_path / "x.npy"), "--out",
          str(tmp_path / "y.npy"), "--data-bits", "32", "--mem-bytes-per-cycle", "4"])
    out = capsys.readouterr().out
    assert "stall cycles" in out and "bytes/cycle" in out
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.int32 and np.array_equal(y, acts.astype(np.int64) @ weights.T)


def test_run_gemv_rejects_bad_input(capsys, tmp_path):
    from ternforge.gen.cli import main

    np.save(tmp_path / "w.npy", np.full((4, 8), 3, np.int8))
    np.save(tmp_path / "x.npy", np.zeros((1, 8), np.int8))
    with pytest.raises(SystemExit) as exit_:
        main(["run", "gemv", "--weights", str(tmp_path / "w.npy"), "--acts",
              str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "ternforge: Weights must be in {-1, 0, 1}, not 3\n"
    assert not (tmp_path / "y.npy").exists()
