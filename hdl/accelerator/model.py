"""The shape of a BitNet b1.58 model: what the accelerator is generated for.

:class:`ModelConfig` holds the figures of a model's Hugging Face ``config.json`` that decide
the hardware (sizes, heads, activation, RoPE, context) and the facts that follow from them
(each projection's shape, weight and KV-cache bytes). The architecture is that of
transformers' ``models/bitnet/modeling_bitnet.py``: RMSNorm; per-token absmax int8
activations and ternary weights with a per-tensor absmean scale in every linear layer; RoPE
(the ``rotate_half`` form); grouped-query attention; an RMSNorm over the attention output
before ``o_proj`` (the attention sub-norm) and over the gated product before ``down_proj``
(the FFN sub-norm); residuals, a final norm and an LM head.

:data:`PRESETS` holds the published models (figures from their ``config.json``) and ``tiny``,
a model of 2B4T's structure small enough to simulate whole.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace

from ..common.checks import check_int

__all__ = ["Activation", "ModelConfig", "PROJECTIONS", "PRESETS", "preset"]


class Activation(enum.StrEnum):
    """The gated MLP's activation: ``act(gate_proj(x)) * up_proj(x)``."""

    #: squared ReLU (BitNet b1.58 2B4T)
    RELU2 = "relu2"
    #: SiLU, as in LLaMA (the 1bitLLM reproductions)
    SILU = "silu"


#: the ternary linear layers of a decoder layer, in the order a layer computes them
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelConfig:
    """A BitNet b1.58 model's shape.

    Parameters
    ----------
    name : str
        What the model is called (a preset's name, or the user's).
    hidden : int
        Hidden size ``d``.
    layers : int
        Decoder layers.
    heads, kv_heads : int
        Query heads, and the key/value heads they share in equal groups.
    head_dim : int
        Elements of a head (even: RoPE rotates pairs); ``heads * head_dim == hidden``.
    ffn : int
        Intermediate (FFN) size.
    vocab : int
        Vocabulary size.
    activation : Activation or str
        The gated MLP's activation.
    norm_eps : float
        RMSNorm epsilon.
    rope_theta : float
        RoPE base.
    max_context : int
        Longest context (prompt and generated tokens) the model is run at.
    tied_embeddings : bool
        Whether the LM head is the embedding matrix.
    """

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    activation: Activation = Activation.RELU2
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    max_context: int = 4096
    tied_embeddings: bool = True

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Model name must be a non-empty string, not {self.name!r}")
        check_int("Hidden size", self.hidden, 8, 65536)
        check_int("Layers", self.layers, 1, 1024)
        check_int("Heads", self.heads, 1, 256)
        check_int("KV heads", self.kv_heads, 1, self.heads)
        if self.heads % self.kv_heads:
            raise ValueError(f"KV heads must divide the {self.heads} heads, not "
                             f"{self.kv_heads!r}")
        check_int("Head dimension", self.head_dim, 2, 1024)
        if self.head_dim % 2:
            raise ValueError(f"Head dimension must be even (RoPE rotates pairs), not "
                             f"{self.head_dim!r}")
        if self.heads * self.head_dim != self.hidden:
            raise ValueError(f"Heads x head dimension must be the hidden size {self.hidden} "
                             f"(the attention sub-norm spans it), not {self.heads} x "
                             f"{self.head_dim} = {self.heads * self.head_dim}")
        check_int("FFN size", self.ffn, 4, 1 << 18)
        check_int("Vocabulary size", self.vocab, 2, 1 << 20)
        for name, value in (("Hidden size", self.hidden), ("FFN size", self.ffn),
                            ("KV width", self.kv_heads * self.head_dim)):
            if value % 4:  # packed ternary weights hold four output rows a byte
                raise ValueError(f"{name} must be a multiple of 4, not {value!r}")
        try:
            object.__setattr__(self, "activation", Activation(self.activation))
        except ValueError:
            raise ValueError(f"Activation must be one of {', '.join(Activation)}, not "
                             f"{self.activation!r}") from None
        for name, value in (("RMSNorm epsilon", self.norm_eps),
                            ("RoPE theta", self.rope_theta)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive finite number, not {value!r}")
        check_int("Maximum context", self.max_context, 1, 1 << 20)
        if not isinstance(self.tied_embeddings, bool):
            raise ValueError(f"Tied embeddings must be true or false, not "
                             f"{self.tied_embeddings!r}")

    # -- derived facts ---------------------------------------------------------------------

    @property
    def group(self) -> int:
        """Query heads per KV head."""
        return self.heads // self.kv_heads

    @property
    def kv_width(self) -> int:
        """Elements of one token's keys (or values) over all KV heads."""
        return self.kv_heads * self.head_dim

    def projection_shape(self, name: str) -> tuple[int, int]:
        """``(out, in)`` of the projection ``name`` (one of :data:`PROJECTIONS`)."""
        d, kv, f = self.hidden, self.kv_width, self.ffn
        return {"q_proj": (d, d), "k_proj": (kv, d), "v_proj": (kv, d), "o_proj": (d, d),
                "gate_proj": (f, d), "up_proj": (f, d), "down_proj": (d, f)}[name]

    @property
    def ternary_weights(self) -> int:
        """Ternary weights of the whole model (all layers' projections)."""
        per_layer = sum(out * in_ for out, in_ in map(self.projection_shape, PROJECTIONS))
        return self.layers * per_layer

    def kv_bytes_per_token(self, element_bytes: int) -> int:
        """KV-cache bytes one token adds over all layers, at ``element_bytes`` an element."""
        return 2 * self.layers * self.kv_width * element_bytes

    def replace(self, **changes) -> "ModelConfig":
        """A copy with ``changes``, checked again."""
        unknown = set(changes) - {field.name for field in fields(self)}
        if unknown:
            raise ValueError(f"Model parameter must be one of "
                             f"{', '.join(field.name for field in fields(self))}, not "
                             f"{sorted(unknown)[0]!r}")
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """The figures as plain values (``activation`` as its name)."""
        return {field.name: (str(value) if isinstance(value := getattr(self, field.name),
                                                      Activation) else value)
                for field in fields(self)}


PRESETS = {model.name: model for model in (
    # 1bitLLM/bitnet_b1_58-large: LLaMA's structure (SiLU, no GQA, theta 10,000) with the
    # sub-norms under other names (inner_attn_ln, ffn_layernorm)
    ModelConfig("bitnet-0.7b", hidden=1536, layers=24, heads=16, kv_heads=16, head_dim=96,
                ffn=4096, vocab=32002, activation=Activation.SILU, norm_eps=1e-5,
                rope_theta=10000.0, max_context=2048, tied_embeddings=True),
    # microsoft/bitnet-b1.58-2B-4T
    ModelConfig("bitnet-2b4t", hidden=2560, layers=30, heads=20, kv_heads=5, head_dim=128,
                ffn=6912, vocab=128256, activation=Activation.RELU2, norm_eps=1e-5,
                rope_theta=500000.0, max_context=4096, tied_embeddings=True),
    # 2B4T's structure at a size the simulator runs whole; a byte vocabulary
    ModelConfig("tiny", hidden=256, layers=2, heads=4, kv_heads=2, head_dim=64, ffn=768,
                vocab=256, activation=Activation.RELU2, norm_eps=1e-5, rope_theta=500000.0,
                max_context=256, tied_embeddings=True),
)}


def preset(name: str) -> ModelConfig:
    """The preset model ``name``."""
    if name not in PRESETS:
        raise ValueError(f"Model must be one of {', '.join(PRESETS)}, not {name!r}")
    return PRESETS[name]
