"""A whole BitNet b1.58 model: its weights, the float64 reference and the golden model.

- :class:`ModelWeights` holds a model's parameters as the accelerator uses them: each
  projection's ternary codes and per-tensor scale (``W ~ codes * scale``), the RMSNorm gains,
  the embedding and the LM head.
- :class:`Reference` is the network of transformers' ``modeling_bitnet.py`` in float64 (the
  quantisation of every linear layer included: per-token absmax int8 activations, ternary
  weights), the yardstick the golden model's error is measured against.
- :class:`Golden` is the forward pass in the hardware's order of operations, bit for bit: the
  element-wise work of every layer in one floating-point format
  (:func:`~ternforge.sim.models.eltwise.bitnet_layer`: RMSNorm, int8 quantisation, exact
  ternary matmuls, dequantisation, RoPE, the gated activation, sub-norms, residuals), the
  attention units' tiled online softmax over a KV cache
  (:func:`~ternforge.sim.models.attention.multi_head`), the final norm; the embedding lookup
  and the LM head run on the host, in float64 from the hidden state's values, as the
  accelerator's runtime does.

Both run a prefill of a prompt (positions ``0 .. T-1``) and then decode steps, one token at a
time, keeping a KV cache; :func:`greedy` generates with either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...hdl.accelerator.model import PROJECTIONS, Activation, ModelConfig
from ...hdl.eltwise.parameters import RmsNormParameters
from . import fp as fm
from .attention import multi_head
from .eltwise import BitNetLayer, bitnet_layer, rmsnorm

__all__ = ["NORMS", "Projection", "LayerWeights", "ModelWeights", "quantise_weights",
           "quantise_activations", "random_weights", "Reference", "Golden", "HEAD_FORMATS",
           "check_head_format", "head_bytes", "head_logits", "lm_head", "KV_FORMATS",
           "kv_rounded", "logit_errors",
           "layer_parameters", "greedy"]

#: a layer's RMSNorm gains, in the order a layer applies them
NORMS = ("input", "attention_sub", "post_attention", "ffn_sub")

#: the smallest absmax and absmean the quantisers divide by (as the reference's ``clamp``)
FLOOR = 1e-5

#: the formats the host may hold the LM head's matrix in (see :func:`head_logits`)
HEAD_FORMATS = ("float32", "bfloat16", "int8")


@dataclass(frozen=True)
class Projection:
    """One ternary linear layer ``y = x W^T``, ``W ~ codes * scale``.

    Members
    -------
    codes : int8 array ``(out, in)``
        In {-1, 0, 1}.
    scale : float
        The per-tensor factor (``mean |W|`` of the full-precision weights).
    """

    codes: np.ndarray
    scale: float

    def __post_init__(self):
        codes = np.asarray(self.codes)
        # a broadcast array repeats what its axes of stride 0 hold once: those are checked
        distinct = codes[tuple(slice(None) if step else slice(0, 1) for step in codes.strides)]
        if codes.ndim != 2 or not np.isin(distinct, (-1, 0, 1)).all():
            raise ValueError("Projection codes must be a 2-D array in {-1, 0, 1}")
        if not np.isfinite(self.scale) or not self.scale > 0:
            raise ValueError(f"Projection scale must be a positive finite number, not "
                             f"{self.scale!r}")
        object.__setattr__(self, "codes", codes.astype(np.int8, copy=False))
        object.__setattr__(self, "scale", float(self.scale))


def quantise_weights(weights) -> Projection:
    """Ternary codes and scale of full-precision ``weights`` (per tensor, absmean):
    ``scale = max(mean |W|, 1e-5)``, ``codes = clip(round(W / scale), -1, 1)``."""
    weights = np.asarray(weights, dtype=np.float64)
    scale = max(float(np.abs(weights).mean()), FLOOR)
    return Projection(np.clip(np.round(weights / scale), -1, 1), scale)


def quantise_activations(x) -> tuple[np.ndarray, np.ndarray]:
    """Per-token absmax int8: ``(codes, s)`` with ``s = 127 / max(max |x|, 1e-5)`` and
    ``codes = clip(round(x * s), -128, 127)`` (so ``x ~ codes / s``)."""
    x = np.asarray(x, dtype=np.float64)
    s = 127 / np.maximum(np.abs(x).max(axis=-1, keepdims=True), FLOOR)
    return np.clip(np.round(x * s), -128, 127), s


#: the formats a KV cache may hold keys and values in (see :func:`kv_rounded`)
KV_FORMATS = ("float32", "float16", "bfloat16", "int8")


def kv_rounded(x, kv_format: str) -> np.ndarray:
    """Keys or values ``x`` (``(..., head_dim)``: a row a token and head) as a KV cache held
    in ``kv_format`` gives them back, in float64: ``float32``, ``float16`` and ``bfloat16``
    each rounded once (ties to even; float16 saturates to infinity past 65,504); ``int8``
    each row absmax-quantised as BitNet's activations (:func:`quantise_activations`: a scale
    a token and head, the codes in [-128, 127])."""
    if kv_format not in KV_FORMATS:
        raise ValueError(f"KV cache format must be one of {', '.join(KV_FORMATS)}, not "
                         f"{kv_format!r}")
    x = np.asarray(x, dtype=np.float64)
    if kv_format == "int8":
        codes, scale = quantise_activations(x)
        return codes / scale
    return fm.from_bits(fm.to_bits(x, kv_format), kv_format).astype(np.float64)


@dataclass(frozen=True)
class LayerWeights:
    """One decoder layer: :data:`~ternforge.hdl.accelerator.model.PROJECTIONS` by name and
    the RMSNorm gains :data:`NORMS` by name (float32)."""

    projections: dict
    norms: dict


@dataclass(frozen=True)
class ModelWeights:
    """A model's parameters, checked against its :class:`ModelConfig`.

    Members
    -------
    config : ModelConfig
    embedding : float32 array ``(vocab, hidden)``
    layers : tuple of LayerWeights
    norm : float32 array ``(hidden,)``
        The final RMSNorm's gain.
    lm_head : float32 array ``(vocab, hidden)`` or None
        None when the embeddings are tied (the head is :attr:`embedding`).
    """

    config: ModelConfig
    embedding: np.ndarray
    layers: tuple
    norm: np.ndarray
    lm_head: np.ndarray | None = None

    def __post_init__(self):
        c = self.config
        _shaped("embedding", self.embedding, (c.vocab, c.hidden))
        _shaped("final norm", self.norm, (c.hidden,))
        if len(self.layers) != c.layers:
            raise ValueError(f"Layers must be {c.layers}, not {len(self.layers)!r}")
        sizes = {"input": c.hidden, "attention_sub": c.hidden, "post_attention": c.hidden,
                 "ffn_sub": c.ffn}
        for i, layer in enumerate(self.layers):
            for name in PROJECTIONS:
                _shaped(f"layer {i} {name}", layer.projections[name].codes,
                        c.projection_shape(name))
            for name in NORMS:
                _shaped(f"layer {i} {name} norm", layer.norms[name], (sizes[name],))
        if (self.lm_head is None) != c.tied_embeddings:
            raise ValueError(f"LM head must be {'absent (tied embeddings)' if c.tied_embeddings else 'given'}")
        if self.lm_head is not None:
            _shaped("LM head", self.lm_head, (c.vocab, c.hidden))

    @property
    def head(self) -> np.ndarray:
        """The LM head's matrix ``(vocab, hidden)``."""
        return self.embedding if self.lm_head is None else self.lm_head


