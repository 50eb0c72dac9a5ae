"""A model's weights in safetensors files, under Hugging Face's tensor names.

Two forms load, and a file may mix them projection by projection:

- **full precision** (``1bitLLM/bitnet_b1_58-large``, ``bitnet-b1.58-2B-4T-bf16``): each
  projection's ``weight`` ``(out, in)`` in float32, float16 or bfloat16, quantised at load as
  the reference does (per tensor, absmean: :func:`~ternforge.sim.models.bitnet.quantise_weights`);
- **packed ternary** (``bitnet-b1.58-2B-4T``): ``weight`` as uint8 ``(out / 4, in)``, four
  codes ``w + 1`` a byte, row ``i * out/4 + p`` in bits ``2i+1 .. 2i`` of packed row ``p``
  (transformers' ``pack_weights``), and ``weight_scale`` ``(1,)``, the factor the result is
  multiplied by.

Names: ``model.embed_tokens.weight``, ``model.norm.weight``, ``lm_head.weight`` (only when
the embeddings are not tied) and per layer ``model.layers.{i}.`` + ``input_layernorm``,
``post_attention_layernorm``, ``self_attn.{q,k,v,o}_proj``, ``self_attn.attn_sub_norm`` (or
``inner_attn_ln``), ``mlp.{gate,up,down}_proj``, ``mlp.ffn_sub_norm`` (or ``ffn_layernorm``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy, for safetensors)
import numpy as np

from ..hdl.accelerator.model import ModelConfig
from .models.bitnet import (NORMS, LayerWeights, ModelWeights, Projection, quantise_weights)

__all__ = ["pack_ternary", "unpack_ternary", "tensor_names", "load_checkpoint",
           "save_checkpoint", "shipped_weights"]

#: where each projection and gain lives in a layer, and the other names a gain goes by
_PROJECTION_PATHS = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn",
                     "o_proj": "self_attn", "gate_proj": "mlp", "up_proj": "mlp",
                     "down_proj": "mlp"}
_NORM_NAMES = {"input": ("input_layernorm",), "post_attention": ("post_attention_layernorm",),
               "attention_sub": ("self_attn.attn_sub_norm", "self_attn.inner_attn_ln"),
               "ffn_sub": ("mlp.ffn_sub_norm", "mlp.ffn_layernorm")}


def pack_ternary(codes) -> np.ndarray:
    """transformers' ``pack_weights``: ternary ``(out, in)`` (``out`` a multiple of 4) to
    uint8 ``(out / 4, in)``."""
    codes = np.asarray(codes)
    rows = codes.shape[0] // 4
    stored = (codes + 1).astype(np.uint8).reshape(4, rows, *codes.shape[1:])
    return (stored[0] | stored[1] << 2 | stored[2] << 4 | stored[3] << 6).astype(np.uint8)


def unpack_ternary(packed) -> np.ndarray:
    """The inverse of :func:`pack_ternary`: int8 ``(4 * rows, in)``."""
    packed = np.asarray(packed, dtype=np.uint8)
    codes = np.concatenate([(packed >> (2 * i)) & 3 for i in range(4)], axis=0)
    return codes.astype(np.int8) - 1


def tensor_names(config: ModelConfig) -> list[str]:
    """The tensors a full-precision checkpoint of ``config`` holds (first names)."""
    names = ["model.embed_tokens.weight", "model.norm.weight"]
    if not config.tied_embeddings:
        names.append("lm_head.weight")
    for i in range(config.layers):
        names += [f"model.layers.{i}.{_NORM_NAMES[n][0]}.weight" for n in NORMS]
        names += [f"model.layers.{i}.{path}.{p}.weight" for p, path in _PROJECTION_PATHS.items()]
    return names


class _File:
    """The tensors of one safetensors file, read on demand, with checked shapes."""

    def __init__(self, path: Path):
        from safetensors import safe_open

        self.path = path
        try:
            self._file = safe_open(str(path), framework="np")
            self.names = set(self._file.keys())
        except Exception as error:  # the package raises several kinds for a bad file
            raise ValueError(f"Weights file must be a readable safetensors file, not "
                             f"{str(path)!r} ({type(error).__name__})") from None

    def get(self, *names: str, shape=None) -> np.ndarray:
        """The first of ``names`` the file holds, as float32 (or uint8 if stored so)."""
        for name in names:
            if name in self.names:
                array = self._file.get_tensor(name)
                if shape is not None and array.shape != tuple(shape):
                    raise ValueError(f"Tensor {name!r} must have shape {tuple(shape)!r}, not "
                                     f"{array.shape!r}")
                return array if array.dtype == np.uint8 else array.astype(np.float32)
        raise ValueError(f"Weights file must hold tensor {names[0]!r}; {str(self.path)!r} "
                         f"does not")

    def projection(self, name: str, shape) -> Projection:
        weight = self.get(f"{name}.weight")
        out, in_ = shape
        if weight.dtype == np.uint8:  # packed: four codes a byte, and the scale
            if weight.shape != (out // 4, in_):
                raise ValueError(f"Tensor '{name}.weight' must have shape {shape!r} (or "
                                 f"packed {(out // 4, in_)!r}), not {weight.shape!r}")
            codes = unpack_ternary(weight)
            if (codes > 1).any():
                raise ValueError(f"Tensor '{name}.weight' must hold packed codes 0 to 2, not 3")
            scale = self.get(f"{name}.weight_scale", shape=(1,))
            return Projection(codes, float(scale[0]))
        if weight.shape != tuple(shape):
            raise ValueError(f"Tensor '{name}.weight' must have shape {tuple(shape)!r}, not "
                             f"{weight.shape!r}")
        return quantise_weights(weight)


def shipped_weights(name: str) -> Path:
    """The weights file that ships for the preset ``name`` (``tiny``: trained by
    ``benchmarks/train_tiny.py``); ``ValueError`` if none does."""
    from importlib.resources import files

    path = Path(str(files("ternforge") / "data" / f"{name}.safetensors"))
    if not path.is_file():
        raise ValueError(f"Model must be one whose weights ship (tiny), or be given "
                         f"--weights, not {name!r}")
    return path


def load_checkpoint(path, config: ModelConfig) -> ModelWeights:
    """The weights of ``config``'s model in the safetensors file ``path`` (either form, see the
    module documentation); a missing or misshapen tensor is a ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Weights file must be an existing file, not {str(path)!r}")
    file = _File(path)
    c = config
    sizes = {"input": c.hidden, "attention_sub": c.hidden, "post_attention": c.hidden,
             "ffn_sub": c.ffn}
    layers = []
    for i in range(c.layers):
        prefix = f"model.layers.{i}"
        layers.append(LayerWeights(
            projections={p: file.projection(f"{prefix}.{where}.{p}", c.projection_shape(p))
                         for p, where in _PROJECTION_PATHS.items()},
            norms={n: file.get(*(f"{prefix}.{name}.weight" for name in _NORM_NAMES[n]),
                               shape=(sizes[n],)) for n in NORMS}))
    vocab = (c.vocab, c.hidden)
    head = None if c.tied_embeddings else file.get("lm_head.weight", shape=vocab)
    return ModelWeights(c, file.get("model.embed_tokens.weight", shape=vocab), tuple(layers),
                        file.get("model.norm.weight", shape=(c.hidden,)), head)


