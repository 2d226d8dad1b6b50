"""Key/value caches for decoding: `DynamicCache` (grows as tokens come) and `StaticCache` (one allocation).

Both keep, per attention layer, keys and values of shape (batch, kv_heads, seq, head_dim) inside a buffer that is
longer than what it holds, and hand out views of the filled part. A new token is one in-place copy per layer instead
of a concatenation of the whole history, so decoding a long sequence costs no O(n^2) copying. The method names are
those of Transformers' caches (`update`, `get_seq_length`, `reorder_cache`, `crop`, `batch_select_indices`, ...).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

# A dynamic buffer grows to at least `_GROWTH` times what it must hold, rounded up to `_ROUND` positions, so that the
# copies made when it grows cost O(1) per token on average.
_GROWTH = 1.5
_ROUND = 64


class CacheFullError(ValueError):
    """A StaticCache was asked to hold more tokens than its `max_cache_len`."""


class CacheLayer:
    """Keys and values of one attention layer, kept in a buffer longer than its content.

    `max_cache_len=None` lets the buffer grow; a number fixes its length once and for all (a static cache).
    """

    is_sliding = False

    def __init__(self, max_cache_len: int | None = None):
        self.max_cache_len = max_cache_len
        self._keys: torch.Tensor | None = None
        self._values: torch.Tensor | None = None
        self.length = 0

    # ------------------------------------------------------------------ views
    @property
    def is_initialized(self) -> bool:
        return self._keys is not None

    @property
    def keys(self) -> torch.Tensor | None:
        """(batch, kv_heads, seq, head_dim) view of the cached keys."""
        return None if self._keys is None else self._keys[:, :, : self.length]

    @property
    def values(self) -> torch.Tensor | None:
        return None if self._values is None else self._values[:, :, : self.length]

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return -1 if self.max_cache_len is None else self.max_cache_len

    # ------------------------------------------------------------------ writing
    def update(self, key_states: torch.Tensor, value_states: torch.Tensor):
        """Append (batch, kv_heads, new, head_dim) keys and values; return views of everything held."""
        start = self.length
        end = start + key_states.shape[-2]
        buffer = self._keys
        if (buffer is None or end > buffer.shape[-2] or buffer.shape[0] != key_states.shape[0]
                or buffer.dtype != key_states.dtype):
            self._reserve(key_states, value_states, end)
        self._keys[:, :, start:end].copy_(key_states)
        self._values[:, :, start:end].copy_(value_states)
        self.length = end
        return self._keys[:, :, :end], self._values[:, :, :end]

    def _reserve(self, key_states: torch.Tensor, value_states: torch.Tensor, needed: int):
        old = self._keys
        if old is not None and self.length and (old.shape[0] != key_states.shape[0] or old.dtype != key_states.dtype):
            raise ValueError(f"The cache holds keys of batch {old.shape[0]} and dtype {old.dtype} but got keys of "
                             f"batch {key_states.shape[0]} and dtype {key_states.dtype}; change the batch of a filled "
                             f"cache with batch_select_indices / batch_repeat_interleave, or start a new cache.")
        if self.max_cache_len is not None:
            if needed > self.max_cache_len:
                raise CacheFullError(f"StaticCache(max_cache_len={self.max_cache_len}) cannot hold {needed} tokens; "
                                     f"create it with a max_cache_len of at least the prompt plus new tokens.")
            capacity = self.max_cache_len
        elif torch.jit.is_tracing() or torch.compiler.is_compiling():  # recording a graph (layers.capturing, which
            # imports this module): the graph must not keep the spare room of the example it was recorded with
            capacity = needed
        else:
            capacity = -(-int(needed * _GROWTH) // _ROUND) * _ROUND
        self._keys = self._regrown(self._keys, key_states, capacity)
        self._values = self._regrown(self._values, value_states, capacity)

    def _regrown(self, old: torch.Tensor | None, like: torch.Tensor, capacity: int) -> torch.Tensor:
        batch, heads, _, dim = like.shape
        new = torch.empty(batch, heads, capacity, dim, dtype=like.dtype, device=like.device)
        if old is not None and self.length:
            new[:, :, : self.length].copy_(old[:, :, : self.length])
        return new

    # ------------------------------------------------------------------ editing
    def crop(self, max_length: int):
        """Keep the first `max_length` tokens; a negative value removes that many tokens from the end."""
        if max_length < 0:
            max_length = self.length + max_length
        self.length = max(0, min(self.length, max_length))

    def reset(self):
        self.length = 0  # the buffers stay allocated; their old content is never read again

    def batch_select_indices(self, indices: torch.Tensor):
        """Keep (and order) the batch rows `indices`, e.g. the surviving beams."""
        if self._keys is None:
            return
        if isinstance(indices, torch.Tensor) and indices.dtype == torch.bool:
            indices = indices.nonzero().flatten()
        indices = torch.as_tensor(indices, device=self._keys.device)
        self._keys = self._selected(self._keys, indices)
        self._values = self._selected(self._values, indices)

    reorder_cache = batch_select_indices

    def _selected(self, buffer: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        # Only the filled part is copied, into a buffer of the same length (its headroom is kept).
        new = buffer.new_empty((indices.shape[0], *buffer.shape[1:]))
        torch.index_select(buffer[:, :, : self.length], 0, indices, out=new[:, :, : self.length])
        return new

    def batch_repeat_interleave(self, repeats: int):
        """Repeat each batch row `repeats` times (beam search and sampling with several sequences per prompt)."""
        if self._keys is not None:
            index = torch.arange(self._keys.shape[0], device=self._keys.device).repeat_interleave(repeats)
            self.batch_select_indices(index)


class Cache:
    """A list of `CacheLayer`, one per attention layer, with the methods of Transformers' caches."""

    is_compileable = False

    def __init__(self, layers: list[CacheLayer] | None = None, max_cache_len: int | None = None):
        self.layers: list[CacheLayer] = layers if layers is not None else []
        self._max_cache_len = max_cache_len

    def _layer(self, layer_idx: int) -> CacheLayer:
        while len(self.layers) <= layer_idx:
            self.layers.append(CacheLayer(self._max_cache_len))
        return self.layers[layer_idx]

    def update(self, key_states, value_states, layer_idx: int, cache_kwargs=None, **_ignored):
        """Append new keys/values of layer `layer_idx`; return (keys, values) of everything it holds."""
        return self._layer(layer_idx).update(key_states, value_states)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.layers[layer_idx].length if layer_idx < len(self.layers) else 0

    def get_max_length(self, layer_idx: int | None = None) -> int:
        return -1 if self._max_cache_len is None else self._max_cache_len

    get_max_cache_shape = get_max_length

    def get_mask_sizes(self, query_length: int, layer_idx: int = 0) -> tuple[int, int]:
        """(key length, key offset) that attention over this layer sees after adding `query_length` tokens."""
        return self.get_seq_length(layer_idx) + query_length, 0

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, layer_idx: int):
        layer = self.layers[layer_idx]
        return layer.keys, layer.values

    def __iter__(self):
        for layer in self.layers:
            yield layer.keys, layer.values

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={len(self.layers)}, seq_length={self.get_seq_length()})"

    @property
    def is_initialized(self) -> bool:
        return bool(self.layers) and all(layer.is_initialized for layer in self.layers)

    @property
    def is_sliding(self) -> list[bool]:
        return [False] * len(self.layers)

    @property
    def batch_size(self) -> int:
        first = self.layers[0]._keys if self.layers else None
        return -1 if first is None else first.shape[0]

    # ------------------------------------------------------------------ editing (every layer)
    def crop(self, max_length: int):
        """Keep the first `max_length` tokens (a negative value removes that many from the end)."""
        for layer in self.layers:
            layer.crop(max_length)

    def reset(self):
        for layer in self.layers:
            layer.reset()

    def reorder_cache(self, beam_idx: torch.LongTensor):
        for layer in self.layers:
            layer.batch_select_indices(beam_idx)

    def batch_select_indices(self, indices: torch.Tensor):
        for layer in self.layers:
            layer.batch_select_indices(indices)

    def batch_repeat_interleave(self, repeats: int):
        for layer in self.layers:
            layer.batch_repeat_interleave(repeats)

    # ------------------------------------------------------------------ legacy format
    def to_legacy_cache(self) -> tuple:
        """((keys, values) per layer), the tuple format of older Transformers."""
        return tuple((layer.keys, layer.values) for layer in self.layers)