def _shaped(what, array, shape):
    if np.shape(array) != tuple(shape):
        raise ValueError(f"The {what} must have shape {tuple(shape)!r}, not "
                         f"{np.shape(array)!r}")


def random_weights(config: ModelConfig, seed: int = 0) -> ModelWeights:
    """A random model of ``config``'s shape: Gaussian latent weights quantised, gains near
    1, embeddings of unit scale (a stand-in for trained weights in tests)."""
    rng = np.random.default_rng(seed)

    def gain(n):
        return (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    layers = tuple(LayerWeights(
        projections={name: quantise_weights(rng.standard_normal(config.projection_shape(name))
                                            / np.sqrt(config.projection_shape(name)[1]))
                     for name in PROJECTIONS},
        norms={name: gain(config.ffn if name == "ffn_sub" else config.hidden)
               for name in NORMS}) for _ in range(config.layers))
    embedding = rng.standard_normal((config.vocab, config.hidden)).astype(np.float32)
    head = None if config.tied_embeddings else \
        (rng.standard_normal((config.vocab, config.hidden)) / 4).astype(np.float32)
    return ModelWeights(config, embedding, layers, gain(config.hidden), head)


# -- the float64 reference ------------------------------------------------------------------

def _rmsnorm(x, gain, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * gain


def _linear(x, projection: Projection):
    codes, s = quantise_activations(x)
    return codes @ projection.codes.T.astype(np.float64) * projection.scale / s


def _rope(x, positions, theta):
    """Rotate-half RoPE of ``(heads, tokens, D)``: element ``i`` pairs with ``i + D/2``."""
    half = x.shape[-1] // 2
    inverse = theta ** (-np.arange(0, 2 * half, 2, dtype=np.float64) / (2 * half))
    angles = np.asarray(positions, dtype=np.float64)[:, None] * inverse[None, :]
    cos, sin = np.cos(angles), np.sin(angles)
    x0, x1 = x[..., :half], x[..., half:]
    return np.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)


def _activation(kind, gate):
    if kind == Activation.SILU:
        return gate / (1 + np.exp(-gate))
    return np.maximum(gate, 0) ** 2


@dataclass
class Reference:
    """transformers' BitNet forward pass in float64, with a KV cache.

    :meth:`step` runs the next tokens (a prompt, then one token at a time) and returns the
    final hidden state (after the final norm) of each. With ``kv_format`` (one of
    :data:`KV_FORMATS`), the cache holds each key and value as that format gives it back
    (:func:`kv_rounded`), and every token attends to those, its own included.
    """

    weights: ModelWeights
    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)
    kv_format: str | None = None

    @property
    def position(self) -> int:
        """Tokens in the cache."""
        return self.keys[0].shape[1] if self.keys else 0

    def step(self, ids) -> np.ndarray:
        c, w = self.weights.config, self.weights
        ids = np.asarray(ids)
        positions = self.position + np.arange(len(ids))
        h = w.embedding[ids].astype(np.float64)
        for i, layer in enumerate(w.layers):
            p, g = layer.projections, layer.norms
            x = _rmsnorm(h, g["input"], c.norm_eps)
            q, k, v = (_linear(x, p[n]) for n in ("q_proj", "k_proj", "v_proj"))
            q = _rope(q.reshape(len(ids), c.heads, c.head_dim).transpose(1, 0, 2), positions,
                      c.rope_theta)
            k = _rope(k.reshape(len(ids), c.kv_heads, c.head_dim).transpose(1, 0, 2),
                      positions, c.rope_theta)
            v = v.reshape(len(ids), c.kv_heads, c.head_dim).transpose(1, 0, 2)
            if self.kv_format is not None:
                k, v = kv_rounded(k, self.kv_format), kv_rounded(v, self.kv_format)
            if i == len(self.keys):
                self.keys.append(k)
                self.values.append(v)
            else:
                self.keys[i] = np.concatenate([self.keys[i], k], axis=1)
                self.values[i] = np.concatenate([self.values[i], v], axis=1)
            keys = np.repeat(self.keys[i], c.group, 0)
            values = np.repeat(self.values[i], c.group, 0)
            logits = q @ keys.transpose(0, 2, 1) / np.sqrt(c.head_dim)
            visible = np.arange(keys.shape[1])[None, :] <= positions[:, None]
            logits = np.where(visible, logits, -np.inf)
            weights = np.exp(logits - logits.max(-1, keepdims=True))
            o = (weights / weights.sum(-1, keepdims=True)) @ values
            o = o.transpose(1, 0, 2).reshape(len(ids), c.hidden)
            h = h + _linear(_rmsnorm(o, g["attention_sub"], c.norm_eps), p["o_proj"])
            x = _rmsnorm(h, g["post_attention"], c.norm_eps)
            m = _activation(c.activation, _linear(x, p["gate_proj"])) * _linear(x, p["up_proj"])
            h = h + _linear(_rmsnorm(m, g["ffn_sub"], c.norm_eps), p["down_proj"])
        return _rmsnorm(h, w.norm, c.norm_eps)

    def logits(self, hidden) -> np.ndarray:
        """The LM head on final hidden states."""
        return np.asarray(hidden, dtype=np.float64) @ self.weights.head.T.astype(np.float64)


