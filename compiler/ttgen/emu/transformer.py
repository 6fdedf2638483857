"""The `ttnn.transformer` namespace of the emulator."""

from ttgen.emu.ops.transformer import (
    paged_scaled_dot_product_attention_decode,
    scaled_dot_product_attention,
    scaled_dot_product_attention_decode,
)

__all__ = [
    "paged_scaled_dot_product_attention_decode",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_decode",
]
