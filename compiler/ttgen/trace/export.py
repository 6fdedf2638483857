"""torch.export of a Hugging Face model in each of its modes.

Causal LMs: prefill (the whole prompt, no cache) and decode (one new token per user against a
static KV cache whose buffers belong to a thin wrapper module, so the exported graph shows the cache
writes (`aten.index_copy_`) and the attention over the full cache). Image classifiers: forward (a
batch of `pixel_values` [B, C, H, W] at the config's image size).
"""

from __future__ import annotations

import contextlib
import re

import torch
import torch.fx.config

__all__ = [
    "DECODE_WRAPPER_PREFIX",
    "export_forward",
    "StaticCacheDecoder",
    "cache_buffer_layer",
    "cache_buffer_name",
    "export_decode",
    "export_prefill",
]

# The wrapper holds the HF model as `self.model`, so module paths and parameter names in the decode
# graph carry one extra leading "model."; the converter strips it.
DECODE_WRAPPER_PREFIX = "model"


@contextlib.contextmanager
def _without_stack_traces():
    """FX records and symbolizes a Python stack trace for every node (debug metadata the graph
    does not use; about a fifth of an 8B export). torch.fx.config switches that off."""
    config = torch.fx.config
    before = getattr(config, "do_not_emit_stack_traces", False)
    config.do_not_emit_stack_traces = True
    try:
        yield
    finally:
        config.do_not_emit_stack_traces = before


def export_prefill(model, batch: int, seq_len: int) -> torch.export.ExportedProgram:
    device = next(model.parameters()).device
    input_ids = torch.zeros(batch, seq_len, dtype=torch.long, device=device)
    with _without_stack_traces():
        return torch.export.export(
            model, (), {"input_ids": input_ids, "use_cache": False}, strict=False
        )


def export_forward(model, batch: int, seq_len: int) -> torch.export.ExportedProgram:
    """An image classifier on a batch of images of the config's size (`seq_len` does not apply)."""
    config = model.config
    device = next(model.parameters()).device
    size = config.image_size
    pixel_values = torch.zeros(batch, config.num_channels, size, size, device=device)
    with _without_stack_traces():
        return torch.export.export(model, (), {"pixel_values": pixel_values}, strict=False)


class StaticCacheDecoder(torch.nn.Module):
    """One decode step of `model` against a static KV cache of `max_cache_len` positions."""

    def __init__(self, model, batch: int, max_cache_len: int):
        from transformers import StaticCache

        super().__init__()
        config = model.config
        self.model = model
        self.cache = StaticCache(config=config, max_cache_len=max_cache_len)
        head_dim = (
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        kv_heads = (
            getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        )  # MHA models
        self.cache.early_initialization(batch, kv_heads, head_dim, dtype, device)
        for i, layer in enumerate(self.cache.layers):
            self.register_buffer(f"key_cache_{i}", layer.keys, persistent=False)
            self.register_buffer(f"value_cache_{i}", layer.values, persistent=False)
            self.register_buffer(f"cache_length_{i}", layer.cumulative_length, persistent=False)

    def forward(self, input_ids: torch.Tensor, cache_position: torch.Tensor) -> torch.Tensor:
        # Non-strict export swaps module buffers for traced stand-ins; tensors reached only through
        # the cache object would be lifted as anonymous constants. Rebind the cache to the buffers so
        # the graph names them `key_cache_<layer>` / `value_cache_<layer>`.
        for i, layer in enumerate(self.cache.layers):
            layer.keys = getattr(self, f"key_cache_{i}")
            layer.values = getattr(self, f"value_cache_{i}")
            layer.cumulative_length = getattr(self, f"cache_length_{i}")
            layer.cumulative_length.copy_(cache_position[0])
        out = self.model(
            input_ids=input_ids,
            cache=self.cache,
            use_cache=True,
            position_ids=cache_position.unsqueeze(0).expand(input_ids.shape[0], -1),
        )
        return out.logits


def export_decode(model, batch: int, max_cache_len: int) -> torch.export.ExportedProgram:
    device = next(model.parameters()).device
    wrapper = StaticCacheDecoder(model, batch, max_cache_len)
    input_ids = torch.zeros(batch, 1, dtype=torch.long, device=device)
    cache_position = torch.zeros(1, dtype=torch.long, device=device)
    with _without_stack_traces():
        return torch.export.export(wrapper, (input_ids, cache_position), strict=False)


_CACHE_BUFFER = re.compile(r"^(key_cache|value_cache|cache_length)_(\d+)$")


def cache_buffer_layer(name: str) -> int | None:
    """The layer of a decode wrapper cache buffer (`key_cache_3` → 3), None for other names."""
    m = _CACHE_BUFFER.match(name)
    return int(m.group(2)) if m else None


def cache_buffer_name(name: str, layer: int) -> str:
    """The same cache buffer of another layer (`key_cache_3`, 5 → `key_cache_5`)."""
    return f"{_CACHE_BUFFER.match(name).group(1)}_{layer}"
