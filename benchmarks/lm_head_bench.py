"""The accuracy of the host's LM head in each format (``[accelerator] lm_head``): logits of
bfloat16 and int8 (W8A8) matrices against the exact float32 matrix in float64.

Two cases, each over the final hidden states of a 256-token prefill:

- ``tiny``: the shipped trained tiny model (``benchmarks/train_tiny.py``) on the start of
  ``benchmarks/data/tinyshakespeare.txt``, its hidden states from the golden model (the
  accelerator's arithmetic, bit for bit);
- ``0.7b-shaped, synthetic``: a random matrix of BitNet b1.58 0.7B's LM head's shape (32,002 x
  1,536, normal weights of 0.02 standard deviation) against unit-RMS random hidden states. No
  real 0.7B weights are at hand: this measures the quantisers on that shape, not the model.

Figures per case and format: ``top1_agreement`` (the argmax equals the exact one's),
``top5_overlap`` (the five best tokens shared, on average), ``max_abs_error`` and
``rel_rms_error`` (of the logits), ``mean_kl`` (of the exact softmax against the format's, in
nats). Run: ``python benchmarks/lm_head_bench.py [--json FILE]``; results in
``benchmarks/results/lm_head.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ternforge.hdl.accelerator.model import preset  # noqa: E402
from ternforge.sim.checkpoint import load_checkpoint, shipped_weights  # noqa: E402
from ternforge.sim.models import fp as fm  # noqa: E402
from ternforge.sim.models.bitnet import (HEAD_FORMATS, Golden, head_logits,  # noqa: E402
                                         logit_errors)

TOKENS = 256
TEXT = Path(__file__).parent / "data" / "tinyshakespeare.txt"


def compare(values, head) -> dict:
    """Each format's logits of ``values`` against the exact float32 matrix's."""
    exact = head_logits(values, head, "float32")
    return {fmt: logit_errors(head_logits(values, head, fmt), exact)
            for fmt in HEAD_FORMATS[1:]}


def tiny_case() -> dict:
    weights = load_checkpoint(shipped_weights("tiny"), preset("tiny"))
    ids = np.frombuffer(TEXT.read_bytes()[:TOKENS], dtype=np.uint8)
    hidden = Golden(weights).step(ids)  # float32 bit patterns, one row a token
    values = fm.from_bits(hidden, "float32").astype(np.float64)
    return compare(values, weights.head)


def synthetic_case(seed: int = 0) -> dict:
    model = preset("bitnet-0.7b")
    rng = np.random.default_rng(seed)
    head = (0.02 * rng.standard_normal((model.vocab, model.hidden))).astype(np.float32)
    values = rng.standard_normal((TOKENS, model.hidden))
    return compare(values, head)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).parent / "results" / "lm_head.json")
    args = parser.parse_args(argv)
    results = {"tokens": TOKENS, "cases": {"tiny": tiny_case(),
                                           "0.7b-shaped, synthetic": synthetic_case()}}
    for case, formats in results["cases"].items():
        for fmt, figures in formats.items():
            print(f"{case}, {fmt}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
