"""One decoding step over a static key/value cache, in the form torch.export and a compiled decode loop need: every
shape fixed, the write position a tensor, the cache in module buffers updated in place."""

from __future__ import annotations

import torch
from torch import nn

from ..cache import SlotCache


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
        cache = SlotCache(keys, values, cache_position)
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=cache_position[None].expand(batch, 1),
                         past_key_values=cache, use_cache=True, return_dict=True)
        return out.logits
