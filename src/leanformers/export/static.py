"""One decoding step over a static key/value cache, in the form torch.export and a compiled decode loop need: every
shape fixed, the write position a tensor, the cache in module buffers updated in place."""

from __future__ import annotations

import torch
from torch import nn

from ..cache import Cache


class _SlotCache(Cache):
    """Keys and values in fixed (batch, kv_heads, max_cache_len, head_dim) buffers, written at `position`."""

    def __init__(self, keys: list, values: list, position: torch.Tensor, max_cache_len: int):
        super().__init__([])
        self.buffers, self.position, self.max_cache_len = (keys, values), position, max_cache_len

    def update(self, key_states, value_states, layer_idx: int, cache_kwargs=None, **_ignored):
        keys, values = self.buffers[0][layer_idx], self.buffers[1][layer_idx]
        keys.index_copy_(2, self.position, key_states)
        values.index_copy_(2, self.position, value_states)
        return keys, values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.max_cache_len - 1  # the new token's keys are the whole buffer; the mask hides unwritten slots


class StaticCacheStep(nn.Module):
    """(input_ids (batch, 1), cache_position (1,)) -> logits (batch, 1, vocab) of a causal LM; the token's keys and
    values are written into buffers key_N / value_N at cache_position. Start at 0 with zeroed buffers."""

    def __init__(self, model: nn.Module, batch_size: int, max_cache_len: int):
        super().__init__()
        self.model, self.max_cache_len = model, max_cache_len
        with torch.no_grad():
            probe = model(torch.zeros(1, 1, dtype=torch.long), use_cache=True, return_dict=True)
        layers = probe.past_key_values.to_legacy_cache()
        self.layers = len(layers)
        dtype = next(model.parameters()).dtype
        for i, (keys, values) in enumerate(layers):
            for name, like in (("key", keys), ("value", values)):
                self.register_buffer(f"{name}_{i}", torch.zeros(batch_size, like.shape[1], max_cache_len,
                                                                like.shape[3], dtype=dtype), persistent=False)

    def forward(self, input_ids: torch.Tensor, cache_position: torch.Tensor) -> torch.Tensor:
        batch = input_ids.shape[0]
        slots = torch.arange(self.max_cache_len, device=input_ids.device)
        mask = (slots <= cache_position)[None, None, None, :].expand(batch, 1, 1, self.max_cache_len)  # True = seen
        keys = [getattr(self, f"key_{i}") for i in range(self.layers)]
        values = [getattr(self, f"value_{i}") for i in range(self.layers)]
        cache = _SlotCache(keys, values, cache_position, self.max_cache_len)
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=cache_position[None].expand(batch, 1),
                         past_key_values=cache, use_cache=True, return_dict=True)
        return out.logits