# -- the golden model -------------------------------------------------------------------------

@dataclass
class Golden:
    """The forward pass in the hardware's order, bit for bit (see the module documentation).

    Parameters
    ----------
    weights : ModelWeights
    fmt : str
        The floating-point format of the element-wise work, the attention and the KV cache.
    cols : int
        The attention units' keys per tile (the only tiling the bits depend on).
    vector_lanes : int
        The vector unit's lanes (its RMSNorm keeps seven partial sums of squares a lane:
        the other tiling the bits depend on).
    """

    weights: ModelWeights
    fmt: str = "float32"
    cols: int = 8
    vector_lanes: int = 1
    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)

    def __post_init__(self):
        c = self.weights.config
        self.lanes = RmsNormParameters(format=self.fmt, max_length=max(c.ffn, c.hidden),
                                       lanes=self.vector_lanes).partial_sums
        self._layers = layer_parameters(self.weights, self.fmt)
        self._norm = fm.to_bits(np.asarray(self.weights.norm, dtype=np.float64), self.fmt)

    @property
    def position(self) -> int:
        """Tokens in the cache."""
        return self.keys[0].shape[1] if self.keys else 0

    def embed(self, ids) -> np.ndarray:
        """The host's embedding lookup: rows of the embedding as bit patterns."""
        return fm.to_bits(self.weights.embedding[np.asarray(ids)].astype(np.float64), self.fmt)

    def step(self, ids) -> np.ndarray:
        """Run the next tokens (the prompt from an empty cache, then one at a time); return
        each one's final hidden state (after the final norm), bit patterns ``(T, hidden)``."""
        c = self.weights.config
        ids = np.asarray(ids)
        if self.position and len(ids) != 1:
            raise ValueError(f"Decode steps must be one token, not {len(ids)!r}")
        positions = self.position + np.arange(len(ids))
        hidden = self.embed(ids)
        for i, layer in enumerate(self._layers):
            hidden = bitnet_layer(hidden, layer, positions=positions,
                                  attention=lambda q, k, v, i=i: self._attend(i, q, k, v),
                                  lanes=self.lanes, fmt=self.fmt)
        return rmsnorm(hidden, self._norm, eps=c.norm_eps, lanes=self.lanes, fmt=self.fmt)

    def _attend(self, i, q, k, v):
        """Append the tokens' keys and values to layer ``i``'s cache; their attention."""
        c = self.weights.config
        tokens = q.shape[0]
        heads = lambda x, n: x.reshape(tokens, n, c.head_dim).transpose(1, 0, 2)  # noqa: E731
        k, v = heads(k, c.kv_heads), heads(v, c.kv_heads)
        phase = "decode" if i < len(self.keys) else "prefill"
        if phase == "prefill":
            self.keys.append(k)
            self.values.append(v)
        else:
            self.keys[i] = np.concatenate([self.keys[i], k], axis=1)
            self.values[i] = np.concatenate([self.values[i], v], axis=1)
        o = multi_head(heads(q, c.heads), self.keys[i], self.values[i], phase=phase, rows=8,
                       cols=self.cols, fmt=self.fmt)
        return o.transpose(1, 0, 2).reshape(tokens, c.hidden)

    def logits(self, hidden) -> np.ndarray:
        """The host's LM head (:func:`lm_head`)."""
        return lm_head(hidden, self.weights, self.fmt)