def save_checkpoint(path, weights: ModelWeights, *, packed: bool = True) -> None:
    """Write ``weights`` to ``path`` (atomically): the packed ternary form with bfloat16
    gains, embedding and scales, or (``packed=False``) full precision float32, each
    projection as ``codes * scale`` (which quantises back to the same codes; the scale
    becomes ``mean |codes * scale|``, as the reference computes it)."""
    from safetensors.numpy import save_file

    bf16 = ml_dtypes.bfloat16
    real = (lambda x: np.asarray(x).astype(bf16)) if packed else \
        (lambda x: np.asarray(x, dtype=np.float32))
    tensors = {"model.embed_tokens.weight": real(weights.embedding),
               "model.norm.weight": real(weights.norm)}
    if weights.lm_head is not None:
        tensors["lm_head.weight"] = real(weights.lm_head)
    for i, layer in enumerate(weights.layers):
        prefix = f"model.layers.{i}"
        for n in NORMS:
            tensors[f"{prefix}.{_NORM_NAMES[n][0]}.weight"] = real(layer.norms[n])
        for p, where in _PROJECTION_PATHS.items():
            name, projection = f"{prefix}.{where}.{p}", layer.projections[p]
            if packed:
                tensors[f"{name}.weight"] = pack_ternary(projection.codes)
                tensors[f"{name}.weight_scale"] = np.array([projection.scale]).astype(bf16)
            else:
                tensors[f"{name}.weight"] = (projection.codes * np.float32(projection.scale))
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, temporary, metadata={"format": "pt"})
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
