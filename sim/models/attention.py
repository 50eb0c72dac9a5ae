"""Golden model of the attention units: causal attention with an online softmax, tiled.

This is the specification the hardware meets bit for bit: every value is a bit pattern of
one floating-point format ``fmt`` (float32 by default; float16 and bfloat16 too), every step
one rounded operation of :mod:`~ternforge.sim.models.fp` (``fma``, ``add``) or
:mod:`~ternforge.sim.models.fp_functions` (``exp``, ``reciprocal``), in the order below.
``mul(a, b)`` means ``fma(a, b, +0)``; ``-x`` flips the sign bit (exact).

Order
-----
Inputs ``q (M, D)``, ``k (N, D)``, ``v (N, D)`` and ``positions (M,)``: query ``i`` is at
position ``positions[i]``, key ``j`` at position ``j``, and key ``j`` is *visible* to query
``i`` iff ``j <= positions[i]``. ``c = 1 / sqrt(D)`` (float64, rounded to ``fmt`` once),
``ONE = 1.0``.

For each query tile (rows ``[i0, i0 + Br)``, the last one partial), per row ``r``:
``m_r = -inf`` and ``D + 1`` accumulators ``acc_r = +0`` (``acc_r[D]`` is the softmax
denominator ``l``); ``q'_r[d] = mul(q_r[d], c)``. Then for each key tile ``[j0, j0 + nk)``
(``nk = min(Bc, N - j0)``), ``j0 = 0, Bc, 2 Bc, ...`` up to and including the tile holding key
``max(positions)`` of the query tile (the later tiles are masked for every row: skipped):

1. ``S_rj = +0``; for ``d = 0 .. D-1``: ``S_rj = fma(q'_r[d], k_j[d], S_rj)``, every row and
   every key of the tile.
2. A row that sees no key of the tile keeps its state (steps 3 to 6 skipped for it).
   Otherwise ``m_tile`` = the largest visible ``S_rj`` by value (the first such key on a
   tie) and ``m_new = m_tile if m_tile > m_r else m_r``.
3. ``alpha_r = exp(add(m_r, -m_new))`` (``exp(-inf) = +0`` on the first live tile);
   ``p_rj = exp(add(S_rj, -m_new))`` for visible keys, ``+0`` for masked ones.
4. ``acc_r[d] = mul(acc_r[d], alpha_r)``, ``d = 0 .. D`` (the denominator too).
5. For each key ``j`` of the tile in order, masked ones included (``p = +0``):
   ``acc_r[d] = fma(p_rj, v_j[d], acc_r[d])`` for ``d < D`` and
   ``acc_r[D] = fma(p_rj, ONE, acc_r[D])``.
6. ``m_r = m_new``.

Finally ``rl_r = reciprocal(acc_r[D])`` and ``o_r[d] = mul(acc_r[d], rl_r)``.

Rows never interact, so the result does not depend on the query tile size ``Br`` (only on
which key tiles a row sees, that is on ``Bc``); the model loops as the hardware does anyway.
The sign of a zero maximum does not matter either: ``exp(+0) = exp(-0) = 1``. Nor does
step 2's skip, as long as ``m_tile`` ignores masked scores: updating a row that sees no key
of the tile multiplies by ``alpha = exp(+0) = 1`` and adds ``+0 * v``, which changes at most
the sign of a zero accumulator, and the final ``mul(acc, rl)`` (an fma with ``+0``) turns
either zero into ``+0``.

Why it is safe
--------------
The online softmax subtracts the running maximum before exponentiating: ``m_new`` is at least
every visible score of the tiles so far and at least ``m_r``, so every ``exp`` argument is
``<= 0`` (a subtraction of two finite values rounded to nearest keeps the sign of the exact
difference, and ``x - x = +0``). Hence ``0 <= p, alpha <= 1``: no exponential overflows
however large the logits; the row's largest score has ``p = exp(+0) = 1`` and every later
``alpha`` is ``exp(+0) = 1``, so the denominator is ``>= 1`` (at most about ``N``: its
reciprocal is finite and normal), and ``acc[d] / l`` is, up to rounding, a convex combination
of the ``v`` values, bounded by ``max |v|``. Rescaling by ``alpha`` when the maximum grows
keeps every term scaled by ``exp(-m_row)``, exactly as the two-pass softmax, whose error it
shares up to a few roundings per tile. A row with no visible key at all would divide ``0`` by
``0``: the model requires ``0 <= positions < N`` so every row sees key 0.

Multi-head attention, the float64 :func:`reference`, the :func:`error_report` that compares
them, and the traffic model (:func:`kv_rows_read`) of the tiled order against a naive one
complete the module (the units' on-chip buffers are
:attr:`~ternforge.hdl.attention.parameters.AttentionParameters.buffer_elements`).
"""

from __future__ import annotations