class DynamicCache(Cache):
    """A cache that grows with the sequence; the default of every decoder model here.

    `DynamicCache()` starts empty; `DynamicCache(((k, v), ...))` starts from given keys and values per layer.
    `config` is accepted for compatibility with Transformers and changes nothing: sliding-window models mask the
    keys they must not see.
    """

    def __init__(self, ddp_cache_data: Iterable | None = None, config=None, **_ignored):
        super().__init__()
        for layer_idx, pair in enumerate(ddp_cache_data or ()):
            keys, values = pair[0], pair[1]
            if keys is not None:
                self.update(keys, values, layer_idx)
            else:
                self._layer(layer_idx)

    @classmethod
    def from_legacy_cache(cls, past_key_values) -> DynamicCache:
        return cls(past_key_values)


class StaticCache(Cache):
    """A cache allocated once for `max_cache_len` tokens (on the first update, where batch, heads and dtype are known).

    Reading it yields views of the filled part only, so attention never looks at unwritten positions.
    """

    is_compileable = True

    def __init__(self, config=None, max_cache_len: int | None = None, max_batch_size: int | None = None,
                 device=None, dtype=None, **_ignored):
        if max_cache_len is None:
            max_cache_len = getattr(config, "max_position_embeddings", None)
        if not max_cache_len or max_cache_len <= 0:
            raise ValueError("StaticCache needs max_cache_len > 0 (the prompt length plus the tokens to generate).")
        num_layers = getattr(config, "num_hidden_layers", 0) if config is not None else 0
        super().__init__([CacheLayer(max_cache_len) for _ in range(num_layers)], max_cache_len=max_cache_len)
        self.max_cache_len = max_cache_len

    @property
    def max_batch_size(self) -> int:
        return self.batch_size


