"""Presets must equal the Hugging Face configs they name.

The expected values are copied by hand from each checkpoint's config.json on the hub, plus the
parameter counts the model cards publish, so a typo in the presets file fails here.
"""

import pytest

from ttgen.errors import TtgenError
from ttgen.models import build_model, get_family, load_presets
from ttgen.models.registry import FAMILIES, preset_config

LLAMA3_ROPE_8B = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_theta": 500000.0,
}
LLAMA3_ROPE_32 = {**LLAMA3_ROPE_8B, "factor": 32.0}

# name: (hidden, intermediate, layers, heads, kv heads, head_dim, vocab, tied, rope, eps, params)
HUB = {
    "smollm2-135m": (576, 1536, 30, 9, 3, 64, 49152, True, {"rope_type": "default", "rope_theta": 100000}, 1e-5, 134_515_008),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, 64, 128256, True, LLAMA3_ROPE_32, 1e-5, 1_235_814_400),
    "llama-3.2-3b": (3072, 8192, 28, 24, 8, 128, 128256, True, LLAMA3_ROPE_32, 1e-5, 3_212_749_824),
    "llama-3.1-8b": (4096, 14336, 32, 32, 8, 128, 128256, False, LLAMA3_ROPE_8B, 1e-5, 8_030_261_248),
    "llama-3.1-70b": (8192, 28672, 80, 64, 8, 128, 128256, False, LLAMA3_ROPE_8B, 1e-5, 70_553_706_496),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HUB))
def test_llama_preset_equals_hub_config(name):
    hidden, inter, layers, heads, kv, head_dim, vocab, tied, rope, eps, params = HUB[name]
    cfg = preset_config(get_family("llama"), name)
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (
        hidden,
        inter,
        layers,
    )
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (heads, kv, head_dim)
    assert cfg.vocab_size == vocab
    assert cfg.tie_word_embeddings is tied
    assert cfg.rope_parameters == rope
    assert cfg.rms_norm_eps == eps
    assert cfg.hidden_act == "silu" and not cfg.attention_bias and not cfg.mlp_bias
    model, source = build_model(get_family("llama"), preset=name)
    assert next(model.parameters()).device.type == "meta"
    assert model.num_parameters() == params
    assert source.preset == name


def test_tiny_is_small_gqa():
    cfg = preset_config(get_family("llama"), "tiny")
    assert cfg.num_hidden_layers == 2
    assert cfg.num_attention_heads // cfg.num_key_value_heads > 1


def test_every_family_has_a_buildable_default_preset():
    for family in FAMILIES.values():
        assert family.default_preset in load_presets(family)
        model, _ = build_model(family)
        assert type(model).__name__ == family.causal_lm_class


def test_unknown_model_and_preset():
    with pytest.raises(TtgenError, match="unknown model 'gpt9'"):
        get_family("gpt9")
    with pytest.raises(TtgenError, match="unknown preset 'llama-9b'"):
        build_model(get_family("llama"), preset="llama-9b")
