"""The accuracy of a KV cache held in a narrower format: the whole model in float64 with its
keys and values rounded as each format gives them back, against the same model with an exact
cache.

The accelerator's KV cache is float32 today (its vector and RoPE units write float32); at a
1,024-token context 0.7B's keys and values are 302 MB a token against 141 MB of weights, so
a narrower cache is one of the levers on decode at long contexts. This measures what each
format costs in accuracy before any of it is built:

- ``tiny``: the shipped trained tiny model (``benchmarks/train_tiny.py``) on the start of
  ``benchmarks/data/tinyshakespeare.txt``, :class:`~ternforge.sim.models.bitnet.Reference`
  (transformers' forward pass in float64) with ``kv_format`` each of
  :data:`~ternforge.sim.models.bitnet.KV_FORMATS`, every position's next-token logits
  against the exact cache's (a prefill of the whole text at once is the same as decoding it
  token by token with the text as the tokens: each key and value is rounded alone);
- ``attention, 0.7b-shaped``: one decode step of BitNet b1.58 0.7B's attention (16 heads,
  ``D = 96``) over 1,024 random keys and values shaped like a trained model's (per-channel
  scales of the keys, log-uniform in 0.3 to 3; logits of standard deviation 3), the output
  against the exact cache's; and the same with four outlier key channels ten times larger
  (which set a row's int8 scale). No real 0.7B weights are at hand: this measures the
  formats on that shape, not the model.

Figures: the logits' :func:`~ternforge.sim.models.bitnet.logit_errors` (as
``benchmarks/lm_head_bench.py``'s), and for attention ``max_rel_error`` (each head's largest
error over its largest output, the worst head) and ``rel_rms_error``. Run:
``python benchmarks/kv_cache_bench.py [--json FILE]``; results in
``benchmarks/results/kv_cache.json``.
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
from ternforge.sim.models.attention import reference  # noqa: E402
from ternforge.sim.models.bitnet import (KV_FORMATS, Reference, kv_rounded,  # noqa: E402
                                         logit_errors)

TOKENS = 256
CONTEXT = 1024
#: the standard deviation of the synthetic case's logits (a few units, as a trained model's)
LOGIT_STD = 3.0
TEXT = Path(__file__).parent / "data" / "tinyshakespeare.txt"


def tiny_case() -> dict:
    """Each format's next-token logits over the text against the exact cache's."""
    weights = load_checkpoint(shipped_weights("tiny"), preset("tiny"))
    ids = np.frombuffer(TEXT.read_bytes()[:TOKENS], dtype=np.uint8)
    exact_model = Reference(weights)
    exact = exact_model.logits(exact_model.step(ids))
    result = {}
    for fmt in KV_FORMATS:
        model = Reference(weights, kv_format=fmt)
        result[fmt] = logit_errors(model.logits(model.step(ids)), exact)
    return result


def _attention(q, k, v):
    """Decode attention in float64 (:func:`~ternforge.sim.models.attention.reference`):
    ``q (H, D)`` against ``k, v (H, N, D)``."""
    return reference(q[:, None], k, v, phase="decode")[:, 0]


def attention_case(outliers: int, seed: int = 0) -> dict:
    """Each format's decode attention output against the exact cache's, 0.7B-shaped, with
    ``outliers`` key channels ten times the others; the query scaled so that the logits'
    standard deviation is :data:`LOGIT_STD`."""
    model = preset("bitnet-0.7b")
    rng = np.random.default_rng(seed)
    heads, d = model.heads, model.head_dim
    channel = np.exp(rng.uniform(np.log(0.3), np.log(3.0), (heads, 1, d)))
    channel[:, :, rng.choice(d, outliers, replace=False)] *= 10
    k = rng.standard_normal((heads, CONTEXT, d)) * channel
    v = rng.standard_normal((heads, CONTEXT, d))
    q = rng.standard_normal((heads, d))
    q *= LOGIT_STD / (np.einsum("hd,hnd->hn", q, k) / np.sqrt(d)).std(-1, keepdims=True)
    exact = _attention(q, k, v)
    result = {}
    for fmt in KV_FORMATS:
        o = _attention(q, kv_rounded(k, fmt), kv_rounded(v, fmt))
        error = np.abs(o - exact)
        result[fmt] = {
            "max_rel_error": float((error.max(-1) / np.abs(exact).max(-1)).max()),
            "rel_rms_error": float(np.sqrt((error ** 2).mean() / (exact ** 2).mean())),
        }
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).parent / "results" / "kv_cache.json")
    args = parser.parse_args(argv)
    results = {"tokens": TOKENS, "context": CONTEXT,
               "cases": {"tiny": tiny_case(),
                         "attention, 0.7b-shaped": attention_case(outliers=0),
                         "attention, 0.7b-shaped, 4 outlier key channels":
                             attention_case(outliers=4)}}
    for case, formats in results["cases"].items():
        for fmt, figures in formats.items():
            print(f"{case}, {fmt}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