class SlotCache(Cache):
    """Keys and values in fixed (batch, kv_heads, max_cache_len, head_dim) buffers, the new token's written at the
    slot `position` (a (1,) tensor): the form a compiled or exported decoding step needs, every shape fixed. Attention
    reads every slot, so the step's mask must hide the unwritten ones."""

    def __init__(self, keys: list, values: list, position: torch.Tensor):
        super().__init__([])
        self.buffers, self.position = (keys, values), position

    def update(self, key_states, value_states, layer_idx: int, cache_kwargs=None, **_ignored):
        keys, values = self.buffers[0][layer_idx], self.buffers[1][layer_idx]
        keys.index_copy_(2, self.position, key_states)
        values.index_copy_(2, self.position, value_states)
        return keys, values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.buffers[0][layer_idx].shape[2] - 1  # with the new token, the keys are the whole buffer


class EncoderDecoderCache(Cache):
    """Self-attention cache of a decoder plus the cache of its cross-attention over the encoder output."""

    def __init__(self, self_attention_cache: Cache | None = None, cross_attention_cache: Cache | None = None):
        super().__init__()
        self.self_attention_cache = self_attention_cache if self_attention_cache is not None else DynamicCache()
        self.cross_attention_cache = cross_attention_cache if cross_attention_cache is not None else DynamicCache()
        self.layers = self.self_attention_cache.layers
        # layer index -> True once its cross-attention keys/values are computed (they never change afterwards)
        self.is_updated = {i: layer.length > 0 for i, layer in enumerate(self.cross_attention_cache.layers)}

    def update(self, key_states, value_states, layer_idx: int, cache_kwargs=None, **_ignored):
        return self.self_attention_cache.update(key_states, value_states, layer_idx)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.self_attention_cache.get_seq_length(layer_idx)

    def reset(self):
        self.self_attention_cache.reset()
        self.cross_attention_cache.reset()
        self.is_updated = {}

    def reorder_cache(self, beam_idx: torch.LongTensor):
        self.self_attention_cache.reorder_cache(beam_idx)
        self.cross_attention_cache.reorder_cache(beam_idx)

    def batch_select_indices(self, indices: torch.Tensor):
        self.self_attention_cache.batch_select_indices(indices)
        self.cross_attention_cache.batch_select_indices(indices)

    def batch_repeat_interleave(self, repeats: int):
        self.self_attention_cache.batch_repeat_interleave(repeats)
        self.cross_attention_cache.batch_repeat_interleave(repeats)

    def crop(self, max_length: int):
        self.self_attention_cache.crop(max_length)


def as_cache(past_key_values) -> Cache | None:
    """A Cache from what a caller passed: None, a Cache, or the older tuple of (keys, values) per layer."""
    if past_key_values is None or isinstance(past_key_values, Cache):
        return past_key_values
    if isinstance(past_key_values, (tuple, list)):
        return DynamicCache.from_legacy_cache(past_key_values)
    raise TypeError(f"past_key_values must be a Cache (e.g. DynamicCache()) or a tuple of (keys, values) per layer, "
                    f"not {type(past_key_values).__name__}.")


def resolve_cache(config, past_key_values, cache, use_cache):
    """(cache a forward reads and fills, use_cache): `cache` is the newer name of `past_key_values`; with
    use_cache (default: the config's) and no cache given, a new DynamicCache."""
    cache = as_cache(cache if cache is not None else past_key_values)
    use_cache = use_cache if use_cache is not None else getattr(config, "use_cache", True)
    if use_cache and cache is None:
        cache = DynamicCache()
    return cache, use_cache
