"""The ``ternforge run model`` command: a whole model generating text on the accelerator in
Verilator, beside the golden model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ...hdl.accelerator.model import PRESETS, preset
from ._common import check_out_file, console, staging

__all__ = ["run_model"]

#: the simulated DDR
_MEMORY = 1 << 22


def _prompt(config, text, ids) -> list[int]:
    if (text is None) == (ids is None):
        raise ValueError("Prompt must be given as --prompt TEXT or --prompt-ids LIST, once")
    if text is not None:
        if config.vocab != 256:
            raise ValueError(f"Prompt text must be for a byte vocabulary (256), not the "
                             f"{config.vocab:,} tokens of {config.name!r}: give --prompt-ids")
        tokens = list(text.encode())
    else:
        try:
            tokens = [int(part) for part in ids.split(",")]
        except ValueError:
            raise ValueError(f"Prompt ids must be comma-separated integers, not {ids!r}") \
                from None
    if not tokens:
        raise ValueError("Prompt must hold at least one token, not none")
    for token in tokens:
        if not 0 <= token < config.vocab:
            raise ValueError(f"Token ids must be from 0 to {config.vocab - 1}, not {token!r}")
    return tokens


@click.command("model")
@click.option("--model", "name", default="tiny", show_default=True,
              type=click.Choice(list(PRESETS)), help="The model (its shape).")
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="safetensors checkpoint (default: the weights that ship with tiny).")
@click.option("--prompt", "text", default=None, help="Prompt text (byte vocabulary).")
@click.option("--prompt-ids", "ids", default=None, help="Prompt token ids, comma-separated.")
@click.option("--new-tokens", type=click.IntRange(1, 4096), default=16, show_default=True,
              help="Tokens to generate greedily.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Where to write the result (JSON).")
def run_model(name, weights, text, ids, new_tokens, out):
    """Generate with a whole model on the accelerator (Verilator), and the golden model."""
    from ...hdl.accelerator.parameters import AcceleratorParameters
    from ...sim import machine
    from ...sim.checkpoint import load_checkpoint, shipped_weights
    from ...sim.models.bitnet import Golden, greedy

    config = preset(name)
    if name not in machine.SIMULATED:
        raise ValueError(f"Model must be one the simulator runs whole "
                         f"({', '.join(machine.SIMULATED)}),"
                         f" not {name!r}")
    path = weights if weights is not None else shipped_weights(name)
    check_out_file(out, (path,))
    tokens = _prompt(config, text, ids)
    context = machine.SIMULATED[name]
    if len(tokens) + new_tokens > context:
        raise ValueError(f"Prompt and new tokens must fit the context of {context} tokens, not "
                         f"{len(tokens)} + {new_tokens}")
    model = load_checkpoint(path, config)
    parameters = AcceleratorParameters.for_simulation(config, context=context)
    started = time.perf_counter()
    with console.status("building the accelerator with Verilator"):
        built = machine.build(parameters, memory_bytes=_MEMORY)
    with staging(prefix="ternforge-run-") as work:
        with console.status(f"simulating {len(tokens)} + {new_tokens} tokens on Verilator"):
            simulated = time.perf_counter()
            result = machine.generate(built, parameters, model, path, tokens, new_tokens,
                                      work=work, memory_bytes=_MEMORY)
            finished = time.perf_counter()
        with console.status("running the golden model"):
            golden, _ = greedy(Golden(model, cols=parameters.attention.engine.cols,
                                   vector_lanes=parameters.vector.lanes), tokens,
                               new_tokens)
        report = {"model": name, "prompt": tokens, "tokens": result["tokens"],
                  "golden_tokens": golden, "exact": result["tokens"] == golden,
                  "prefill_cycles": result["prefill_cycles"],
                  "decode_cycles": result["decode_cycles"],
                  "predicted_prefill_cycles": result["predicted_prefill_cycles"],
                  "predicted_decode_cycles": result["predicted_decode_cycles"],
                  "prefill_unit_cycles": result["prefill_unit_cycles"],
                  "decode_unit_cycles": result["decode_unit_cycles"],
                  "simulated_cycles_per_s": round(
                      (result["prefill_cycles"] + sum(result["decode_cycles"]))
                      / (finished - simulated))}
        if config.vocab == 256:
            report["text"] = bytes(tokens + result["tokens"]).decode(errors="replace")
        (work / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        (work / "report.json").replace(out)
    console.print(f"tokens {'match' if report['exact'] else 'DIFFER from'} the golden model; "
                  f"prefill {report['prefill_cycles']:,} cycles (predicted "
                  f"{report['predicted_prefill_cycles']:,}), decode "
                  f"{sum(report['decode_cycles']):,} cycles (predicted "
                  f"{sum(report['predicted_decode_cycles']):,}); build and run "
                  f"{finished - started:.0f} s; wrote {out}")
    if "text" in report:
        console.print(report["text"], markup=False)
    if not report["exact"]:
        raise RuntimeError("The accelerator's tokens differ from the golden model's")