import numpy as np

from ...hdl.attention.parameters import Phase
from ...hdl.fp.format import float_format
from . import fp as fm
from .fp_functions import evaluate

__all__ = ["attention", "multi_head", "reference", "error_report", "kv_rows_read"]


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _phase(phase):
    return Phase.of(phase).value


def _shapes(q, k, v, ndim):
    """Check ``q (..., M, D)``, ``k`` and ``v (..., N, D)`` with ``ndim`` axes."""
    q, k, v = (np.asarray(x) for x in (q, k, v))
    for name, x in (("q", q), ("k", k), ("v", v)):
        if x.ndim != ndim or 0 in x.shape:
            raise ValueError(f"Shape of {name} must be {ndim}-D and non-empty, "
                             f"not {x.shape!r}")
    d = q.shape[-1]
    for name, x in (("k", k), ("v", v)):
        if x.shape[-1] != d:
            raise ValueError(f"Head dimension of {name} must be {d} (that of q), "
                             f"not {x.shape[-1]!r}")
    if v.shape != k.shape:
        raise ValueError(f"Shape of v must be {k.shape!r} (that of k), not {v.shape!r}")
    return q, k, v


def attention(q, k, v, positions, *, rows: int, cols: int, fmt="float32") -> np.ndarray:
    """Causal attention of one head in the hardware's order (see the module documentation).

    Parameters
    ----------
    q : array of bit patterns, shape ``(..., M, D)``
        Queries; leading axes are independent heads sharing ``positions`` (a convenience
        that vectorises :func:`multi_head`; the order within each head is unchanged).
    k, v : arrays of bit patterns, shape ``(..., N, D)``
        Keys and values, leading axes as ``q``'s.
    positions : array of int, shape ``(M,)``
        Position of each query; key ``j`` is visible to query ``i`` iff
        ``j <= positions[i]``. Each must be in ``[0, N)``.
    rows, cols : int
        Query rows ``Br`` and keys ``Bc`` per tile.
    fmt : str or FloatFormat

    Returns
    -------
    o : array of bit patterns, shape ``(..., M, D)``
    """
    rows, cols = _positive("Rows", rows), _positive("Cols", cols)
    fmt = float_format(fmt)
    dtype = fm.bits_dtype(fmt)
    q, k, v = _shapes(q, k, v, max(np.ndim(q), 2))
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"Leading axes of k must be {q.shape[:-2]!r} (those of q), "
                         f"not {k.shape[:-2]!r}")
    q, k, v = (x.astype(dtype) for x in (q, k, v))
    (m, d), n = q.shape[-2:], k.shape[-2]
    positions = np.asarray(positions)
    if positions.shape != (m,) or positions.dtype.kind not in "iu" \
            or positions.min() < 0 or positions.max() >= n:
        raise ValueError(f"Positions must be {m} integers in [0, {n}), not {positions!r}")

    zero = dtype.type(0)
    minus_inf = dtype.type(fmt.sign_bit | fmt.infinity)
    sign = dtype.type(fmt.sign_bit)
    c = fm.to_bits(1 / np.sqrt(d), fmt)
    # v with a column of ONE: step 5's denominator is the (D+1)-th accumulator
    v_one = np.concatenate([v, np.broadcast_to(fm.to_bits(1.0, fmt), v.shape[:-1] + (1,))], -1)
    q_scaled = fm.fma(q, c, zero, fmt)
    out = np.empty_like(q)
    for i0 in range(0, m, rows):
        qt, pos = q_scaled[..., i0:i0 + rows, :], positions[i0:i0 + rows]
        m_r = np.full(qt.shape[:-1], minus_inf, dtype)
        acc = np.zeros(qt.shape[:-1] + (d + 1,), dtype)
        for j0 in range(0, int(pos.max()) + 1, cols):
            kt, vt = k[..., j0:j0 + cols, :], v_one[..., j0:j0 + cols, :]
            nk = kt.shape[-2]
            s = np.zeros(qt.shape[:-1] + (nk,), dtype)
            for i in range(d):  # 1. scores
                s = fm.fma(qt[..., :, i, None], kt[..., None, :, i], s, fmt)
            visible = j0 + np.arange(nk)[None, :] <= pos[:, None]
            live = visible.any(1)
            values = np.where(visible, fm.from_bits(s, fmt).astype(np.float64), -np.inf)
            best = np.argmax(values, -1)  # 2. the tile's maximum, first on a tie
            m_tile = np.take_along_axis(s, best[..., None], -1)[..., 0]
            grows = np.take_along_axis(values, best[..., None], -1)[..., 0] \
                > fm.from_bits(m_r, fmt).astype(np.float64)
            m_new = np.where(grows, m_tile, m_r)
            alpha = evaluate("exp", fm.add(m_r, m_new ^ sign, fmt), fmt)  # 3.
            p = evaluate("exp", fm.add(s, m_new[..., None] ^ sign, fmt), fmt)
            p = np.where(visible, p, zero)
            new = fm.fma(acc, alpha[..., None], zero, fmt)  # 4.
            for j in range(nk):  # 5.
                new = fm.fma(p[..., j, None], vt[..., None, j, :], new, fmt)
            acc = np.where(live[:, None], new, acc)
            m_r = np.where(live, m_new, m_r)  # 6.
        rl = evaluate("reciprocal", acc[..., d], fmt)
        out[..., i0:i0 + rows, :] = fm.fma(acc[..., :d], rl[..., None], zero, fmt)
    return out


