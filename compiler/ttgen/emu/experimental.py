"""The `ttnn.experimental` namespace of the emulator."""

from ttgen.emu.ops.experimental import (
    nlp_concat_heads,
    nlp_concat_heads_decode,
    nlp_create_qkv_heads,
    nlp_create_qkv_heads_decode,
    paged_fill_cache,
    paged_update_cache,
    rotary_embedding_llama,
)

__all__ = [
    "nlp_concat_heads",
    "nlp_concat_heads_decode",
    "nlp_create_qkv_heads",
    "nlp_create_qkv_heads_decode",
    "paged_fill_cache",
    "paged_update_cache",
    "rotary_embedding_llama",
]
