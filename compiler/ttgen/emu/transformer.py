"""The `ttnn.transformer` namespace of the emulator."""

from ttgen.emu.ops.transformer import (
    concatenate_heads,
    paged_scaled_dot_product_attention_decode,
    scaled_dot_product_attention,
    scaled_dot_product_attention_decode,
    split_query_key_value_and_split_heads,
)

__all__ = [
    "concatenate_heads",
    "paged_scaled_dot_product_attention_decode",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_decode",
    "split_query_key_value_and_split_heads",
]
