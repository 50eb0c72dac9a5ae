"""Where a tiny model's prefill and decode step spend their cycles, instruction by instruction.

The machine tests' simulation accelerator of the tiny model (128-bit bus, 96 MACs a cycle, two
attention lanes) runs, on Verilator with a deterministic memory (latency 20 cycles, 16 bytes a
cycle, writes answered 10 cycles after their last word):

1. the prefill of a 9-token prompt as one program, and then each of its instructions again as
   a program of its own;
2. the first decode step the same way (its input row is the prompt's first embedding: the
   cycles do not depend on the values).

Every instruction waits for the one before it, so a program's cycles are its instructions'
cycles one after another; run alone, an instruction's cycles also count the controller's
fetch of it. The JSON gives each instruction's unit, its sizes (no addresses) and cycles, the
totals per unit and operation, and each program's cycles against the sum of its instructions'.
It is what the accelerator's cycle model has to reproduce: each instruction's ``model`` is its
unit's cycle model (:meth:`AcceleratorParameters.instruction_cycles
<ternforge.hdl.accelerator.parameters.AcceleratorParameters.instruction_cycles>`) beside its
``unit_cycles`` measured, and each program's ``controller_model`` is
:func:`~ternforge.hdl.accelerator.controller.program_cycles` of the instructions' modeled
cycles, beside the program's cycles.

Run: ``python benchmarks/instruction_cycles_bench.py [--json FILE]``; results in
``benchmarks/results/instruction_cycles.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ternforge.tb.controller_tb import ACCELERATOR, MEMORY_BYTES, WORD, build  # noqa: E402
from ternforge.hdl.accelerator.model import preset  # noqa: E402
from ternforge.hdl.accelerator.parameters import VectorOp  # noqa: E402
from ternforge.hdl.accelerator.controller import program_cycles  # noqa: E402
from ternforge.hdl.common.timing import MemoryTiming  # noqa: E402
from ternforge.sim import machine, verilator  # noqa: E402
from ternforge.sim.checkpoint import load_checkpoint, shipped_weights  # noqa: E402
from ternforge.sim.memory import plusargs, write_image  # noqa: E402
from ternforge.sim.models import fp as fm  # noqa: E402
from ternforge.sim.runtime import decode_instruction, generation  # noqa: E402

PROMPT = list(b"ROMEO:\nI ")
MEMORY = {"latency": 20, "write_latency": 10, "bytes_per_cycle": ACCELERATOR.data_bits // 8}
TIMING = MemoryTiming(latency=MEMORY["latency"], write_latency=MEMORY["write_latency"])
#: the fields that say how much an instruction does (the rest are addresses and strides)
SIZES = ("op", "tokens", "length", "n", "k", "weight_beats", "descriptor_count", "rows",
         "keys", "append", "heads", "half", "words")


def _describe(raw: bytes) -> dict:
    unit, _, fields = decode_instruction(raw)
    sizes = {name: value for name, value in fields.items() if name in SIZES}
    if unit == "vector":
        sizes["op"] = VectorOp(sizes["op"]).name.lower()
    return {"unit": unit, **sizes}


def _model(raw: bytes) -> int | None:
    """The instruction's cycles by its unit's cycle model, for the units that have one."""
    unit, _, fields = decode_instruction(raw)
    return ACCELERATOR.instruction_cycles(unit, fields, memory=TIMING)


def measure() -> dict:
    weights = load_checkpoint(shipped_weights("tiny"), preset("tiny"))
    image, job = generation(weights, prompt_tokens=len(PROMPT), new_tokens=2,
                            gemv=ACCELERATOR.gemv, attention=ACCELERATOR.attention,
                            data_bits=ACCELERATOR.data_bits, memory_bytes=MEMORY_BYTES)
    embedded = fm.to_bits(weights.embedding[np.asarray(PROMPT)].astype(np.float64), "float32")
    step = 2 * WORD  # bytes of an instruction
    phases = {"prefill": job["prefill"], "decode": job["decode"][0]}
    programs = []
    for address, length in phases.values():
        programs += [[address, length]] + [[address + i * step, 1] for i in range(length)]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        write_image(work / "image.hex", bytes(image.data), data_bits=ACCELERATOR.data_bits)
        tb_job = {"programs": programs, "result": str(work / "cycles.json"),
                  "writes": [[job["input"], embedded.astype("<u4").tobytes().hex()]],
                  "timeout_ms": 100}
        verilator.run(build(), toplevel=machine.TOPLEVEL, test_module="ternforge.tb.controller_tb",
                      work_dir=work, env={"TERNFORGE_TB": json.dumps(tb_job)},
                      plusargs=plusargs(image=Path("image.hex"), **MEMORY))
        runs = json.loads((work / "cycles.json").read_text())
    result = {"memory": MEMORY, "prompt_tokens": len(PROMPT)}
    for name, (address, length) in phases.items():
        whole, alone, runs = runs[0]["cycles"], runs[1:1 + length], runs[1 + length:]
        raw = [image.get(address + i * step, step) for i in range(length)]
        instructions = [{**_describe(r), "cycles": run["cycles"],
                         "unit_cycles": sum(run["units"].values()), "model": _model(r)}
                        for r, run in zip(raw, alone)]
        by_unit = {}
        for instruction in instructions:
            key = instruction["unit"] + (f".{instruction['op']}" if "op" in instruction else "")
            entry = by_unit.setdefault(key, {"count": 0, "cycles": 0})
            entry["count"] += 1
            entry["cycles"] += instruction["cycles"]
        result[name] = {"cycles": whole,
                        "instructions_alone": sum(i["cycles"] for i in instructions),
                        "modeled": {"instructions": len(instructions),
                                    "exact": sum(i["model"] == i["unit_cycles"]
                                                 for i in instructions),
                                    "unit_cycles": sum(i["unit_cycles"]
                                                       for i in instructions)},
                        "controller_model": program_cycles(
                            [i["model"] for i in instructions], memory=TIMING,
                            address=address, word_bytes=WORD),
                        "by_unit": dict(sorted(by_unit.items(), key=lambda kv: -kv[1]["cycles"])),
                        "instructions": instructions}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).parent / "results" / "instruction_cycles.json")
    args = parser.parse_args(argv)
    result = measure()
    for phase in ("prefill", "decode"):
        entry = result[phase]
        print(f"{phase}: {entry['cycles']:,} cycles as one program, {entry['instructions_alone']:,}"
              f" as {len(entry['instructions'])} programs of one instruction")
        m = entry["modeled"]
        print(f"  cycle models: {m['exact']} of {m['instructions']} instructions exact "
              f"({m['unit_cycles']:,} unit cycles); the model of the program: "
              f"{entry['controller_model']:,}")
        for key, unit in entry["by_unit"].items():
            print(f"  {key:22} {unit['count']:5} instructions {unit['cycles']:>10,} cycles "
                  f"({unit['cycles'] / entry['instructions_alone']:6.1%})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