def lm_head(hidden, weights: ModelWeights, fmt: str = "float32",
            head_format: str = "float32") -> np.ndarray:
    """The host's LM head: logits in float64 from final hidden states (bit patterns of
    ``fmt``), the matrix held in ``head_format`` (:func:`head_logits`); the simulated
    runtime's is float32, exact."""
    values = fm.from_bits(np.asarray(hidden), fmt).astype(np.float64)
    return head_logits(values, weights.head, head_format)


def check_head_format(head_format) -> None:
    """Refuse an LM head format not in :data:`HEAD_FORMATS`."""
    if head_format not in HEAD_FORMATS:
        raise ValueError(f"LM head format must be one of {', '.join(HEAD_FORMATS)}, not "
                         f"{head_format!r}")


def head_bytes(config: ModelConfig, head_format: str) -> int:
    """The bytes the host reads of the LM head's matrix for one token's logits, in
    ``head_format`` (int8: a float32 scale a row besides the codes)."""
    check_head_format(head_format)
    size, rows = config.vocab * config.hidden, config.vocab
    return {"float32": 4 * size, "bfloat16": 2 * size, "int8": size + 4 * rows}[head_format]


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def logit_errors(logits, exact) -> dict:
    """How far next-token ``logits`` ``(tokens, vocab)`` are from ``exact``:
    ``top1_agreement`` (the argmax the same), ``top5_overlap`` (of the five best tokens, on
    average), ``max_abs_error`` and ``rel_rms_error`` of the logits, ``mean_kl`` (of the
    exact softmax against theirs, in nats)."""
    logits, exact = (np.asarray(x, dtype=np.float64) for x in (logits, exact))
    log_p = _log_softmax(exact)
    top5, mine = (np.argsort(-x, axis=-1)[:, :5] for x in (exact, logits))
    return {
        "top1_agreement": float((logits.argmax(-1) == exact.argmax(-1)).mean()),
        "top5_overlap": float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5, mine)])),
        "max_abs_error": float(np.abs(logits - exact).max()),
        "rel_rms_error": float(np.sqrt(((logits - exact) ** 2).mean() / (exact ** 2).mean())),
        "mean_kl": float((np.exp(log_p) * (log_p - _log_softmax(logits))).sum(-1).mean()),
    }