def _heads(q, k, v):
    q, k, v = _shapes(q, k, v, 3)
    h, hkv = q.shape[0], k.shape[0]
    if h % hkv:
        raise ValueError(f"Heads must be a multiple of the KV heads ({hkv}), not {h!r}")
    return q, k, v, h // hkv


def _decode_context(phase, m, n):
    if phase == "prefill" and n != m:
        raise ValueError(f"Keys must be {m} (the queries) in prefill, not {n!r}")


def multi_head(q, k, v, *, phase: str, rows: int, cols: int, fmt="float32") -> np.ndarray:
    """Grouped-query causal attention of every head, in the hardware's order.

    Query head ``h`` uses KV head ``h // G``, ``G = H // Hkv``.

    prefill
        ``positions = arange(M)`` (``N == M``); every query head is an independent
        :func:`attention` with ``rows``-row query tiles of its ``M`` tokens.
    decode
        Every query at position ``N - 1`` (all keys visible; ``M`` is usually 1). The ``G``
        query heads of a KV head share its keys, so the hardware stacks them as the rows of a
        tile: for KV head ``g`` the ``(G * M, D)`` queries ``q[g*G : (g+1)*G]`` (head-major,
        then token) go through :func:`attention` with ``rows``-row tiles (one tile when
        ``rows >= G * M``, the hardware's case). The bits do not depend on ``rows``.

    Parameters
    ----------
    q : array of bit patterns ``(H, M, D)``
    k, v : arrays of bit patterns ``(Hkv, N, D)``, ``H`` a multiple of ``Hkv``
    phase : {"prefill", "decode"}
    rows, cols : int
        Tile sizes (see :func:`attention`).
    fmt : str or FloatFormat

    Returns
    -------
    o : array of bit patterns ``(H, M, D)``
    """
    _phase(phase)
    q, k, v, g = _heads(q, k, v)
    (h, m, d), (hkv, n) = q.shape, k.shape[:2]
    _decode_context(phase, m, n)
    if phase == "prefill":
        group = np.arange(h) // g
        return attention(q, k[group], v[group], np.arange(m), rows=rows, cols=cols, fmt=fmt)
    stacked = q.reshape(hkv, g * m, d)
    o = attention(stacked, k, v, np.full(g * m, n - 1), rows=rows, cols=cols, fmt=fmt)
    return o.reshape(h, m, d)


def reference(q, k, v, *, phase: str, fmt=None) -> np.ndarray:
    """``softmax(q k^T / sqrt(D) + mask) v`` in float64, with grouped-query heads.

    Parameters
    ----------
    q : array ``(H, M, D)``
    k, v : arrays ``(Hkv, N, D)``
        Real values, or bit patterns of ``fmt`` when it is given.
    phase : {"prefill", "decode"}
        The causal mask of prefill (key ``j`` visible to query ``i`` iff ``j <= i``,
        ``N == M``) or none (decode: every query at position ``N - 1``).
    fmt : str or FloatFormat, optional

    Returns
    -------
    o : float64 array ``(H, M, D)``
    """
    _phase(phase)
    q, k, v, g = _heads(q, k, v)
    if fmt is not None:
        q, k, v = (fm.from_bits(x, fmt) for x in (q, k, v))
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    (_, m, d), n = q.shape, k.shape[1]
    _decode_context(phase, m, n)
    k, v = np.repeat(k, g, 0), np.repeat(v, g, 0)
    logits = q @ k.transpose(0, 2, 1) / np.sqrt(d)
    if phase == "prefill":
        logits = np.where(np.tri(m, dtype=bool), logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True) @ v


def _inputs(rng, phase, h, hkv, m, n, d, scale, adversarial):
    """Q, K, V as float64: ``q, k ~ N(0, 1)`` times per-channel scales log-uniform in
    ``scale``, ``v ~ N(0, 1)``; ``"large"``: ``q, k ~ N(0, 40)`` (logits' std about 40,
    ``scale`` unused);
    ``"equal"``: every key of a KV head the same row (all scores of a query equal)."""
    low, high = np.log(scale[0]), np.log(scale[1])
    channel = lambda heads: np.exp(rng.uniform(low, high, (heads, 1, d)))  # noqa: E731
    q = rng.standard_normal((h, m, d)) * channel(h)
    k = rng.standard_normal((hkv, n, d)) * channel(hkv)
    if adversarial == "large":
        q, k = rng.standard_normal((h, m, d)) * 40 ** 0.5, \
            rng.standard_normal((hkv, n, d)) * 40 ** 0.5
    elif adversarial == "equal":
        k = np.broadcast_to(k[:, :1], k.shape)
    return q, k, rng.standard_normal((hkv, n, d))


