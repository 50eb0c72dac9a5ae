"""Train ``tiny``: a byte-level BitNet b1.58 model that ships in the package.

Run from the repository root::

    python benchmarks/train_tiny.py [--steps N] [--seed S] [--out PATH] [--check]

What it trains
    A two-layer model with exactly the Hugging Face ``transformers`` BitNet architecture
    (``models/bitnet/modeling_bitnet.py``, shaped like microsoft/bitnet-b1.58-2B-4T):
    hidden 256, 4 query heads sharing 2 KV heads (GQA, head_dim 64), FFN 768 with ``relu2``
    gating, ``attn_sub_norm`` / ``ffn_sub_norm``, RoPE (``rotate_half``, theta 500000),
    RMSNorm eps 1e-5, tied embeddings and a 256-entry byte vocabulary (token id = byte
    value), context 256. Every projection is a BitLinear layer: int8 absmax activations per
    token and absmean ternary weights per tensor. Training is quantisation-aware: the
    forward pass uses the quantised activations and weights, the backward pass treats both
    roundings as the identity (straight-through estimator). The model, its hand-written
    backward pass and AdamW (linear warm-up, cosine decay, global-norm clipping) are plain
    numpy in float32.

On what
    ``benchmarks/data/tinyshakespeare.txt``: tinyshakespeare (1,115,394 bytes of plays by
    William Shakespeare; the works are in the public domain), copied unchanged from
    ``data/tinyshakespeare/input.txt`` of the GitHub repository karpathy/char-rnn
    (commit 6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e; sha256 86c4e6aa...c565ed). The
    first 95 % of the bytes are for training, the last 5 % are held out for validation.

Output
    ``ternforge/data/tiny.safetensors`` (or ``--out``) in the packed ternary form that
    microsoft/bitnet-b1.58-2B-4T ships: every projection ``<name>.weight`` is uint8 with
    four 2-bit codes (ternary + 1) per byte, packed along the output dimension as in
    ``transformers.integrations.bitnet.pack_weights``, with ``<name>.weight_scale`` =
    mean(|W|) in bfloat16 (dequantised weight = ternary * weight_scale); embeddings and
    norm weights are bfloat16; there is no ``lm_head`` (tied). Next to it ``tiny.json``
    records the text's provenance, the step count, the losses, the wall time and a greedy
    sample. The final validation loss and the sample are computed from the *saved* file
    (bf16 norms, embeddings and scales, ternary codes), not from the float latent weights.

How long it takes
    With the default 3000 steps of 8 x 256 bytes (6.1 M tokens, about 5.8 passes over the
    training text) about 20 minutes (1212 s) on one core of a shared 2-core x86 machine at
    about 5,100 tokens/s, plus under a minute for the final evaluation and sample; BLAS runs
    on one thread unless ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` say otherwise. With
    seed 0 it reaches a training loss of 1.33 and a validation loss of 1.60 nats/byte; its
    greedy continuation of ``"ROMEO:\\n"`` is English words in verse-like lines that soon loop
    ("That should see the sea that should see the sea"). ``--check`` (a
    numerical gradient check of the backward pass on a small random float64 instance with
    quantisation switched off, plus packing and quantisation self-tests) takes a few
    seconds.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEXT_PATH = ROOT / "benchmarks" / "data" / "tinyshakespeare.txt"
DEFAULT_OUT = ROOT / "ternforge" / "data" / "tiny.safetensors"
TEXT_SOURCE = (
    "tinyshakespeare: github.com/karpathy/char-rnn data/tinyshakespeare/input.txt "
    "(commit 6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e), shipped as "
    "benchmarks/data/tinyshakespeare.txt"
)
TEXT_LICENCE = (
    "public domain: plays by William Shakespeare (1564-1616); the file is copied unchanged "
    "from the char-rnn repository"
)
PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


@dataclass(frozen=True)
class Config:
    hidden: int = 256
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 64
    intermediate: int = 768
    vocab: int = 256
    max_context: int = 256
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0


# --------------------------------------------------------------------------- layers
# Each layer has ``*_forward`` returning (output, cache) and ``*_backward`` taking the
# output gradient and the cache and returning the input gradient (and parameter gradients).


def rmsnorm_forward(x, w, eps):
    r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    xhat = x * r
    return xhat * w, (xhat, r, w)


def rmsnorm_backward(dy, cache):
    xhat, r, w = cache
    dw = np.sum(dy * xhat, axis=tuple(range(dy.ndim - 1)))
    dxhat = dy * w
    dx = r * (dxhat - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True))
    return dx, dw


def quantize_weight(w):
    """Absmean ternary weight: returns (codes in {-1, 0, 1} as w.dtype, scale = mean |w|)."""
    scale = max(float(np.mean(np.abs(w))), 1e-5)
    codes = np.clip(np.round(w * (1.0 / scale)), -1, 1).astype(w.dtype)
    return codes, scale


def quantize_activation(x):
    """Absmax int8 activations per token: returns (integer-valued x_q, s_x [..., 1])."""
    s = 127.0 / np.maximum(np.max(np.abs(x), axis=-1, keepdims=True), 1e-5)
    xq = np.clip(np.round(x * s), -128, 127)
    return xq, s


def bitlinear_forward(x, codes, scale, quant):
    """y = (x_q @ W_q^T) / (s_x * s_w) with s_w = 1 / scale; ``quant=False`` gives x @ W^T."""
    if quant:
        xq, s = quantize_activation(x)
        y = (xq @ codes.T) * (scale / s)
        x_eff = xq / s
    else:
        y = (x @ codes.T) * scale
        x_eff = x
    return y, (x_eff, codes, scale)


def bitlinear_backward(dy, cache):
    """Straight-through: gradients as if x_eff and codes * scale were x and W."""
    x_eff, codes, scale = cache
    dx = (dy @ codes) * scale
    dw = dy.reshape(-1, dy.shape[-1]).T @ x_eff.reshape(-1, x_eff.shape[-1])
    return dx, dw


def rope_tables(cfg, t, dtype):
    inv_freq = 1.0 / cfg.rope_theta ** (np.arange(0, cfg.head_dim, 2, dtype=np.float64)
                                        / cfg.head_dim)
    freqs = np.outer(np.arange(t, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb).astype(dtype), np.sin(emb).astype(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def rotate_half_backward(g):
    h = g.shape[-1] // 2
    return np.concatenate([g[..., h:], -g[..., :h]], axis=-1)


def rope_forward(x, cos, sin):
    return x * cos + rotate_half(x) * sin


def rope_backward(dy, cos, sin):
    return dy * cos + rotate_half_backward(dy * sin)


def attention_forward(q, k, v, groups):
    """Causal softmax attention with grouped KV heads.

    q [B, H, T, D]; k, v [B, KV, T, D]; query head h uses KV head h // groups. The ``groups``
    query heads of one KV head are stacked along the time axis ([B, KV, groups * T, D]) so
    that every product is one contiguous batched GEMM per KV head.
    """
    b, h, t, d = q.shape
    qg = np.ascontiguousarray(q).reshape(b, h // groups, groups * t, d)
    scale = 1.0 / math.sqrt(d)
    s = (qg @ np.ascontiguousarray(k.swapaxes(-1, -2))) * scale
    s = np.where(np.tile(np.tri(t, dtype=bool), (groups, 1)), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    out = (p @ v).reshape(b, h, t, d)
    return out, (qg, k, v, p, scale, q.shape)


def attention_backward(dout, cache):
    qg, k, v, p, scale, shape = cache
    dout = np.ascontiguousarray(dout).reshape(qg.shape)
    pt = np.ascontiguousarray(p.swapaxes(-1, -2))
    dv = pt @ dout
    dp = dout @ np.ascontiguousarray(v.swapaxes(-1, -2))
    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True)) * scale
    dq = (ds @ k).reshape(shape)
    dk = np.ascontiguousarray(ds.swapaxes(-1, -2)) @ qg
    return dq, dk, dv


def self_attn_forward(x, lw, p, cfg, rope, quant):
    """Projections, RoPE, GQA attention, attn_sub_norm and o_proj; x [B, T, hidden]."""
    b, t, _ = x.shape
    cos, sin = rope
    q, cq = bitlinear_forward(x, *lw["self_attn.q_proj"], quant)
    k, ck = bitlinear_forward(x, *lw["self_attn.k_proj"], quant)
    v, cv = bitlinear_forward(x, *lw["self_attn.v_proj"], quant)
    q = q.reshape(b, t, cfg.heads, cfg.head_dim).transpose(0, 2, 1, 3)
    k = k.reshape(b, t, cfg.kv_heads, cfg.head_dim).transpose(0, 2, 1, 3)
    v = v.reshape(b, t, cfg.kv_heads, cfg.head_dim).transpose(0, 2, 1, 3)
    q, k = rope_forward(q, cos, sin), rope_forward(k, cos, sin)
    a, ca = attention_forward(q, k, v, cfg.heads // cfg.kv_heads)
    a = a.transpose(0, 2, 1, 3).reshape(b, t, cfg.heads * cfg.head_dim)
    a, cn = rmsnorm_forward(a, p["self_attn.attn_sub_norm.weight"], cfg.rms_norm_eps)
    y, co = bitlinear_forward(a, *lw["self_attn.o_proj"], quant)
    return y, (cq, ck, cv, ca, cn, co, rope, (b, t))


def self_attn_backward(dy, cache, cfg):
    cq, ck, cv, ca, cn, co, (cos, sin), (b, t) = cache
    g = {}
    da, g["self_attn.o_proj"] = bitlinear_backward(dy, co)
    da, g["self_attn.attn_sub_norm.weight"] = rmsnorm_backward(da, cn)
    da = da.reshape(b, t, cfg.heads, cfg.head_dim).transpose(0, 2, 1, 3)
    dq, dk, dv = attention_backward(da, ca)
    dq, dk = rope_backward(dq, cos, sin), rope_backward(dk, cos, sin)
    dq = dq.transpose(0, 2, 1, 3).reshape(b, t, -1)
    dk = dk.transpose(0, 2, 1, 3).reshape(b, t, -1)
    dv = dv.transpose(0, 2, 1, 3).reshape(b, t, -1)
    dx, g["self_attn.q_proj"] = bitlinear_backward(dq, cq)
    dxk, g["self_attn.k_proj"] = bitlinear_backward(dk, ck)
    dxv, g["self_attn.v_proj"] = bitlinear_backward(dv, cv)
    return dx + dxk + dxv, g


def mlp_forward(x, lw, p, cfg, quant):
    """down_proj(ffn_sub_norm(relu(gate_proj(x))**2 * up_proj(x)))."""
    gt, cg = bitlinear_forward(x, *lw["mlp.gate_proj"], quant)
    up, cu = bitlinear_forward(x, *lw["mlp.up_proj"], quant)
    r = np.maximum(gt, 0.0)
    act = r * r
    m, cn = rmsnorm_forward(act * up, p["mlp.ffn_sub_norm.weight"], cfg.rms_norm_eps)
    y, cd = bitlinear_forward(m, *lw["mlp.down_proj"], quant)
    return y, (cg, cu, r, act, up, cn, cd)


def mlp_backward(dy, cache):
    cg, cu, r, act, up, cn, cd = cache
    g = {}
    dm, g["mlp.down_proj"] = bitlinear_backward(dy, cd)
    dm, g["mlp.ffn_sub_norm.weight"] = rmsnorm_backward(dm, cn)
    dgt = dm * up * 2.0 * r
    dup = dm * act
    dx, g["mlp.gate_proj"] = bitlinear_backward(dgt, cg)
    dxu, g["mlp.up_proj"] = bitlinear_backward(dup, cu)
    return dx + dxu, g


def decoder_layer_forward(h, lw, p, cfg, rope, quant):
    x, cn1 = rmsnorm_forward(h, p["input_layernorm.weight"], cfg.rms_norm_eps)
    a, ca = self_attn_forward(x, lw, p, cfg, rope, quant)
    h = h + a
    x, cn2 = rmsnorm_forward(h, p["post_attention_layernorm.weight"], cfg.rms_norm_eps)
    m, cm = mlp_forward(x, lw, p, cfg, quant)
    return h + m, (cn1, ca, cn2, cm)


def decoder_layer_backward(dh, cache, cfg):
    cn1, ca, cn2, cm = cache
    dx, g = mlp_backward(dh, cm)
    dx, g["post_attention_layernorm.weight"] = rmsnorm_backward(dx, cn2)
    dh = dh + dx
    dx, ga = self_attn_backward(dh, ca, cfg)
    g.update(ga)
    dx, g["input_layernorm.weight"] = rmsnorm_backward(dx, cn1)
    return dh + dx, g


# --------------------------------------------------------------------------- model
# ``params`` maps Hugging Face names to float arrays (the latent weights in training).
# ``weights`` maps each projection name to (codes, scale) as used by bitlinear_forward.


def layer_prefix(i):
    return f"model.layers.{i}."


def init_params(cfg, rng, dtype=np.float32, std=0.02):
    shapes = {"self_attn.q_proj": (cfg.heads * cfg.head_dim, cfg.hidden),
              "self_attn.k_proj": (cfg.kv_heads * cfg.head_dim, cfg.hidden),
              "self_attn.v_proj": (cfg.kv_heads * cfg.head_dim, cfg.hidden),
              "self_attn.o_proj": (cfg.hidden, cfg.heads * cfg.head_dim),
              "mlp.gate_proj": (cfg.intermediate, cfg.hidden),
              "mlp.up_proj": (cfg.intermediate, cfg.hidden),
              "mlp.down_proj": (cfg.hidden, cfg.intermediate)}
    norms = {"input_layernorm.weight": cfg.hidden, "post_attention_layernorm.weight": cfg.hidden,
             "self_attn.attn_sub_norm.weight": cfg.heads * cfg.head_dim,
             "mlp.ffn_sub_norm.weight": cfg.intermediate}
    p = {"model.embed_tokens.weight": (rng.standard_normal((cfg.vocab, cfg.hidden)) * std)}
    for i in range(cfg.layers):
        for name, shape in shapes.items():
            p[layer_prefix(i) + name + ".weight"] = rng.standard_normal(shape) * std
        for name, n in norms.items():
            p[layer_prefix(i) + name] = np.ones(n)
    p["model.norm.weight"] = np.ones(cfg.hidden)
    return {k: v.astype(dtype) for k, v in p.items()}


def quantized_weights(params, cfg, quant):
    """(codes, scale) of every projection: absmean ternary if ``quant``, else (W, 1)."""
    w = {}
    for i in range(cfg.layers):
        for name in PROJECTIONS:
            key = layer_prefix(i) + name
            wt = params[key + ".weight"]
            w[key] = quantize_weight(wt) if quant else (wt, 1.0)
    return w


def layer_views(params, weights, i):
    pre = layer_prefix(i)
    n = len(pre)
    lp = {k[n:]: v for k, v in params.items() if k.startswith(pre)}
    lw = {k[n:]: v for k, v in weights.items() if k.startswith(pre)}
    return lw, lp


def model_forward(ids, params, weights, cfg, quant):
    """Logits [B, T, vocab] for byte ids [B, T]."""
    t = ids.shape[1]
    emb = params["model.embed_tokens.weight"]
    h = emb[ids]
    rope = rope_tables(cfg, t, h.dtype)
    caches = []
    for i in range(cfg.layers):
        lw, lp = layer_views(params, weights, i)
        h, c = decoder_layer_forward(h, lw, lp, cfg, rope, quant)
        caches.append(c)
    hn, cn = rmsnorm_forward(h, params["model.norm.weight"], cfg.rms_norm_eps)
    logits = hn @ emb.T
    return logits, (ids, caches, cn, hn)


def cross_entropy(logits, targets):
    """Mean cross entropy in nats and its gradient with respect to the logits."""
    z = logits - logits.max(axis=-1, keepdims=True)
    lse = np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    logp = z - lse
    n = targets.size
    flat = logp.reshape(-1, logp.shape[-1])
    idx = np.arange(n)
    loss = -float(np.mean(flat[idx, targets.reshape(-1)]))
    dlogits = np.exp(flat)
    dlogits[idx, targets.reshape(-1)] -= 1.0
    dlogits /= n
    return loss, dlogits.reshape(logits.shape)


def model_backward(dlogits, cache, params, cfg):
    """Gradients of every latent parameter (straight-through for the projections)."""
    ids, caches, cn, hn = cache
    emb = params["model.embed_tokens.weight"]
    grads = {}
    d_emb = dlogits.reshape(-1, cfg.vocab).T @ hn.reshape(-1, cfg.hidden)
    dh, grads["model.norm.weight"] = rmsnorm_backward(dlogits @ emb, cn)
    for i in reversed(range(cfg.layers)):
        dh, g = decoder_layer_backward(dh, caches[i], cfg)
        pre = layer_prefix(i)
        for k, v in g.items():
            grads[pre + k + (".weight" if k in PROJECTIONS else "")] = v
    np.add.at(d_emb, ids.reshape(-1), dh.reshape(-1, cfg.hidden))
    grads["model.embed_tokens.weight"] = d_emb
    return grads


def loss_and_grads(ids, targets, params, cfg, quant=True):
    weights = quantized_weights(params, cfg, quant)
    logits, cache = model_forward(ids, params, weights, cfg, quant)
    loss, dlogits = cross_entropy(logits, targets)
    return loss, model_backward(dlogits, cache, params, cfg)


# --------------------------------------------------------------------------- optimiser


class AdamW:
    def __init__(self, params, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0):
        self.b1, self.b2 = betas
        self.eps, self.wd = eps, weight_decay
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params, grads, lr):
        self.t += 1
        c1, c2 = 1.0 - self.b1 ** self.t, 1.0 - self.b2 ** self.t
        for k, g in grads.items():
            m, v, p = self.m[k], self.v[k], params[k]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            if self.wd and p.ndim == 2 and k != "model.embed_tokens.weight":
                p -= (lr * self.wd) * p
            p -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def clip_grads(grads, max_norm):
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    if norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    return norm


def learning_rate(step, steps, peak, warmup, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return peak * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac)))


# --------------------------------------------------------------------------- packed file


def pack_ternary(codes):
    """transformers ``pack_weights``: W [out, in] in {-1,0,1} -> uint8 [out // 4, in]."""
    out = codes.shape[0]
    assert out % 4 == 0
    r = out // 4
    c = (codes.astype(np.int16) + 1).astype(np.uint8)
    packed = np.zeros((r, codes.shape[1]), dtype=np.uint8)
    for i in range(4):
        packed |= c[i * r:(i + 1) * r] << (2 * i)
    return packed


def unpack_ternary(packed):
    """Inverse of :func:`pack_ternary`: uint8 [R, in] -> int8 [4R, in] in {-1, 0, 1}."""
    return np.concatenate([((packed >> (2 * i)) & 3).astype(np.int8) - 1 for i in range(4)])


def export_tensors(params, cfg):
    """The checkpoint dict: packed uint8 projections, bf16 scales, norms and embeddings."""
    bf16 = ml_dtypes.bfloat16
    out = {}
    for k, v in params.items():
        if k[:-len(".weight")].split(".", 3)[-1] in PROJECTIONS:
            codes, scale = quantize_weight(v.astype(np.float32))
            out[k] = pack_ternary(codes)
            out[k + "_scale"] = np.array([scale], dtype=np.float32).astype(bf16)
        else:
            out[k] = v.astype(np.float32).astype(bf16)
    return out


def load_tensors(tensors, cfg):
    """(params, weights) for model_forward from a checkpoint dict, exactly as saved."""
    params, weights = {}, {}
    for k, v in tensors.items():
        if k.endswith("_scale"):
            continue
        if v.dtype == np.uint8:
            codes = unpack_ternary(v).astype(np.float32)
            scale = float(tensors[k + "_scale"].astype(np.float32)[0])
            weights[k[:-len(".weight")]] = (codes, scale)
        else:
            params[k] = v.astype(np.float32)
    return params, weights


# --------------------------------------------------------------------------- evaluation


def evaluate(data, params, weights, cfg, seq=256, batch=16):
    """Mean next-byte cross entropy over non-overlapping windows of ``data``."""
    n = (len(data) - 1) // seq
    x = data[:n * seq].reshape(n, seq)
    y = data[1:n * seq + 1].reshape(n, seq)
    total = 0.0
    for s in range(0, n, batch):
        logits, _ = model_forward(x[s:s + batch], params, weights, cfg, True)
        loss, _ = cross_entropy(logits, y[s:s + batch])
        total += loss * x[s:s + batch].size
    return total / (n * seq)


def greedy(prompt, params, weights, cfg, length=200):
    ids = list(prompt.encode())
    for _ in range(length):
        ctx = np.array([ids[-cfg.max_context:]], dtype=np.int64)
        logits, _ = model_forward(ctx, params, weights, cfg, True)
        ids.append(int(np.argmax(logits[0, -1])))
    return bytes(ids[len(prompt.encode()):]).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- check mode


def gradient_check(seed=0):
    """Backward pass against central differences (float64, no quantisation)."""
    cfg = Config(hidden=16, layers=2, heads=4, kv_heads=2, head_dim=4, intermediate=24,
                 vocab=32, max_context=8, rope_theta=10.0)
    rng = np.random.default_rng(seed)
    params = init_params(cfg, rng, np.float64, std=0.3)
    for k in params:
        if params[k].ndim == 1:
            params[k] += rng.standard_normal(params[k].shape) * 0.2
    ids = rng.integers(0, cfg.vocab, (2, 7))
    targets = rng.integers(0, cfg.vocab, (2, 7))

    def loss_only():
        w = quantized_weights(params, cfg, False)
        return cross_entropy(model_forward(ids, params, w, cfg, False)[0], targets)[0]

    _, grads = loss_and_grads(ids, targets, params, cfg, quant=False)
    worst = 0.0
    for k, p in params.items():
        flat = p.reshape(-1)
        idx = rng.choice(flat.size, min(6, flat.size), replace=False)
        num = np.empty(len(idx))
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + 1e-5
            lp = loss_only()
            flat[i] = old - 1e-5
            lm = loss_only()
            flat[i] = old
            num[j] = (lp - lm) / 2e-5
        ana = grads[k].reshape(-1)[idx]
        err = np.max(np.abs(num - ana)) / max(1e-8, np.max(np.abs(num)) + np.max(np.abs(ana)))
        worst = max(worst, err)
        print(f"  {k:45s} rel err {err:.2e}")
    print(f"worst relative gradient error {worst:.2e}")
    assert worst < 1e-6, worst


def self_tests(seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, 2, (12, 5)).astype(np.int8)
    packed = pack_ternary(codes)
    assert packed.shape == (3, 5) and packed.dtype == np.uint8
    assert np.array_equal(unpack_ternary(packed), codes)
    # packed[p, k] holds row i*R + p in bits 2i..2i+1
    assert packed[1, 2] == sum((int(codes[i * 3 + 1, 2]) + 1) << (2 * i) for i in range(4))
    # fake-quant BitLinear equals the integer formulation (x_q @ W_q^T) / (s_x * s_w)
    x = rng.standard_normal((3, 16)).astype(np.float32)
    w = (rng.standard_normal((8, 16)) * 0.02).astype(np.float32)
    c, scale = quantize_weight(w)
    y, _ = bitlinear_forward(x, c, scale, True)
    s_x = 127 / np.maximum(np.abs(x).max(-1, keepdims=True), 1e-5)
    xq = np.clip(np.round(x * s_x), -128, 127)
    s_w = 1 / max(np.abs(w).mean(), 1e-5)
    wq = np.clip(np.round(w * s_w), -1, 1)
    assert np.allclose(y, (xq @ wq.T) / (s_x * s_w), rtol=1e-5, atol=1e-6)
    print("packing and quantisation self-tests passed")


# --------------------------------------------------------------------------- training


def train(args):
    import safetensors.numpy

    cfg = Config()
    data = np.frombuffer(TEXT_PATH.read_bytes(), dtype=np.uint8).astype(np.int64)
    split = int(len(data) * 0.95)
    train_data, val_data = data[:split], data[split:]
    rng = np.random.default_rng(args.seed)
    params = init_params(cfg, rng)
    opt = AdamW(params, weight_decay=args.weight_decay)
    seq, batch = args.seq, args.batch
    print(f"{len(train_data)} training bytes, {len(val_data)} validation bytes; "
          f"{sum(v.size for v in params.values())} parameters; "
          f"{args.steps} steps of {batch} x {seq}")
    t0 = time.perf_counter()
    recent = []
    for step in range(args.steps):
        starts = rng.integers(0, len(train_data) - seq - 1, batch)
        chunk = np.stack([train_data[s:s + seq + 1] for s in starts])
        lr = learning_rate(step, args.steps, args.lr, args.warmup)
        loss, grads = loss_and_grads(chunk[:, :-1], chunk[:, 1:], params, cfg)
        gnorm = clip_grads(grads, 1.0)
        opt.step(params, grads, lr)
        recent = (recent + [loss])[-50:]
        if step % args.log_every == 0 or step == args.steps - 1:
            dt = time.perf_counter() - t0
            print(f"step {step:5d}  loss {loss:.4f}  avg50 {np.mean(recent):.4f}  "
                  f"lr {lr:.2e}  |g| {gnorm:.2f}  {(step + 1) * batch * seq / dt:7.0f} tok/s  "
                  f"{dt:6.0f} s", flush=True)
    seconds = time.perf_counter() - t0
    train_loss = float(np.mean(recent))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    safetensors.numpy.save_file(export_tensors(params, cfg), str(out), metadata={"format": "pt"})
    out.chmod(0o644)
    # Evaluate what was saved: bf16 embeddings/norms/scales and the ternary codes.
    p_saved, w_saved = load_tensors(safetensors.numpy.load_file(str(out)), cfg)
    val_loss = evaluate(val_data, p_saved, w_saved, cfg)
    val_latent = evaluate(val_data, params, quantized_weights(params, cfg, True), cfg)
    sample = greedy(args.prompt, p_saved, w_saved, cfg)
    print(f"trained {args.steps} steps in {seconds:.0f} s; train loss (last 50) {train_loss:.4f}")
    print(f"validation loss of the saved file {val_loss:.4f} nats/byte "
          f"(float32 latent model, quantised: {val_latent:.4f})")
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    print("greedy sample:\n" + args.prompt + sample)
    facts = {"text": TEXT_SOURCE, "licence": TEXT_LICENCE, "steps": args.steps,
             "train_loss": round(train_loss, 4), "val_loss": round(val_loss, 4),
             "seconds": round(seconds, 1), "sample_prompt": args.prompt,
             "greedy_sample": sample, "val_loss_latent": round(val_latent, 4),
             "seed": args.seed, "batch": batch, "seq_len": seq, "lr": args.lr,
             "warmup": args.warmup, "weight_decay": args.weight_decay,
             "train_bytes": int(len(train_data)), "val_bytes": int(len(val_data)),
             "config": asdict(cfg)}
    out.with_suffix(".json").write_text(json.dumps(facts, indent=2) + "\n")
    print(f"wrote {out.with_suffix('.json')}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--check", action="store_true",
                    help="gradient check and self-tests only, no training")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--prompt", default="ROMEO:\n")
    ap.add_argument("--log-every", type=int, default=50)
    args = ap.parse_args(argv)
    if args.check:
        self_tests(args.seed)
        gradient_check(args.seed)
        return
    train(args)


if __name__ == "__main__":
    main()
