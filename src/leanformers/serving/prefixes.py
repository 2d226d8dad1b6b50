"""Keys and values of prompt prefixes served before (`leanformers serve --prefix-cache TOKENS`).

Chat requests to one model mostly begin alike (the chat template's system turn: 24 of the ~40 tokens of a short
chat prompt to SmolLM2), and those tokens' keys and values are the same for every such request. A prompt's keys and
values are kept in blocks of PREFIX_BLOCK tokens after its prefill; a later prompt whose first blocks are the same
tokens starts from them and prefills only the rest. A block is found by its tokens and the block before it, so a hit
is always an exact prefix. The least recently used blocks are dropped beyond the capacity; a block goes before the
blocks it leads to, never after, so every kept block stays reachable.

Not with batch invariance: a prompt prefilled from a reused prefix runs its attention in other kernel calls than
the same prompt prefilled whole, which may change the last bits.
"""

from __future__ import annotations

import collections

import torch

from .slots import KVSlots

PREFIX_BLOCK = 8  # tokens per block


class PrefixCache:
    """Up to `capacity` tokens of prompt prefixes, as blocks of (layers, 2, kv_heads, PREFIX_BLOCK, head_dim)."""

    def __init__(self, capacity: int):
        self.capacity_blocks = capacity // PREFIX_BLOCK
        self.blocks: collections.OrderedDict = collections.OrderedDict()  # (parent id, tokens) -> (id, tensor)
        self._ids = 0

    @property
    def allocated_bytes(self) -> int:
        return sum(block.numel() * block.element_size() for _, block in self.blocks.values())

    def lookup(self, prompt_ids: list) -> list:
        """The kept blocks (layers, 2, kv_heads, PREFIX_BLOCK, head_dim) of the longest kept prefix of `prompt_ids`
        that leaves at least two tokens to prefill, in order (not copied: a block dropped later stays valid)."""
        chain = []
        for _, key in self._blocks_of(prompt_ids, len(prompt_ids) - 2):
            if key not in self.blocks:
                break
            chain.append(key)
        self._touch(chain)
        return [self.blocks[key][1] for key in chain]

    def insert(self, prompt_ids: list, slots: KVSlots, slot: int):
        """Keep the whole blocks of `prompt_ids` not kept yet; the prompt's keys and values are in `slot`."""
        chain = []
        for begin, key in self._blocks_of(prompt_ids, len(prompt_ids)):
            if key in self.blocks:
                self.blocks.move_to_end(key)  # not dropped to make room for its own prompt's next blocks
            elif self._make_room(chain):
                self._ids += 1
                positions = slice(begin, begin + PREFIX_BLOCK)
                self.blocks[key] = (self._ids, torch.stack([
                    torch.stack((keys[slot, :, positions], values[slot, :, positions]))
                    for keys, values in zip(slots.keys, slots.values)]))
            else:
                break
            chain.append(key)
        self._touch(chain)

    def _blocks_of(self, prompt_ids: list, end: int):
        """(first position, key) of each whole block of `prompt_ids[:end]`, in order. A key names the block before
        it by that block's id, so the caller stops at the first block that is not kept."""
        parent = -1
        for begin in range(0, end - PREFIX_BLOCK + 1, PREFIX_BLOCK):
            key = (parent, tuple(prompt_ids[begin:begin + PREFIX_BLOCK]))
            yield begin, key
            parent = self.blocks[key][0]

    def _make_room(self, chain: list) -> bool:
        """Drop the least recently used blocks until one more fits; False when only `chain`'s own are left."""
        while len(self.blocks) >= self.capacity_blocks:
            oldest = next(iter(self.blocks), None)
            if oldest is None or oldest in chain:
                return False
            del self.blocks[oldest]
        return True

    def _touch(self, chain: list):
        """Mark a prompt's blocks used now, its first block last: a block is always used more recently than the
        blocks after it, so it is never dropped before them."""
        for key in reversed(chain):
            self.blocks.move_to_end(key)
