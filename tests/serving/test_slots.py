"""The server's key/value slots (serving/slots.py): a prompt's keys and values land in its slot, and on CPU the slot
memory takes up resident memory only where tokens were written."""

from __future__ import annotations

import torch
from conftest import process_memory

from leanformers.cache import DynamicCache
from leanformers.serving.slots import KVSlots


def test_slot_memory_is_resident_only_where_tokens_are_written():
    generator = torch.Generator().manual_seed(0)
    cache = DynamicCache()
    written = [(torch.randn(2, 4, 10, 64, generator=generator), torch.randn(2, 4, 10, 64, generator=generator))
               for _ in range(4)]
    for layer, (keys, values) in enumerate(written):
        cache.update(keys, values, layer)
    slots = KVSlots(slots=8, max_len=2048)
    before = process_memory()[1]
    assert slots.store(3, cache, row=1, start=2) == 8  # row 1 of the prefill, after its 2 positions of padding
    grown = process_memory()[1] - before
    assert slots.allocated_bytes == 4 * 2 * 8 * 4 * 2048 * 64 * 4  # 128 MiB reserved for 4 layers
    assert grown < slots.allocated_bytes / 16, grown
    for layer, (keys, values) in enumerate(written):
        assert torch.equal(slots.keys[layer][3, :, :8], keys[1, :, 2:])
        assert torch.equal(slots.values[layer][3, :, :8], values[1, :, 2:])
        assert not slots.keys[layer][3, :, 8:].any() and not slots.values[layer][:3].any()