def error_report(phase: str, *, heads: int, kv_heads: int, tokens: int, context: int,
                 head_dim: int, rows: int, cols: int, fmt="float32", seed: int = 0,
                 scale=(0.3, 3.0), adversarial=None) -> dict:
    """The bit-exact model (:func:`multi_head`) against the float64 :func:`reference` on
    random inputs shaped like a trained model's.

    Parameters
    ----------
    phase : {"prefill", "decode"}
    heads, kv_heads, tokens, context, head_dim : int
        ``H``, ``Hkv``, ``M``, ``N`` (``N == M`` in prefill), ``D``.
    rows, cols : int
        Tile sizes.
    fmt : str or FloatFormat
    seed : int
    scale : (float, float)
        Range of the per-channel scales of ``q`` and ``k`` (log-uniform): ``q, k ~ N(0, 1)``
        times them, ``v ~ N(0, 1)``; the logits' std is then a few units.
    adversarial : {None, "large", "equal"}
        ``"large"``: ``q, k ~ N(0, 40)``, logits of std about 40 (up to about +-200), where a
        naive ``exp`` overflows float32 and float16; ``"equal"``: every key of a KV head
        equal, so all scores of a query are equal.

    Returns
    -------
    dict
        ``max_abs_error``; ``max_rel_error`` (each head's largest error over its largest
        ``|reference|``, the worst head); ``max_elementwise_rel_error`` (where ``|reference|
        > 1e-3``); ``finite`` (every output finite); ``inputs`` (the parameters and the
        visible logits' ``logit_std`` and ``logit_max_abs``).
    """
    if adversarial not in (None, "large", "equal"):
        raise ValueError(f"Adversarial must be None, 'large' or 'equal', not {adversarial!r}")
    rng = np.random.default_rng(seed)
    values = _inputs(rng, _phase(phase), heads, kv_heads, tokens, context, head_dim, scale,
                     adversarial)
    q, k, v = (fm.to_bits(x, fmt) for x in values)
    o = fm.from_bits(multi_head(q, k, v, phase=phase, rows=rows, cols=cols, fmt=fmt),
                     fmt).astype(np.float64)
    ref = reference(q, k, v, phase=phase, fmt=fmt)
    qf, kf = (fm.from_bits(x, fmt).astype(np.float64) for x in (q, k))
    logits = qf @ np.repeat(kf, heads // kv_heads, 0).transpose(0, 2, 1) / np.sqrt(head_dim)
    logits = logits[:, np.tri(tokens, dtype=bool)] if phase == "prefill" else logits
    error = np.abs(o - ref)
    big = np.abs(ref) > 1e-3
    return {
        "max_abs_error": float(error.max()),
        "max_rel_error": float((error.max((1, 2)) / np.abs(ref).max((1, 2))).max()),
        "max_elementwise_rel_error": float((error[big] / np.abs(ref[big])).max(initial=0)),
        "finite": bool(np.isfinite(o).all()),
        "inputs": {"phase": phase, "format": float_format(fmt).name, "heads": heads,
                   "kv_heads": kv_heads, "tokens": tokens, "context": context,
                   "head_dim": head_dim, "rows": rows, "cols": cols, "seed": seed,
                   "scale": tuple(scale), "adversarial": adversarial,
                   "logit_std": float(logits.std()),
                   "logit_max_abs": float(np.abs(logits).max())},
    }


def kv_rows_read(m: int, *, rows: int, cols: int, order: str) -> int:
    """K rows (as many V rows) read from memory to prefill ``m`` tokens of one head.

    ``"query_tiles"``: for each ``rows``-row query tile, the ``cols``-key tiles up to the one
    holding the tile's last position (the diagonal), later tiles skipped; a key tile is read
    once per query tile. ``"naive"``: every query row reads all ``m`` keys (no tiling, no
    skipping): ``m * m``.
    """
    m, rows, cols = _positive("Tokens", m), _positive("Rows", rows), _positive("Cols", cols)
    if order == "naive":
        return m * m
    if order != "query_tiles":
        raise ValueError(f"Order must be query_tiles or naive, not {order!r}")
    last = np.minimum(np.arange(rows, m + rows, rows), m) - 1  # each tile's last position
    return int(np.minimum((last // cols + 1) * cols, m).sum())
