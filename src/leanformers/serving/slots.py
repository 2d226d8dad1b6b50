"""Key/value memory of the server: a fixed number of slots, each long enough for one request, allocated once.

Slot `i` holds the keys and values of the `i`-th running request; running requests always occupy slots
0..batch-1 (a finished request's slot is refilled by the last one), so a decoding step reads a plain prefix view of
each buffer, never a gathered copy. The memory is `slots * max_len * bytes_per_token`, fixed when the first prompt
arrives (when the layer shapes are known) and never grown; a request waits in the queue while every slot is taken.
On CPU it is reserved as zero pages of the system's own, which take up memory only once a token is written into
them: a server whose requests stay short never holds the whole budget.
"""

from __future__ import annotations

import math
import mmap

import torch
from torch import nn

from ..cache import Cache


class KVSlots:
    """Per-layer (slots, kv_heads, max_len, head_dim) key and value buffers."""

    def __init__(self, slots: int, max_len: int):
        self.slots, self.max_len = slots, max_len
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    @property
    def allocated_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))

    def _allocate(self, cache: Cache):
        for layer in cache:
            for buffers, like in zip((self.keys, self.values), layer):  # (slots, heads, max_len, head_dim) each
                buffers.append(_zeros_on_demand(like, (self.slots, like.shape[1], self.max_len, like.shape[3])))

    def allocate_like(self, cache: Cache):
        """Allocate the buffers, if not done yet, for layers shaped like `cache`'s."""
        if not self.keys:
            self._allocate(cache)

    def store(self, slot: int, cache: Cache, row: int = 0, start: int = 0, head: int = 0) -> int:
        """Copy row `row` of a prefill cache into `slot`: its first `head` positions (a reused prefix), then those
        from position `start` on (after its padding); returns the number of tokens stored."""
        self.allocate_like(cache)
        length = 0
        for layer, pair in enumerate(cache):
            length = head + pair[0].shape[2] - start
            for buffers, source in zip((self.keys, self.values), pair):
                target = buffers[layer][slot]
                target[:, :head].copy_(source[row, :, :head])
                target[:, head:length].copy_(source[row, :, start:])
        return length

    def move(self, source: int, target: int, length: int):
        """Copy the first `length` positions of slot `source` into slot `target`."""
        for buffers in (self.keys, self.values):
            for buffer in buffers:
                buffer[target, :, :length].copy_(buffer[source, :, :length])

    def step_cache(self, lengths: torch.Tensor) -> StepCache:
        """The cache a decoding step of rows 0..len(lengths)-1 hands the model."""
        return StepCache(self.keys, self.values, lengths[:, None])


def write_blocks(keys: list, values: list, row: int, blocks: list, block: int):
    """Write a prefix's kept blocks (each (layers, 2, kv_heads, `block` tokens, head_dim)) at the start of row `row`
    of per-layer (rows, kv_heads, length, head_dim) key and value buffers."""
    for index, kept in enumerate(blocks):
        for layer, (layer_keys, layer_values) in enumerate(zip(keys, values)):
            layer_keys[row, :, index * block:(index + 1) * block] = kept[layer, 0]
            layer_values[row, :, index * block:(index + 1) * block] = kept[layer, 1]


def _zeros_on_demand(like: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Zeros of `shape` with `like`'s dtype and device. On CPU: an anonymous memory mapping, whose pages the system
    fills with zeros when first touched (zeroing them here would make every page resident at once)."""
    if like.device.type != "cpu":
        return like.new_zeros(shape)
    count = math.prod(shape)
    mapping = mmap.mmap(-1, max(count * like.element_size(), 1))  # the tensor keeps the mapping alive
    return torch.frombuffer(mapping, dtype=like.dtype, count=count).view(shape)


class StepCache(Cache):
    """New tokens of rows 0..batch-1, `positions[b]` (batch, new tokens) giving where row `b`'s are written, in
    per-layer (slots, kv_heads, length, head_dim) key and value buffers (slot `b` is row `b`'s); attention sees
    positions 0..key_len-1 of each row (the model's attention mask hides those past a row's own positions). A
    decoding step writes one token per row, at each row's own length."""

    def __init__(self, keys: list, values: list, positions: torch.Tensor, key_len: int | None = None):
        super().__init__()
        self.keys, self.values, self.positions = keys, values, positions
        self.rows = torch.arange(positions.shape[0], device=positions.device)[:, None]
        self.key_len = int(positions.max()) + 1 if key_len is None else key_len  # given: no read of the positions

    def update(self, key_states, value_states, layer_idx: int, cache_kwargs=None, **_ignored):
        batch = key_states.shape[0]
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        keys[self.rows, :, self.positions] = key_states.transpose(1, 2)  # (batch, new, kv_heads, head_dim)
        values[self.rows, :, self.positions] = value_states.transpose(1, 2)
        return keys[:batch, :, :self.key_len], values[:batch, :, :self.key_len]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.key_len - self.positions.shape[1]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def is_initialized(self) -> bool:
        return True

    @property
    def batch_size(self) -> int:
        return int(self.positions.shape[0])


class ServingStep(nn.Module):
    """`(tokens (rows, new), starts (rows,), lasts (rows,), key_range (keys,), *keys, *values) -> (rows, vocab)`:
    the model's forward as the server's compiled forms run it (serving/exported_step.py on CPU, every prompt and
    decoding step; serving/compiled_step.py on CUDA, decoding steps).

    Row `b`'s tokens go to positions starts[b].. of slot `b` in every layer's buffers (the first half of
    `buffers` holds the layers' keys, the second their values); each new token attends to the positions up to its
    own among the first `keys` of its slot (key_range's length; its values are not read); the logits are those of
    the row's token `lasts[b]`."""

    def __init__(self, model):
        super().__init__()
        self.base, self.head = model.base_model, model.get_output_embeddings()

    def forward(self, tokens, starts, lasts, key_range, *buffers):
        rows, new = tokens.shape
        key_len, layers = key_range.shape[0], len(buffers) // 2
        torch._check(key_len <= buffers[0].shape[2])
        torch._check(rows <= buffers[0].shape[0])
        positions = starts[:, None] + torch.arange(new, device=tokens.device)
        mask = (torch.arange(key_len, device=tokens.device)[None, None, :] <= positions[:, :, None])[:, None]
        cache = StepCache(list(buffers[:layers]), list(buffers[layers:]), positions, key_len)
        hidden = self.base(input_ids=tokens, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, return_dict=True).last_hidden_state
        return self.head(hidden[torch.arange(rows, device=tokens.device), lasts])
