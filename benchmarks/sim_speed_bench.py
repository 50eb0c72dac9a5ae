"""Simulated cycles per second: the GEMV top with the Python memory model against designs
whose DDR is inside the simulator.

Three runs on Verilator (builds cached, not timed):

- ``python-memory``: the GEMV top (default configuration: 384 MACs a cycle) computing one
  0.7B-shaped decode projection (K = N = 1536) with the cocotb AXI4 memory model and the
  cocotb activation and result streams, which run Python every cycle (today's path);
- ``verilog-memory``: the same job, the top inside the Verilog memory model (the streams are
  still Python);
- ``accelerator``: the whole accelerator (the machine tests' simulation accelerator of the
  tiny model: controller, copy, vector, GEMV, RoPE and attention units) generating 16 tokens
  from a 9-token prompt, its DDR inside the simulator, the host's work (embedding, LM head)
  in Python between programs only;
- ``dma-copies``: two DMA engines copying 2 x 16 Ki words of 512 bits through the
  interconnect on the Verilog memory, started and awaited from Python, with nothing in Python
  per cycle: the simulator's own speed, the speed a whole-accelerator run will have.

Wall time per run: the GEMV figures subtract the same run's fixed cost (simulator start-up,
loading the job), measured on a 16 x 24 job; the accelerator's subtracts a run of the same
prompt generating 2 tokens (start-up, loading the image, the prefill), so it is the decode
steps' cycles over their seconds; the copies time themselves inside the simulation.

Run: ``python benchmarks/sim_speed_bench.py [--json FILE]``; results in
``benchmarks/results/sim_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from amaranth.back import verilog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ternforge.tb.memory_tb import TOPLEVEL, design  # noqa: E402
from ternforge.gen.config import EngineConfig  # noqa: E402
from ternforge.gen.elaborate import GEMV_TOP, gemv_top  # noqa: E402
from ternforge.hdl.gemv.parameters import GemvParameters  # noqa: E402
from ternforge.sim import verilator  # noqa: E402
from ternforge.sim.cocotb.tlmm import write_job  # noqa: E402
from ternforge.sim.memory import MEMORY_VERILOG, WithMemory, plusargs, write_image  # noqa: E402


def _gemv(build, toplevel, work, m, k, n, *, in_simulator):
    rng = np.random.default_rng(1)
    x, w = rng.integers(-128, 128, (m, k)).astype(np.int8), \
        rng.integers(-1, 2, (n, k)).astype(np.int8)
    config = EngineConfig()
    engine = config.parameters("tlmm-lutram")
    memory = {"data_bits": GemvParameters.default_data_bits(engine), "latency": 20,
              "bytes_per_cycle": 64.0, "resident": False, "in_simulator": in_simulator}
    env = write_job(work, engine, x, w, memory=memory)
    started = time.perf_counter()
    verilator.run(build, toplevel=toplevel, test_module="ternforge.sim.cocotb.gemv",
                  work_dir=work, env=env, plusargs=plusargs() if in_simulator else ())
    seconds = time.perf_counter() - started
    result = np.load(work / "result.npz")
    assert np.array_equal(result["y"], x.astype(np.int64) @ w.T.astype(np.int64))
    return int(result["cycles"]), seconds


def gemv_speed(in_simulator: bool) -> dict:
    config = EngineConfig()
    top = gemv_top(config, buffer_depth=4096)
    name = "gemv_top_in_memory" if in_simulator else GEMV_TOP
    text = verilog.convert(WithMemory(top, words=1 << 16) if in_simulator else top, name=name)
    build = verilator.build(text + (MEMORY_VERILOG if in_simulator else ""), toplevel=name)
    with tempfile.TemporaryDirectory() as folder:
        _, fixed = _gemv(build, name, Path(folder) / "small", 16, 24, 16,
                         in_simulator=in_simulator)
        cycles, seconds = _gemv(build, name, Path(folder) / "big", 1, 1536, 1536,
                                in_simulator=in_simulator)
    return {"cycles": cycles, "seconds": round(seconds - fixed, 3),
            "cycles_per_s": round(cycles / (seconds - fixed))}


def accelerator_speed() -> dict:
    from ternforge.tb.controller_tb import ACCELERATOR, MEMORY_BYTES
    from ternforge.hdl.accelerator.model import preset
    from ternforge.sim import machine
    from ternforge.sim.checkpoint import load_checkpoint, shipped_weights

    path = shipped_weights("tiny")
    weights = load_checkpoint(path, preset("tiny"))
    build = machine.build(ACCELERATOR, memory_bytes=MEMORY_BYTES)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for new in (2, 16):
            started = time.perf_counter()
            result = machine.generate(build, ACCELERATOR, weights, path, list(b"ROMEO:\nI "),
                                      new, work=Path(folder) / str(new),
                                      memory_bytes=MEMORY_BYTES)
            runs.append((result["prefill_cycles"] + sum(result["decode_cycles"]),
                         time.perf_counter() - started))
    (small, small_seconds), (big, big_seconds) = runs
    return {"cycles": big - small, "seconds": round(big_seconds - small_seconds, 3),
            "cycles_per_s": round((big - small) / (big_seconds - small_seconds))}


def copy_speed() -> dict:
    words, data_bits = 1 << 16, 512
    build = verilator.build(verilog.convert(design(2, data_bits=data_bits, words=words),
                                            name=TOPLEVEL) + MEMORY_VERILOG, toplevel=TOPLEVEL)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        image = np.random.default_rng(2).integers(0, 256, words * 64, np.uint8).tobytes()
        write_image(work / "image.hex", image, data_bits=data_bits)
        word = data_bits // 8
        jobs = [[[0, 32768 * word, 16384]], [[16384 * word, 49152 * word, 16384]]]
        job = {"copies": 2, "data_bits": data_bits, "jobs": jobs,
               "image": str(work / "image.hex"), "result": str(work / "result.json")}
        verilator.run(build, toplevel=TOPLEVEL, test_module="ternforge.tb.memory_tb", work_dir=work,
                      env={"TERNFORGE_TB": json.dumps(job)},
                      plusargs=plusargs(image=Path("image.hex")))
        result = json.loads((work / "result.json").read_text())
    return {"cycles": result["cycles"], "seconds": round(result["seconds"], 3),
            "cycles_per_s": round(result["cycles"] / result["seconds"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).parent / "results" / "sim_speed.json")
    args = parser.parse_args(argv)
    results = {"python-memory": gemv_speed(False), "verilog-memory": gemv_speed(True),
               "accelerator": accelerator_speed(), "dma-copies": copy_speed()}
    for name, entry in results.items():
        print(f"{name:15} {entry['cycles']:>9,} cycles in {entry['seconds']:7.3f} s: "
              f"{entry['cycles_per_s']:>10,} cycles/s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