def head_logits(values, head, head_format: str = "float32") -> np.ndarray:
    """Logits of float64 hidden ``values`` ``(tokens, hidden)`` against the LM head
    ``head`` ``(vocab, hidden)``, held in ``head_format``:

    - ``float32``: the matrix as it is, in float64 (exact);
    - ``bfloat16``: every weight rounded once to bfloat16 (ties to even), in float64;
    - ``int8``: W8A8 as an ARM core's integer dot products do it: each row of the matrix
      absmax-quantised to int8 with its own scale, each token's values as BitNet's
      activations (:func:`quantise_activations`), the integer products exact, then both
      scales divided out.
    """
    check_head_format(head_format)
    head = np.asarray(head, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if head_format == "float32":
        return values @ head.T
    if head_format == "bfloat16":
        return values @ fm.from_bits(fm.to_bits(head, "bfloat16"), "bfloat16").astype(
            np.float64).T
    codes, row_scales = quantise_activations(head)  # (the same absmax rule, a row each)
    x_codes, x_scales = quantise_activations(values)
    return (x_codes @ codes.T) / (x_scales * row_scales.T)


def layer_parameters(weights: ModelWeights, fmt: str = "float32") -> list:
    """Each layer's parameters as the element-wise layer model (and the accelerator's
    runtime) take them: codes, and scales and gains as bit patterns of ``fmt``."""
    c = weights.config
    bits = lambda x: fm.to_bits(np.asarray(x, dtype=np.float64), fmt)  # noqa: E731
    names = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o",
             "gate_proj": "gate", "up_proj": "up", "down_proj": "down"}
    return [BitNetLayer(
        weights={names[n]: layer.projections[n].codes for n in PROJECTIONS},
        weight_scales={names[n]: bits(layer.projections[n].scale) for n in PROJECTIONS},
        gains={n: bits(layer.norms[n]) for n in NORMS}, heads=c.heads,
        kv_heads=c.kv_heads, activation=str(c.activation), eps=c.norm_eps,
        theta=c.rope_theta) for layer in weights.layers]


def greedy(model, prompt, new_tokens: int) -> tuple[list[int], np.ndarray]:
    """Prefill ``prompt`` on ``model`` (:class:`Reference` or :class:`Golden`, fresh), then
    greedy decode steps; return the ``new_tokens`` generated ids and the final hidden state
    each was chosen from (``(new_tokens, hidden)``)."""
    prompt = [int(token) for token in prompt]
    limit = model.weights.config.max_context
    if not prompt or len(prompt) + new_tokens > limit:
        raise ValueError(f"Prompt and new tokens must be 1 to {limit} (the context), not "
                         f"{len(prompt)} + {new_tokens}")
    hidden = model.step(prompt)[-1:]
    tokens, states = [], []
    for n in range(new_tokens):
        token = int(np.argmax(model.logits(hidden)[-1]))
        tokens.append(token)
        states.append(hidden[-1])
        if n + 1 < new_tokens:  # (the last token's own step is not needed)
            hidden = model.step([token])
    return tokens, np.stack(states) if states else np.zeros((0, 0))


def shaped_weights(config: ModelConfig) -> ModelWeights:
    """A model of ``config``'s shape whose arrays are read-only zeros that take no memory:
    what a layout needs to know of a model too large to hold (see
    :func:`ternforge.sim.runtime.memory_map`)."""
    def zeros(shape, dtype=np.float32):
        return np.broadcast_to(np.zeros((), dtype), shape)

    layers = tuple(LayerWeights(
        projections={name: Projection(zeros(config.projection_shape(name), np.int8), 1.0)
                     for name in PROJECTIONS},
        norms={name: zeros(config.ffn if name == "ffn_sub" else config.hidden)
               for name in NORMS}) for _ in range(config.layers))
    head = None if config.tied_embeddings else zeros((config.vocab, config.hidden))
    return ModelWeights(config, zeros((config.vocab, config.hidden)), layers,
                        zeros(config.hidden), head)
