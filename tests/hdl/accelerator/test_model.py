"""The model shapes: the presets' figures (from the published configurations) and the checks
that refuse a shape the architecture cannot have."""

import pytest

from ternforge.hdl.accelerator.model import PRESETS, Activation, ModelConfig, preset


def test_presets_match_the_published_configurations():
    # microsoft/bitnet-b1.58-2B-4T config.json
    b = preset("bitnet-2b4t")
    assert (b.hidden, b.layers, b.heads, b.kv_heads, b.head_dim, b.ffn, b.vocab) == \
        (2560, 30, 20, 5, 128, 6912, 128256)
    assert (b.activation, b.rope_theta, b.norm_eps, b.tied_embeddings) == \
        (Activation.RELU2, 500000.0, 1e-5, True)
    assert b.ternary_weights == 30 * (2 * 2560 * 2560 + 2 * 640 * 2560 + 3 * 6912 * 2560)
    # 1bitLLM/bitnet_b1_58-large config.json: LLaMA's structure
    s = preset("bitnet-0.7b")
    assert (s.hidden, s.layers, s.heads, s.kv_heads, s.head_dim, s.ffn, s.vocab) == \
        (1536, 24, 16, 16, 96, 4096, 32002)
    assert (s.activation, s.rope_theta, s.max_context) == (Activation.SILU, 10000.0, 2048)
    # 0.7B of ternary weights in 24 layers (the embedding adds 49 M)
    assert 0.65e9 < s.ternary_weights < 0.75e9
    t = preset("tiny")
    assert (t.hidden, t.layers, t.heads, t.kv_heads, t.vocab, t.activation) == \
        (256, 2, 4, 2, 256, Activation.RELU2)
    assert t.group == 2 and t.kv_width == 128
    assert t.projection_shape("k_proj") == (128, 256)
    assert t.projection_shape("down_proj") == (256, 768)
    assert t.kv_bytes_per_token(4) == 2 * 2 * 128 * 4


def test_to_dict_and_replace():
    t = preset("tiny")
    assert t.to_dict()["activation"] == "relu2"
    assert ModelConfig(**t.to_dict()) == t
    assert t.replace(layers=3).layers == 3
    with pytest.raises(ValueError, match="^Model parameter must be one of name, hidden, .*"
                                         "not 'depth'$"):
        t.replace(depth=3)


@pytest.mark.parametrize("change,message", [
    ({"hidden": 0}, "Hidden size must be an integer from 8 to 65536, not 0"),
    ({"layers": "2"}, "Layers must be an integer from 1 to 1024, not '2'"),
    ({"kv_heads": 3}, "KV heads must divide the 4 heads, not 3"),
    ({"kv_heads": 8}, "KV heads must be an integer from 1 to 4, not 8"),
    ({"head_dim": 63}, "Head dimension must be even (RoPE rotates pairs), not 63"),
    ({"head_dim": 32}, "Heads x head dimension must be the hidden size 256 (the attention "
                       "sub-norm spans it), not 4 x 32 = 128"),
    ({"ffn": 770}, "FFN size must be a multiple of 4, not 770"),
    ({"activation": "gelu"}, "Activation must be one of relu2, silu, not 'gelu'"),
    ({"norm_eps": 0.0}, "RMSNorm epsilon must be a positive finite number, not 0.0"),
    ({"rope_theta": float("inf")}, "RoPE theta must be a positive finite number, not inf"),
    ({"max_context": 0}, "Maximum context must be an integer from 1 to 1048576, not 0"),
    ({"tied_embeddings": 1}, "Tied embeddings must be true or false, not 1"),
    ({"name": ""}, "Model name must be a non-empty string, not ''"),
])
def test_bad_shapes_are_refused(change, message):
    with pytest.raises(ValueError) as error:
        preset("tiny").replace(**change)
    assert str(error.value) == message


def test_unknown_preset():
    with pytest.raises(ValueError, match="^Model must be one of bitnet-0.7b, bitnet-2b4t, "
                                         "tiny, not 'gpt2'$"):
        preset("gpt2")
    assert set(PRESETS) == {"bitnet-0.7b", "bitnet-2b4t", "tiny"}
